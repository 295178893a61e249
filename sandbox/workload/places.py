"""How people, companies and addresses look in each country the workload's companies trade with.

Cities are real, postal codes and phone numbers have each country's shape, languages are the F&O language
ids of each country (``en-us``, ``de``, ...), and the name parts are common given names and surnames. Company
and product words come from Microsoft's fictitious demo brands (Contoso, Fabrikam, Northwind, ...), so no
real business is named.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PLACES", "PRODUCT_NOUNS", "PRODUCT_WORDS", "TRADE_NAMES", "TRADE_WORDS", "Place"]


def _words(joined: str) -> tuple[str, ...]:
    # "|"-joined strings keep these lists to a few lines instead of a hundred lines of one word each.
    return tuple(joined.split("|"))


@dataclass(frozen=True, slots=True)
class Place:
    """How addresses, phone numbers and names look in one country (ISO 3166 alpha-3 and alpha-2)."""

    country: str
    iso2: str
    language: str
    cities: tuple[str, ...]
    streets: tuple[str, ...]
    street_first: bool  # "Hauptstraße 12" rather than "12 Main Street"
    postal: str  # "#" is a digit, "A" an upper-case letter
    phone: str
    legal_forms: tuple[str, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]


PLACES: dict[str, Place] = {
    "USA": Place(
        "USA",
        "US",
        "en-us",
        _words("Seattle|Chicago|Austin|Denver|Boston|Atlanta|Portland|San Diego|Columbus"),
        _words("Main Street|Oak Avenue|Pine Street|Maple Drive|Cedar Lane|Lake Shore Drive"),
        street_first=False,
        postal="#####",
        phone="+1 ###-###-####",
        legal_forms=("Inc.", "LLC", "Corp.", "Co."),
        first_names=_words("James|Mary|Robert|Patricia|Michael|Jennifer|David|Linda|Karen|Thomas"),
        last_names=_words("Smith|Johnson|Williams|Brown|Jones|Miller|Davis|Wilson|Anderson|Taylor"),
    ),
    "DEU": Place(
        "DEU",
        "DE",
        "de",
        _words("München|Berlin|Hamburg|Köln|Frankfurt am Main|Stuttgart|Düsseldorf|Leipzig"),
        _words("Hauptstraße|Bahnhofstraße|Schillerstraße|Gartenweg|Lindenallee|Königsallee"),
        street_first=True,
        postal="#####",
        phone="+49 ## ########",
        legal_forms=("GmbH", "AG", "KG", "GmbH & Co. KG"),
        first_names=_words("Lukas|Anna|Jonas|Laura|Felix|Julia|Maximilian|Lea|Paul|Sophie"),
        last_names=_words("Müller|Schmidt|Schneider|Fischer|Weber|Meyer|Wagner|Becker|Schulz|Hoffmann"),
    ),
    "GBR": Place(
        "GBR",
        "GB",
        "en-gb",
        _words("London|Manchester|Leeds|Bristol|Edinburgh|Cardiff|Birmingham|Glasgow"),
        _words("High Street|Station Road|Church Lane|Victoria Road|Green Lane|Mill Road"),
        street_first=False,
        postal="A## #AA",
        phone="+44 #### ######",
        legal_forms=("Ltd", "PLC", "LLP"),
        first_names=_words("Oliver|Amelia|George|Isla|Harry|Ava|Jack|Emily|Charlie|Grace"),
        last_names=_words("Smith|Jones|Taylor|Brown|Williams|Wilson|Evans|Thomas|Roberts|Walker"),
    ),
    "FRA": Place(
        "FRA",
        "FR",
        "fr",
        _words("Paris|Lyon|Marseille|Toulouse|Nantes|Lille|Bordeaux|Strasbourg"),
        _words("rue de la Paix|avenue Victor Hugo|boulevard Voltaire|rue du Moulin|place de la Gare"),
        street_first=False,
        postal="#####",
        phone="+33 # ## ## ## ##",
        legal_forms=("SARL", "SA", "SAS"),
        first_names=_words("Gabriel|Louise|Raphaël|Emma|Léo|Jade|Louis|Alice|Hugo|Chloé"),
        last_names=_words("Martin|Bernard|Dubois|Thomas|Robert|Richard|Petit|Durand|Leroy|Moreau"),
    ),
    "JPN": Place(
        "JPN",
        "JP",
        "ja",
        _words("Tokyo|Osaka|Nagoya|Yokohama|Sapporo|Fukuoka|Kobe|Kyoto"),
        _words("Chuo-dori|Meiji-dori|Sakura-dori|Aoba-dori|Midosuji"),
        street_first=True,
        postal="###-####",
        phone="+81 #-####-####",
        legal_forms=("K.K.", "Co., Ltd.", "G.K."),
        first_names=_words("Haruto|Yui|Sota|Hina|Yuto|Mio|Riku|Sakura|Kaito|Aoi"),
        last_names=_words("Sato|Suzuki|Takahashi|Tanaka|Watanabe|Ito|Yamamoto|Nakamura|Kobayashi|Kato"),
    ),
    "CAN": Place(
        "CAN",
        "CA",
        "en-ca",
        _words("Toronto|Montréal|Vancouver|Calgary|Ottawa|Winnipeg|Halifax|Québec"),
        _words("King Street|Queen Street|Yonge Street|Rue Sainte-Catherine|Granville Street"),
        street_first=False,
        postal="A#A #A#",
        phone="+1 ###-###-####",
        legal_forms=("Inc.", "Ltd.", "Corp."),
        first_names=_words("Liam|Olivia|Noah|Emma|William|Charlotte|Benjamin|Ava|Lucas|Chloe"),
        last_names=_words("Smith|Brown|Tremblay|Martin|Roy|Wilson|MacDonald|Gagnon|Johnson|Lee"),
    ),
}

TRADE_NAMES: tuple[str, ...] = _words(
    "Northwind|Fabrikam|Adventure Works|Litware|Tailspin|Wingtip|Proseware|Lucerne|Alpine Ski|Blue Yonder|"
    "Coho|Fourth Coffee|Graphic Design|Humongous|Margie's|Nod|Southridge|Trey|Wide World|Woodgrove|Datum|"
    "Relecloud|VanArsdel"
)
TRADE_WORDS: tuple[str, ...] = _words(
    "Traders|Electronics|Logistics|Supplies|Industries|Retail|Systems|Foods|Engineering|Outfitters|"
    "Importers|Distribution|Media|Manufacturing|Partners"
)
PRODUCT_WORDS: tuple[str, ...] = _words(
    "Surround|Wireless|Compact|Premium|Studio|Portable|Digital|Classic|Smart|Pro"
)
PRODUCT_NOUNS: tuple[str, ...] = _words(
    "speaker|receiver|projector|television|headphones|amplifier|subwoofer|turntable|microphone|soundbar|"
    "media player|speaker cable|remote control|mixer"
)
