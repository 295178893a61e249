"""Fixed reference data the workload draws from: legal entities, currencies, groups, places, name parts.

Company ids follow the Contoso demo data of finance and operations (USMF, DEMF, GBSI, ...); currencies are
ISO 4217 codes with their usual names, symbols and minor units; addresses use each country's real cities
and postal-code shapes so that a mapping or a length check meets realistic values. E-mail addresses use the
reserved ``example.com`` family of domains (RFC 2606), so that nothing generated can reach anyone.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COMPANIES",
    "CURRENCIES",
    "CUSTOMER_GROUPS",
    "PLACES",
    "PRODUCT_NOUNS",
    "PRODUCT_WORDS",
    "TRADE_NAMES",
    "TRADE_WORDS",
    "VENDOR_GROUPS",
    "Company",
    "Currency",
    "Place",
]


@dataclass(frozen=True, slots=True)
class Company:
    """A legal entity: its F&O id, name, country (ISO 3166 alpha-3) and accounting currency."""

    id: str
    name: str
    country: str
    currency: str


@dataclass(frozen=True, slots=True)
class Currency:
    """An ISO 4217 currency with its display name, symbol and number of decimals."""

    code: str
    name: str
    symbol: str
    precision: int


@dataclass(frozen=True, slots=True)
class Place:
    """How addresses look in one country: cities, street names, postal code and phone shapes."""

    country: str
    cities: tuple[str, ...]
    streets: tuple[str, ...]
    street_first: bool  # "Hauptstraße 12" rather than "12 Main Street"
    postal: str  # "#" is a digit, "A" an upper-case letter
    phone: str
    legal_forms: tuple[str, ...]


COMPANIES: tuple[Company, ...] = (
    Company("USMF", "Contoso Entertainment System USA", "USA", "USD"),
    Company("DEMF", "Contoso Entertainment System Germany", "DEU", "EUR"),
    Company("GBSI", "Contoso Entertainment System UK", "GBR", "GBP"),
    Company("FRRT", "Contoso Retail France", "FRA", "EUR"),
    Company("JPMF", "Contoso Entertainment System Japan", "JPN", "JPY"),
    Company("CAMF", "Contoso Entertainment System Canada", "CAN", "CAD"),
)

CURRENCIES: tuple[Currency, ...] = (
    Currency("USD", "US Dollar", "$", 2),
    Currency("EUR", "Euro", "€", 2),
    Currency("GBP", "Pound Sterling", "£", 2),
    Currency("JPY", "Yen", "¥", 0),
    Currency("CAD", "Canadian Dollar", "$", 2),
    Currency("CHF", "Swiss Franc", "CHF", 2),
    Currency("SEK", "Swedish Krona", "kr", 2),
    Currency("DKK", "Danish Krone", "kr.", 2),
    Currency("NOK", "Norwegian Krone", "kr", 2),
    Currency("AUD", "Australian Dollar", "$", 2),
    Currency("MXN", "Mexican Peso", "$", 2),
    Currency("INR", "Indian Rupee", "₹", 2),
    Currency("CNY", "Yuan Renminbi", "¥", 2),
    Currency("BRL", "Brazilian Real", "R$", 2),
)

CUSTOMER_GROUPS: tuple[tuple[str, str], ...] = (
    ("10", "Wholesale customers"),
    ("20", "Major customers"),
    ("30", "Retail customers"),
    ("40", "Internet customers"),
    ("80", "Other customers"),
    ("90", "Intercompany customers"),
)

VENDOR_GROUPS: tuple[tuple[str, str], ...] = (
    ("10", "Parts vendors"),
    ("20", "Services vendors"),
    ("30", "Office supplies vendors"),
    ("40", "Freight carriers"),
    ("50", "Raw material vendors"),
)

PLACES: dict[str, Place] = {
    "USA": Place(
        "USA",
        ("Seattle", "Chicago", "Austin", "Denver", "Boston", "Atlanta", "Portland", "San Diego", "Columbus"),
        ("Main Street", "Oak Avenue", "Pine Street", "Maple Drive", "Cedar Lane", "Lake Shore Drive"),
        street_first=False,
        postal="#####",
        phone="+1 ###-###-####",
        legal_forms=("Inc.", "LLC", "Corp.", "Co."),
    ),
    "DEU": Place(
        "DEU",
        ("München", "Berlin", "Hamburg", "Köln", "Frankfurt am Main", "Stuttgart", "Düsseldorf", "Leipzig"),
        ("Hauptstraße", "Bahnhofstraße", "Schillerstraße", "Gartenweg", "Lindenallee", "Königsallee"),
        street_first=True,
        postal="#####",
        phone="+49 ## ########",
        legal_forms=("GmbH", "AG", "KG", "GmbH & Co. KG"),
    ),
    "GBR": Place(
        "GBR",
        ("London", "Manchester", "Leeds", "Bristol", "Edinburgh", "Cardiff", "Birmingham", "Glasgow"),
        ("High Street", "Station Road", "Church Lane", "Victoria Road", "Green Lane", "Mill Road"),
        street_first=False,
        postal="A## #AA",
        phone="+44 #### ######",
        legal_forms=("Ltd", "PLC", "LLP"),
    ),
    "FRA": Place(
        "FRA",
        ("Paris", "Lyon", "Marseille", "Toulouse", "Nantes", "Lille", "Bordeaux", "Strasbourg"),
        ("rue de la Paix", "avenue Victor Hugo", "boulevard Voltaire", "rue du Moulin", "place de la Gare"),
        street_first=False,
        postal="#####",
        phone="+33 # ## ## ## ##",
        legal_forms=("SARL", "SA", "SAS"),
    ),
    "JPN": Place(
        "JPN",
        ("Tokyo", "Osaka", "Nagoya", "Yokohama", "Sapporo", "Fukuoka", "Kobe", "Kyoto"),
        ("Chuo-dori", "Meiji-dori", "Sakura-dori", "Aoba-dori", "Midosuji"),
        street_first=True,
        postal="###-####",
        phone="+81 #-####-####",
        legal_forms=("K.K.", "Co., Ltd.", "G.K."),
    ),
    "CAN": Place(
        "CAN",
        ("Toronto", "Montréal", "Vancouver", "Calgary", "Ottawa", "Winnipeg", "Halifax", "Québec"),
        ("King Street", "Queen Street", "Yonge Street", "Rue Sainte-Catherine", "Granville Street"),
        street_first=False,
        postal="A#A #A#",
        phone="+1 ###-###-####",
        legal_forms=("Inc.", "Ltd.", "Corp."),
    ),
}


def _words(joined: str) -> tuple[str, ...]:
    # "|"-joined strings keep these lists to a few lines instead of a hundred lines of one word each.
    return tuple(joined.split("|"))


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
