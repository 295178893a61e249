"""HTML building blocks: every value is escaped here, so pages put data in markup through these only.

Plain string templates (no template engine is a dependency). The script is the whole of the console's
JavaScript: a part of a page marked ``data-refresh="<url>"`` is replaced by that URL's answer every few
seconds, so counts move without a reload and without a front-end build.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

__all__ = ["Markup", "button_form", "cell", "e", "layout", "table"]


class Markup(str):
    """Text that is HTML already (built by the functions here); anything else is escaped."""

    __slots__ = ()


def e(value: object) -> Markup:
    """``value`` as HTML: markup unchanged, anything else escaped (``None`` reads as ``-``)."""
    if isinstance(value, Markup):
        return value
    return Markup(escape("-" if value is None else str(value), quote=True))


def cell(value: object, *, numeric: bool = False) -> Markup:
    """One table cell."""
    return Markup(f'<td class="num">{e(value)}</td>' if numeric else f"<td>{e(value)}</td>")


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    numeric_from: int = 99,
    empty: str = "Nothing here.",
    nowrap: int = 0,
) -> Markup:
    """A table; columns from ``numeric_from`` on are right-aligned numbers, the first ``nowrap`` unwrapped."""
    head = "".join(
        f'<th class="num">{e(h)}</th>' if i >= numeric_from else f"<th>{e(h)}</th>"
        for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>"
        + "".join(
            Markup(f'<td class="nowrap">{e(v)}</td>') if i < nowrap else cell(v, numeric=i >= numeric_from)
            for i, v in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    if not body:
        body = f'<tr><td colspan="{len(headers)}" class="empty">{e(empty)}</td></tr>'
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def button_form(action: str, label: str, csrf: str, fields: dict[str, str], *, kind: str = "") -> Markup:
    """A one-button form that POSTs ``fields`` (and the CSRF token) to ``action``."""
    hidden = "".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in fields.items())
    return Markup(
        f'<form method="post" action="{e(action)}" class="inline">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">{hidden}'
        f'<button type="submit" class="{e(kind)}">{e(label)}</button></form>'
    )


_NOTHING = Markup("")
_NAV = (
    ("/routes", "Routes"),
    ("/deadletters", "Dead letters"),
    ("/reconcile", "Reconcile"),
    ("/sync", "Initial sync"),
    ("/audit", "Audit trail"),
    ("/alerts", "Alerts"),
)

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2733;
background:#f5f7fa}
header{background:#1f3a5f;color:#fff;padding:.6rem 1.5rem;display:flex;gap:1.5rem;align-items:center}
header .brand{font-weight:700;font-size:1.1rem;margin-right:1rem}
header a{color:#d8e4f2;text-decoration:none;padding:.3rem .5rem;border-radius:4px}
header a.active,header a:hover{background:#2f5689;color:#fff}
header .who{margin-left:auto;font-size:.85rem;color:#b8c9dd}
header .who button{margin-left:.6rem;padding:.15rem .5rem;font-size:.8rem}
main{padding:1rem 1.5rem;max-width:1400px}
h1{font-size:1.35rem;margin:.4rem 0 1rem}
h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;background:#fff;width:100%;font-size:.9rem;box-shadow:0 1px 2px #0001}
th,td{padding:.4rem .6rem;border-bottom:1px solid #e3e8ef;text-align:left;vertical-align:top}
th{background:#eef2f7;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.empty{color:#7a8694;text-align:center}
.flash{padding:.55rem .8rem;border-radius:4px;margin:0 0 1rem}
.flash.error{background:#fde8e8;color:#8a1c1c;border:1px solid #f5b5b5}
.flash.ok{background:#e6f5ea;color:#1d5b2e;border:1px solid #a8dab5}
.badge{display:inline-block;padding:.1rem .45rem;border-radius:10px;font-size:.8rem;font-weight:600}
.badge.running{background:#e6f5ea;color:#1d5b2e}.badge.paused{background:#fff1d6;color:#7a4a00}
.badge.failed{background:#fde8e8;color:#8a1c1c}.badge.done{background:#e3ecf8;color:#1f3a5f}
form.inline{display:inline;margin:0}
button{font:inherit;padding:.3rem .8rem;border:1px solid #2f5689;background:#2f5689;color:#fff;
border-radius:4px;cursor:pointer}
button.secondary{background:#fff;color:#2f5689}button.danger{background:#b42318;border-color:#b42318}
input[type=text],input[type=password],select,textarea{font:inherit;padding:.3rem .4rem;
border:1px solid #c4ccd6;border-radius:4px}
textarea{width:100%;max-width:40rem;font-family:ui-monospace,monospace}
pre{background:#fff;border:1px solid #e3e8ef;padding:.6rem;overflow:auto;font-size:.85rem;max-height:28rem;
white-space:pre-wrap;overflow-wrap:anywhere}
td.nowrap{white-space:nowrap}
.muted{color:#66727f;font-size:.85rem}
.grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1rem}
.toolbar{margin:.8rem 0;display:flex;gap:.6rem;align-items:center;flex-wrap:wrap}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;background:#fff;padding:.6rem;
border:1px solid #e3e8ef}
dt{font-weight:600}dd{margin:0}
ins{background:#e6f5ea;text-decoration:none}del{background:#fde8e8;text-decoration:none}
"""

_SCRIPT = """
for (const part of document.querySelectorAll('[data-refresh]')) {
  const timer = setInterval(async () => {
    try {
      // Marked as a refresh: it keeps no session alive. Signed out meanwhile, the page goes to sign-in.
      const answer = await fetch(part.dataset.refresh, {
        credentials: 'same-origin', headers: {'X-Dualbus-Refresh': '1'}});
      if (answer.status === 401) { clearInterval(timer); location.reload(); return; }
      if (!answer.ok) { return; }
      const text = await answer.text();
      part.innerHTML = text;
      // A job's part stops refreshing once it no longer says it runs (its forms keep their ticks).
      if (part.dataset.until && !text.includes(part.dataset.until)) { clearInterval(timer); }
    } catch (error) { /* the next tick tries again */ }
  }, 2000);
}
for (const box of document.querySelectorAll('input[data-select-all]')) {
  box.addEventListener('change', () => {
    for (const other of document.querySelectorAll('input[name="' + box.dataset.selectAll + '"]')) {
      other.checked = box.checked;
    }
  });
}
"""


def layout(
    title: str,
    body: Markup,
    *,
    active: str,
    who: str,
    flashes: Sequence[tuple[str, str]] = (),
    sign_out: Markup = _NOTHING,
) -> str:
    """A whole page: navigation, who is signed in (and a sign-out button), one-line messages, the body."""
    nav = "".join(
        f'<a href="{href}" class="{"active" if href == active else ""}">{e(label)}</a>'
        for href, label in _NAV
    )
    messages = "".join(f'<p class="flash {e(kind)}" role="status">{e(text)}</p>' for kind, text in flashes)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)} · dualbus console</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_STYLE}</style></head><body>"
        f'<header><span class="brand">dualbus</span>{nav}'
        f'<span class="who">{e(who)} {sign_out}</span></header>'
        f"<main><h1>{e(title)}</h1>{messages}{body}</main>"
        f"<script>{_SCRIPT}</script></body></html>"
    )
