"""The bodies of the console's pages, from plain records to escaped HTML (see ``dualbus.console.html``)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson

from dualbus.console.html import Markup, button_form, e, table
from dualbus.console.jobs import Job, JobKind, JobState
from dualbus.console.operations import LetterRef, ReplayPreview, RouteRow
from dualbus.console.repair import drift_key
from dualbus.ops._plain import to_plain
from dualbus.ops.deadletters import DeadLetter, ReasonGroup
from dualbus.ops.reconcile import ReconcileReport
from dualbus.producers.initial_sync import SyncSummary

__all__ = [
    "alerts_page",
    "audit_page",
    "groups_page",
    "job_page",
    "letter_page",
    "letters_page",
    "login_page",
    "purge_page",
    "reconcile_page",
    "replay_preview_page",
    "routes_page",
    "routes_table",
    "sync_page",
]

_DRIFT_LABELS = {"missing_in_fo": "missing in F&O", "missing_in_dataverse": "missing in Dataverse"}


def _age(value: timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def routes_table(rows: Sequence[RouteRow], csrf: str) -> Markup:
    """The routes' figures and pause buttons (also served alone, for the page's live refresh)."""
    headers = (
        "area",
        "direction",
        "state",
        "published",
        "applied",
        "stale",
        "conflicts",
        "dead-lettered",
        "backlog",
        "lag",
        "p50",
        "p99",
        "",
    )
    lines = []
    for row in rows:
        s = row.stats
        outcomes = s.outcomes if s else {}
        if row.paused:
            state = Markup(f'<span class="badge paused" title="{e(row.paused.reason)}">paused</span>')
            action = button_form(
                "/routes/pause", "Resume", csrf, {"route": row.name, "action": "resume"}, kind="secondary"
            )
        else:
            state = Markup('<span class="badge running">running</span>')
            action = button_form("/routes/pause", "Pause", csrf, {"route": row.name, "action": "pause"})
        cells = [
            e(row.area),
            e(row.subscription),
            state,
            e(s.published if s else "-"),
            e(s.applied if s else "-"),
            e(outcomes.get("skipped-stale", 0) if s else "-"),
            e(outcomes.get("skipped-conflict", 0) if s else "-"),
            _letters_link(row),
            e(row.backlog),
            e(s.lag if s else "-"),
            e(_seconds(s.latency(0.5)) if s else "-"),
            e(_seconds(s.latency(0.99)) if s else "-"),
            action,
        ]
        numeric = range(3, 12)
        lines.append(
            f'<tr data-route="{e(row.name)}">'
            + "".join(
                f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(cells)
            )
            + "</tr>"
        )
    head = "".join(f'<th class="{"num" if 3 <= i < 12 else ""}">{e(h)}</th>' for i, h in enumerate(headers))  # noqa: PLR2004
    return Markup(f"<table id=routes><thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>")


def _letters_link(row: RouteRow) -> Markup:
    if not row.dead_lettered:
        return e(row.dead_lettered)
    href = _link("/deadletters/list", area=row.area, subscription=row.subscription)
    return Markup(f'<a href="{e(href)}">{row.dead_lettered}</a>')


def routes_page(rows: Sequence[RouteRow], csrf: str, *, has_metrics: bool) -> Markup:
    """Every consumer route, refreshed every two seconds."""
    note = (
        "published, applied, stale, conflicts, lag and latency come from the processes' metrics files; "
        "backlog and dead-lettered from the bus."
        if has_metrics
        else "No metrics directory (dualbus console --metrics-dir): published, applied and latency show '-'; "
        "backlog and dead-lettered come from the bus."
    )
    return Markup(
        f'<p class="muted">{e(note)} Lag: published but not settled yet. '
        "Pausing a route holds its changes in "
        "the subscription; resuming applies them in order.</p>"
        f'<div data-refresh="/routes/table">{routes_table(rows, csrf)}</div>'
    )


def _shorter(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis saying it was cut (the message page has it all)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _link(path: str, **query: str) -> str:
    return f"{path}?{urlencode(query)}" if query else path


def groups_page(groups: Sequence[ReasonGroup]) -> Markup:
    """Dead-letters grouped by route and reason, each group a link to its messages."""
    rows = []
    for g in groups:
        href = _link("/deadletters/list", area=g.area, subscription=g.subscription, reason=g.reason)
        rows.append(
            Markup(
                f'<tr><td class="nowrap">{e(g.area)}</td><td class="nowrap">{e(g.subscription)}</td>'
                f'<td class="nowrap"><a href="{e(href)}">{e(g.reason)}</a></td><td class="num">{g.count}</td>'
                f"<td>{e(_age(g.oldest))}</td><td>{e(_age(g.newest))}</td>"
                f"<td>{e(_shorter(g.example_description, 260))}</td></tr>"
            )
        )
    head = (
        "<tr><th>area</th><th>direction</th><th>reason</th><th class=num>count</th><th>oldest</th>"
        "<th>newest</th><th>example</th></tr>"
    )
    body = "".join(rows) or '<tr><td colspan="7" class="empty">No dead-lettered messages.</td></tr>'
    return Markup(
        '<p class="muted">Pick a group to see its messages, fix their cause, then replay them (edited if '
        f'need be) or purge them.</p><p><a href="/deadletters/list">All dead letters</a></p>'
        f"<table id=groups><thead>{head}</thead><tbody>{body}</tbody></table>"
    )


def letters_page(letters: Sequence[DeadLetter], csrf: str, *, edits: str = "") -> Markup:
    """Messages with check boxes; replay (with edits and a preview) or purge the ticked ones."""
    rows = []
    for letter in letters:
        ref = LetterRef(letter.area, letter.subscription, letter.sequence_number)
        key = _key_text(letter)
        rows.append(
            f'<tr><td><input type="checkbox" name="ref" value="{e(str(ref))}" checked '
            f'aria-label="select {e(letter.message_id)}"></td>'
            f'<td class="nowrap">{e(letter.area)}</td><td class="nowrap">{e(letter.subscription)}</td>'
            f'<td><a href="/deadletters/message/{e(str(ref))}">{e(letter.message_id)}</a></td>'
            f'<td>{e(key)}</td><td class="nowrap">{e(letter.reason)}</td>'
            f"<td>{e(_shorter(letter.description, 200))}</td><td class=num>{letter.replay_count}</td>"
            f'<td class="nowrap">{e(_time(letter.enqueued_time))}</td></tr>'
        )
    head = (
        '<tr><th><input type="checkbox" data-select-all="ref" checked aria-label="select all"></th>'
        "<th>area</th>"
        "<th>direction</th><th>message</th><th>record</th><th>reason</th><th>description</th>"
        "<th class=num>replays</th><th>dead-lettered at</th></tr>"
    )
    body = "".join(rows) or '<tr><td colspan="9" class="empty">No dead-lettered messages.</td></tr>'
    return Markup(
        f'<form method="post" action="/deadletters/preview" id="letters">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"
        "<h2>Replay or purge the ticked messages</h2>"
        '<p class="muted">Fix the cause first (create the missing record, correct the target), then replay. '
        "To change the message itself, give edits, one per line, naming a field of the change's data: "
        "<code>data.SalesCurrencyCode=USD</code>. The preview shows each change and how many would be sent; "
        "nothing is sent until you confirm.</p>"
        f'<label for="edits">Edits (optional)</label><br>'
        f'<textarea id="edits" name="edits" rows="3" placeholder="data.FIELD=VALUE">{e(edits)}</textarea>'
        '<div class="toolbar"><button type="submit" name="next" value="replay">Preview replay</button>'
        '<button type="submit" name="next" value="purge" class="danger" '
        'formaction="/deadletters/purge-confirm">'
        "Purge…</button></div></form>"
    )


def _key_text(letter: DeadLetter) -> str:
    envelope = _json(letter.body)
    key = envelope.get("key") if isinstance(envelope, dict) else None
    if isinstance(key, dict):
        return ", ".join(f"{name}={value}" for name, value in key.items())
    return letter.session_id or "-"


def _json(body: bytes) -> Any:  # noqa: ANN401 - any JSON
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _pretty(body: bytes) -> str:
    document = _json(body)
    if document is None:
        return body.decode("utf-8", errors="replace")
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def letter_page(letter: DeadLetter, history: Sequence[dict[str, Any]], csrf: str) -> Markup:
    """One message: reason, description, properties, body and its history."""
    ref = str(LetterRef(letter.area, letter.subscription, letter.sequence_number))
    facts = [
        ("reason", letter.reason),
        ("description", letter.description),
        ("route", f"{letter.area}/{letter.subscription}"),
        ("message id", letter.message_id),
        ("first published as", letter.original_message_id),
        ("sequence number", letter.sequence_number),
        ("session", letter.session_id),
        ("subject", letter.subject),
        ("content type", letter.content_type),
        ("delivery count", letter.delivery_count),
        ("replayed before", letter.replay_count),
        ("dead-lettered at", _time(letter.enqueued_time)),
    ]
    listing = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts)
    properties = orjson.dumps(to_plain(dict(letter.properties)), option=orjson.OPT_INDENT_2).decode()
    body = (
        _pretty(letter.body)
        if letter.body
        else orjson.dumps(letter.message_body.to_json(), option=orjson.OPT_INDENT_2).decode()
    )
    trail = table(
        ("time", "operator", "action", "outcome", "details"),
        (
            (_when(h.get("time")), h.get("operator"), h.get("action"), h.get("outcome"), _details(h))
            for h in history
        ),
        empty="No action on this message yet.",
        nowrap=1,
    )
    return Markup(
        f"<dl>{listing}</dl>"
        f'<form method="post" action="/deadletters/preview" class="toolbar">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<input type="hidden" name="ref" value="{e(ref)}">'
        '<button type="submit">Replay…</button>'
        '<button type="submit" class="danger" formaction="/deadletters/purge-confirm">Purge…</button></form>'
        f'<div class="grid"><div><h2>Body</h2><pre id="body">{e(body)}</pre></div>'
        f"<div><h2>Application properties</h2><pre>{e(properties)}</pre></div></div>"
        f"<h2>History</h2>{trail}"
    )


def _details(line: dict[str, Any]) -> str:
    skip = {"time", "operator", "action", "outcome", "via"}
    return ", ".join(f"{k}={_plain(v)}" for k, v in line.items() if k not in skip and v not in ("", None, {}))


def _plain(value: object) -> str:
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def replay_preview_page(preview: ReplayPreview, edits: str, csrf: str) -> Markup:
    """The dry run: each message's change, problems, and the count; a confirm button when all is well."""
    parts = [
        f'<p id="dry-run-count"><strong>{preview.count}</strong> message(s) would be replayed'
        + (f", {len(preview.problems)} cannot be" if preview.problems else "")
        + (f"; {len(preview.missing)} are gone already" if preview.missing else "")
        + ".</p>"
    ]
    for letter in preview.letters:
        ref = str(LetterRef(letter.area, letter.subscription, letter.sequence_number))
        parts.append(f"<h2>{e(letter.area)}/{e(letter.subscription)} · {e(letter.message_id)}</h2>")
        if ref in preview.problems:
            parts.append(f'<p class="flash error">{e(preview.problems[ref])}</p>')
            continue
        before, after = _pretty(letter.body).splitlines(), _pretty(preview.after[ref]).splitlines()
        if before == after:
            parts.append('<p class="muted">Sent unchanged.</p>')
        else:
            parts.append(f"<pre class=diff>{_diff(before, after)}</pre>")
    if preview.letters and not preview.problems:
        hidden = "".join(_hidden_ref(x) for x in preview.letters)
        parts.append(
            '<form method="post" action="/deadletters/replay" class="toolbar">'
            f'<input type="hidden" name="csrf" value="{e(csrf)}">{hidden}'
            f'<input type="hidden" name="edits" value="{e(edits)}">'
            f'<button type="submit">Replay {preview.count} message(s)</button>'
            '<a href="/deadletters">Cancel</a></form>'
        )
    else:
        parts.append('<p><a href="/deadletters">Back to the dead letters</a></p>')
    return Markup("".join(parts))


def _hidden_ref(letter: DeadLetter) -> str:
    ref = LetterRef(letter.area, letter.subscription, letter.sequence_number)
    return f'<input type="hidden" name="ref" value="{e(str(ref))}">'


def _diff(before: list[str], after: list[str]) -> str:
    lines = []
    for line in difflib.unified_diff(before, after, lineterm="", n=2):
        if line.startswith(("---", "+++")):
            continue
        if line.startswith("+"):
            lines.append(f"<ins>{e(line)}</ins>")
        elif line.startswith("-"):
            lines.append(f"<del>{e(line)}</del>")
        else:
            lines.append(str(e(line)))
    return "\n".join(lines)


def purge_page(letters: Sequence[DeadLetter], missing: int, csrf: str) -> Markup:
    """How many would be removed, and a confirm button."""
    rows = ((x.area, x.subscription, x.message_id, x.reason) for x in letters)
    hidden = "".join(_hidden_ref(x) for x in letters)
    gone = f" ({missing} of the selected are gone already)" if missing else ""
    confirm = (
        '<form method="post" action="/deadletters/purge" class="toolbar">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">{hidden}'
        f'<button type="submit" class="danger">Remove {len(letters)} message(s) for good</button>'
        '<a href="/deadletters">Cancel</a></form>'
        if letters
        else '<p><a href="/deadletters">Back to the dead letters</a></p>'
    )
    return Markup(
        f'<p id="purge-count"><strong>{len(letters)}</strong> dead-lettered message(s) would be removed for '
        f"good{e(gone)}. They cannot be replayed afterwards.</p>"
        f"{table(('area', 'direction', 'message', 'reason'), rows)}{confirm}"
    )


def _area_form(action: str, label: str, areas: Sequence[str], csrf: str, extra: str = "") -> Markup:
    options = "".join(f'<option value="{e(a)}">{e(a)}</option>' for a in areas)
    return Markup(
        f'<form method="post" action="{e(action)}" class="toolbar">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<label for="area">Area</label><select id="area" name="area">{options}</select>{extra}'
        f'<button type="submit">{e(label)}</button></form>'
    )


def _jobs_table(jobs: Sequence[Job]) -> Markup:
    rows = [
        f'<tr><td><a href="/jobs/{e(job.id)}">{e(job.kind.value)} {e(job.area)}</a></td>'
        f'<td><span class="badge {e(job.state.value)}">{e(job.state.value)}</span></td>'
        f"<td>{e(job.who)}</td><td>{e(_time(job.started))}</td><td>{e(_time(job.finished))}</td>"
        f"<td>{e(job.error or '')}</td></tr>"
        for job in jobs
    ]
    body = "".join(rows) or '<tr><td colspan="6" class="empty">None started yet.</td></tr>'
    return Markup(
        "<table><thead><tr><th>job</th><th>state</th><th>by</th><th>started</th><th>finished</th><th></th>"
        f"</tr></thead><tbody>{body}</tbody></table>"
    )


def reconcile_page(areas: Sequence[str], jobs: Sequence[Job], csrf: str) -> Markup:
    """Start a reconcile of one area; earlier runs."""
    return Markup(
        '<p class="muted">A reconcile reads both systems through their APIs and compares every record of the '
        "area by its natural key. It changes nothing; from its report you can repair the records you "
        "pick.</p>"
        f"{_area_form('/reconcile/run', 'Run reconcile', areas, csrf)}<h2>Runs</h2>{_jobs_table(jobs)}"
    )


def sync_page(areas: Sequence[str], jobs: Sequence[Job], csrf: str) -> Markup:
    """Start an initial sync of one area (with what it depends on); earlier runs."""
    origin = (
        ' <label>From <select name="origin"><option value="fo">F&amp;O</option>'
        '<option value="dataverse">Dataverse</option></select></label>'
        ' <label><input type="checkbox" name="dependencies" value="yes" checked> '
        "first the areas it looks up</label>"
    )
    return Markup(
        '<p class="muted">An initial sync publishes every row of the area and, first, of the areas it '
        "looks up (companies and currencies before customers), one dependency layer at a time: a layer "
        "starts once the consumers took everything of the one before. A stopped run resumes where it "
        "stopped.</p>"
        f"{_area_form('/sync/start', 'Start initial sync', areas, csrf, origin)}"
        f"<h2>Runs</h2>{_jobs_table(jobs)}"
    )


def job_page(job: Job, csrf: str) -> Markup:
    """A job's progress, and its result once done (refreshed while it runs)."""
    state = f'<span class="badge {e(job.state.value)}">{e(job.state.value)}</span>'
    head = (
        f"<p>{state} {e(job.kind.value)} of <strong>{e(job.area)}</strong>, started by {e(job.who)} at "
        f"{e(_time(job.started))}"
        + (f", finished at {e(_time(job.finished))}" if job.finished else "")
        + "</p>"
    )
    if job.error:
        head += f'<p class="flash error">{e(job.error)}</p>'
    if job.state is JobState.RUNNING:
        head += "<span data-running hidden></span>"
    if job.kind is JobKind.INITIAL_SYNC:
        body: str = _layers(job)
    else:
        body = table(("map: side", "rows read"), sorted(job.rows.items()), numeric_from=1)
    if job.state is JobState.DONE and isinstance(job.result, ReconcileReport):
        body += _report(job, job.result, csrf)
    if job.state is JobState.DONE and isinstance(job.result, SyncSummary):
        body += f"<p>Published {job.result.records:,} record(s) in {job.result.seconds:.1f} s.</p>"
    return Markup(head + body)


def _layers(job: Job) -> Markup:
    rows = [
        (f"layer {index}", ", ".join(layer.areas), layer.step, layer.records)
        for index, layer in enumerate(job.layers, start=1)
    ]
    return table(("layer", "areas", "step", "rows read"), rows, numeric_from=3)


def _report(job: Job, report: ReconcileReport, csrf: str) -> Markup:
    summary = table(
        ("area", "company", "compared", "missing in F&O", "missing in Dataverse", "differing", "unmappable"),
        (
            (
                s.area,
                s.company or "(shared)",
                s.compared,
                s.missing_in_fo,
                s.missing_in_dataverse,
                s.differing,
                s.problems,
            )
            for s in report.summaries
        ),
        numeric_from=2,
    )
    verdict = "Drift found." if report.has_drift else "No drift: both systems agree."
    if job.kind is JobKind.REPAIR:
        return Markup(
            f"<h2>Repair</h2><p>Published {report.repairs_published} repair(s); the consumers apply them. "
            "Run the reconcile again to confirm.</p>"
        )
    rows = []
    for drift in report.drifts:
        key = " / ".join(str(v) for v in drift.key.values())
        fields = "; ".join(f"{f.field}: {f.fo!r} ≠ {f.dataverse!r}" for f in drift.fields)
        rows.append(
            f'<tr><td><input type="checkbox" name="record" value="{e(drift_key(drift))}" '
            f'aria-label="repair {e(key)}"></td><td>{e(drift.map_name)}</td>'
            f"<td>{e(drift.company or '-')}</td>"
            f"<td>{e(key)}</td><td>{e(_DRIFT_LABELS.get(drift.kind.value, drift.kind.value))}</td>"
            f"<td>{e(fields)}</td></tr>"
        )
    records = ""
    if rows:
        more = f"<p class=muted>… and {report.unlisted} more not listed.</p>" if report.unlisted else ""
        records = (
            f'<h2>Drifted records</h2><form method="post" action="/reconcile/repair">'
            f'<input type="hidden" name="csrf" value="{e(csrf)}">'
            f'<input type="hidden" name="job" value="{e(job.id)}">'
            "<table><thead><tr>"
            '<th><input type="checkbox" data-select-all="record" aria-label="select all"></th>'
            "<th>map</th><th>company</th><th>key</th><th>drift</th><th>F&amp;O ≠ Dataverse</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>{more}"
            '<div class="toolbar"><button type="submit">Repair selected</button>'
            '<span class="muted">republishes each picked record\'s source state for the consumers to apply'
            "</span></div></form>"
        )
    problems = ""
    if report.problems:
        problems = "<h2>Rows that cannot be mapped</h2>" + table(
            ("map", "side", "row", "problem"),
            ((p.map_name, p.side, p.row, p.message) for p in report.problems[:100]),
        )
    return Markup(
        f"<h2>Drift by company</h2><p><strong>{e(verdict)}</strong></p>{summary}{records}{problems}"
    )


def _when(value: object) -> str:
    """An audit line's ISO time as ``YYYY-MM-DD HH:MM:SS`` UTC (as written when it does not parse)."""
    try:
        return _time(datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def audit_page(lines: Sequence[dict[str, Any]]) -> Markup:
    """The audit trail, newest first."""
    return Markup(
        '<p class="muted">Every action of the console and of the CLI (dlq, pause, resume, alerts), newest '
        "first; times in UTC.</p>"
        + table(
            ("time (UTC)", "operator", "via", "action", "outcome", "details"),
            (
                (
                    _when(x.get("time")),
                    x.get("operator"),
                    x.get("via", "cli"),
                    x.get("action"),
                    x.get("outcome"),
                    _details(x),
                )
                for x in reversed(lines)
            ),
            empty="No action recorded yet.",
            nowrap=4,
        )
    )


def alerts_page(lines: Sequence[dict[str, Any]]) -> Markup:
    """Alerts that fired (``dualbus alerts run`` records each in the audit trail), newest first."""
    fired = [x for x in lines if x.get("action") == "alert"]
    return Markup(
        '<p class="muted">Alerts fire from <code>dualbus alerts run RULES.json</code>, which records each in '
        "the audit trail.</p>"
        + table(
            ("time (UTC)", "details"),
            ((_when(x.get("time")), _details(x)) for x in reversed(fired)),
            empty="No alert has fired.",
            nowrap=1,
        )
    )


def login_page(csrf: str) -> Markup:
    """Sign in with the console's token and a name for the audit trail."""
    return Markup(
        '<form method="post" action="/login" class="toolbar">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        '<label>Your name <input type="text" name="name" required autocomplete="username"></label>'
        '<label>Token <input type="password" name="token" required autocomplete="current-password"></label>'
        '<button type="submit">Sign in</button></form>'
        '<p class="muted">The token is the one the console was started with '
        "(--token or DUALBUS_CONSOLE_TOKEN). "
        "Your name goes in the audit trail with everything you do.</p>"
    )
