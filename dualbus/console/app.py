"""The console's web application: pages to look, POSTs to act, every action audited, no traceback shown.

Actions answer with a redirect to a page that shows a one-line message (post/redirect/get), so reloading a
page never repeats an action. A dualbus error becomes that one line; anything else becomes one line naming
the error's type (and goes to the log with its traceback, for whoever runs the console).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from dualbus.console import pages
from dualbus.console.edits import parse_edit_lines
from dualbus.console.hosts import LOOPBACK_NAMES
from dualbus.console.html import Markup, button_form, layout
from dualbus.console.jobs import Job, JobKind, Jobs, JobState
from dualbus.console.operations import Backend, LetterRef
from dualbus.console.security import (
    CSRF_COOKIE,
    REFRESH_HEADER,
    SESSION_COOKIE,
    CsrfTokens,
    Identity,
    SessionLimits,
    Sessions,
    bearer_matches,
    token_matches,
)
from dualbus.ops.dlq import OperationReport
from dualbus.shared.errors import ConfigError, DualbusError
from dualbus.shared.logs import redact

__all__ = ["ConsoleConfig", "Workflows", "create_app"]

_log = logging.getLogger(__name__)
_FLASH_LIMIT = 5
_OPEN_PATHS = frozenset({"/login"})


@dataclass(frozen=True, slots=True)
class Workflows:
    """How jobs do their work (the real ones in ``dualbus.console.workflows``; tests pass their own)."""

    reconcile: Callable[[Job], Any]
    repair: Callable[[frozenset[str], Job], Any]
    sync: Callable[[str, bool, Job], Any]


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    """What the app is started with; ``allowed_hosts``: the Host names it answers to (``hosts``)."""

    areas: tuple[str, ...]
    operator: str
    token: SecretStr | None = None
    allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES
    has_metrics: bool = False
    secure_cookies: bool = False
    sessions: SessionLimits = field(default_factory=SessionLimits)


@dataclass(slots=True)
class _State:
    backend: Backend
    workflows: Workflows
    config: ConsoleConfig
    jobs: Jobs = field(default_factory=Jobs)
    sessions: Sessions = field(default_factory=Sessions)
    csrf_tokens: CsrfTokens = field(default_factory=CsrfTokens)
    flashes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


class _RefusedError(Exception):
    """A request the console will not serve (signed out, bad CSRF token): answered with ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__("refused")
        self.response = response


Handler = Callable[[Request, "_Context"], Awaitable[Response]]


@dataclass(slots=True)
class _Context:
    state: _State
    identity: Identity
    csrf: str
    form: FormData | None = None

    def flash(self, kind: str, text: str) -> None:
        messages = self.state.flashes.setdefault(self.csrf, [])
        messages.append((kind, redact(text)))
        del messages[:-_FLASH_LIMIT]

    def page(self, title: str, body: Markup, *, active: str, status: int = 200) -> Response:
        shown = self.state.flashes.pop(self.csrf, [])
        signed_in = self.state.config.token is not None and self.identity.session
        leave = (
            button_form("/logout", "Sign out", self.csrf, {}, kind="secondary") if signed_in else Markup("")
        )
        page = layout(title, body, active=active, who=self.identity.name, flashes=shown, sign_out=leave)
        return HTMLResponse(page, status_code=status)

    def values(self, name: str) -> list[str]:
        return [str(v) for v in self.form.getlist(name)] if self.form is not None else []

    def value(self, name: str, default: str = "") -> str:
        values = self.values(name)
        return values[0] if values else default


def create_app(backend: Backend, workflows: Workflows, config: ConsoleConfig) -> Starlette:
    """The console app over ``backend``."""
    state = _State(backend=backend, workflows=workflows, config=config, sessions=Sessions(config.sessions))

    def wrap(handler: Handler, *, post: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                context = await _context(request, state, post=post)
            except _RefusedError as refused:
                _not_framed(refused.response)
                return refused.response
            except Exception as exc:  # noqa: BLE001 - a body that cannot be read as a form, say
                _log.warning("console request refused", extra={"path": request.url.path, "error": str(exc)})
                return _one_line(f"refused: the request cannot be read ({type(exc).__name__})", 400)
            try:
                response = await handler(request, context)
            except DualbusError as exc:
                response = _failed(request, context, str(exc))
            except Exception as exc:  # noqa: BLE001 - the page says what broke in one line, the log in full
                _log.exception("console request failed", extra={"path": request.url.path})
                response = _failed(request, context, f"unexpected {type(exc).__name__}: {exc}")
            if request.cookies.get(CSRF_COOKIE) != context.csrf:  # none yet, or not one the console made
                response.set_cookie(
                    CSRF_COOKIE, context.csrf, httponly=True, samesite="strict", secure=config.secure_cookies
                )
            _not_framed(response)
            return response

        return endpoint

    routes = [
        Route("/", wrap(_home)),
        Route("/login", wrap(_login_form)),
        Route("/login", wrap(_login, post=True), methods=["POST"]),
        Route("/logout", wrap(_logout, post=True), methods=["POST"]),
        Route("/routes", wrap(_routes)),
        Route("/routes/table", wrap(_routes_table)),
        Route("/routes/pause", wrap(_pause, post=True), methods=["POST"]),
        Route("/deadletters", wrap(_groups)),
        Route("/deadletters/list", wrap(_letters)),
        Route("/deadletters/message/{area}/{subscription}/{sequence:int}", wrap(_letter)),
        Route("/deadletters/preview", wrap(_preview, post=True), methods=["POST"]),
        Route("/deadletters/replay", wrap(_replay, post=True), methods=["POST"]),
        Route("/deadletters/purge-confirm", wrap(_purge_confirm, post=True), methods=["POST"]),
        Route("/deadletters/purge", wrap(_purge, post=True), methods=["POST"]),
        Route("/reconcile", wrap(_reconcile)),
        Route("/reconcile/run", wrap(_reconcile_run, post=True), methods=["POST"]),
        Route("/reconcile/repair", wrap(_repair, post=True), methods=["POST"]),
        Route("/sync", wrap(_sync)),
        Route("/sync/start", wrap(_sync_start, post=True), methods=["POST"]),
        Route("/jobs/{job}", wrap(_job)),
        Route("/jobs/{job}/part", wrap(_job_part)),
        Route("/audit", wrap(_audit)),
        Route("/alerts", wrap(_alerts)),
    ]
    # Before any page: a request naming a host the console does not answer to (DNS rebinding) gets a 400.
    known_hosts = Middleware(
        TrustedHostMiddleware, allowed_hosts=list(config.allowed_hosts), www_redirect=False
    )
    return Starlette(routes=routes, middleware=[known_hosts])


async def _context(request: Request, state: _State, *, post: bool) -> _Context:
    """Who is asking, their CSRF token, and the form of a POST; _RefusedError when they may not."""
    cookie = request.cookies.get(CSRF_COOKIE)
    token = state.config.token
    by_header = token is not None and bearer_matches(request, token)
    identity: Identity | None = Identity(state.config.operator)
    # A page's own refresh is no sign of anyone there: it must not keep an idle session alive.
    refresh = REFRESH_HEADER in request.headers
    if token is not None and not by_header:
        name = state.sessions.name(request.cookies.get(SESSION_COOKIE), touch=not refresh)
        identity = Identity(name, session=True) if name else None
    elif by_header:
        identity = Identity(request.headers.get("x-dualbus-operator", "token holder"), via_header=True)
    # A signed-in browser's token is signed for its session (security.CsrfTokens).
    session = request.cookies.get(SESSION_COOKIE, "") if identity is not None and identity.session else ""
    tokens = state.csrf_tokens
    csrf = cookie if cookie is not None and tokens.signed(cookie, session) else tokens.new(session)
    form = await request.form() if post else None
    context = _Context(state, identity or Identity("signed out"), csrf, form)
    if identity is None and request.url.path not in _OPEN_PATHS:
        if request.method == "GET" and not refresh:
            response: Response = RedirectResponse("/login", status_code=303)
            if cookie != csrf:
                response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict")
            raise _RefusedError(response)
        raise _RefusedError(_one_line("refused: sign in first, or send Authorization: Bearer <token>", 401))
    if post and not by_header and not tokens.matches(cookie, form and form.get("csrf"), session):
        raise _RefusedError(
            _one_line(
                "refused: this form's CSRF token does not match this browser's; "
                "reload the page and try again",
                403,
            )
        )
    return context


def _not_framed(response: Response) -> None:
    """No page of the console is shown in another site's frame, where its forms (a purge's ticked letters,
    a pause) could be clicked for the operator: X-Frame-Options for older browsers, CSP for the others."""
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", "frame-ancestors 'none'")


def _one_line(text: str, status: int) -> Response:
    return HTMLResponse(
        layout("Refused", Markup(""), active="", who="", flashes=[("error", text)]), status_code=status
    )


def _failed(request: Request, context: _Context, text: str) -> Response:
    """After a failed action, back to the page it came from with the message; a failed page shows it."""
    context.flash("error", text)
    referer = request.headers.get("referer")
    if request.method == "POST" and referer and referer.startswith(str(request.base_url)):
        return RedirectResponse(referer, status_code=303)
    return context.page("Something went wrong", Markup(""), active="", status=400)


def _back(request: Request, default: str) -> Response:
    referer = request.headers.get("referer")
    target = referer if referer and referer.startswith(str(request.base_url)) else default
    return RedirectResponse(target, status_code=303)


async def _home(_request: Request, _context: _Context) -> Response:
    return RedirectResponse("/routes", status_code=303)


async def _login_form(_request: Request, context: _Context) -> Response:
    if context.state.config.token is None:
        return RedirectResponse("/routes", status_code=303)
    return context.page("Sign in", pages.login_page(context.csrf), active="")


async def _login(_request: Request, context: _Context) -> Response:
    token = context.state.config.token
    name, given = context.value("name").strip(), context.value("token")
    if token is None:
        return RedirectResponse("/routes", status_code=303)
    if not name:
        raise ConfigError("give your name: it goes in the audit trail")
    if not token_matches(given, token):
        context.state.backend.record(name, "console.sign-in", "refused")
        raise ConfigError("that is not the console's token")
    session = context.state.sessions.open(name)
    context.state.backend.record(name, "console.sign-in", "signed in")
    response = RedirectResponse("/routes", status_code=303)
    config = context.state.config
    response.set_cookie(
        SESSION_COOKIE,
        session,
        # The browser forgets it when the server would refuse it anyway.
        max_age=int(config.sessions.lifetime_seconds),
        httponly=True,
        samesite="strict",
        secure=config.secure_cookies,
    )
    return response


async def _logout(request: Request, context: _Context) -> Response:
    context.state.sessions.close(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def _routes(_request: Request, context: _Context) -> Response:
    rows = await run_in_threadpool(context.state.backend.routes)
    body = pages.routes_page(rows, context.csrf, has_metrics=context.state.config.has_metrics)
    return context.page("Routes", body, active="/routes")


async def _routes_table(_request: Request, context: _Context) -> Response:
    rows = await run_in_threadpool(context.state.backend.routes)
    return HTMLResponse(pages.routes_table(rows, context.csrf))


async def _pause(request: Request, context: _Context) -> Response:
    route, action = context.value("route"), context.value("action")
    area, _, subscription = route.partition("/")
    if action not in ("pause", "resume") or not subscription:
        raise ConfigError(f"cannot {action or 'do that'} to {route or 'no route'}")
    paused = action == "pause"
    await run_in_threadpool(
        lambda: context.state.backend.set_paused(
            area, subscription, paused=paused, reason=context.value("reason"), who=context.identity.name
        )
    )
    context.flash(
        "ok",
        f"{route}: {'paused' if paused else 'resumed'}; the consumers follow within seconds"
        + ("; changes wait in the subscription meanwhile" if paused else ""),
    )
    return _back(request, "/routes")


async def _groups(_request: Request, context: _Context) -> Response:
    groups = await run_in_threadpool(context.state.backend.groups)
    return context.page("Dead letters", pages.groups_page(groups), active="/deadletters")


async def _letters(request: Request, context: _Context) -> Response:
    query = request.query_params
    area, subscription, reason = query.get("area"), query.get("subscription"), query.get("reason")
    letters = await run_in_threadpool(lambda: context.state.backend.letters(area, subscription, reason))
    scope = " · ".join(part for part in (area, subscription, reason) if part) or "all"
    body = pages.letters_page(letters, context.csrf)
    return context.page(f"Dead letters: {scope}", body, active="/deadletters")


async def _letter(request: Request, context: _Context) -> Response:
    params = request.path_params
    ref = LetterRef(str(params["area"]), str(params["subscription"]), int(params["sequence"]))
    letter = await run_in_threadpool(lambda: context.state.backend.letter(ref))
    trail = await run_in_threadpool(context.state.backend.audit)
    ids = {letter.message_id, letter.original_message_id}
    history = [
        line
        for line in trail
        if ids & {str(line.get("message_id")), str(line.get("replay_message_id"))}
        # A replayed copy's id is the first id with ".replay-N": its earlier replays belong here too.
        or str(line.get("message_id", "")).startswith(f"{letter.original_message_id}.replay-")
    ]
    body = pages.letter_page(letter, history, context.csrf)
    return context.page(f"Dead letter {letter.message_id}", body, active="/deadletters")


def _refs(context: _Context) -> list[LetterRef]:
    refs = [LetterRef.parse(value) for value in context.values("ref")]
    if not refs:
        raise ConfigError("no dead-letters selected: tick at least one")
    return refs


async def _preview(_request: Request, context: _Context) -> Response:
    refs, text = _refs(context), context.value("edits")
    edits = parse_edit_lines(text)
    preview = await run_in_threadpool(lambda: context.state.backend.preview_replay(refs, edits))
    body = pages.replay_preview_page(preview, text, context.csrf)
    return context.page("Replay: dry run", body, active="/deadletters")


async def _replay(_request: Request, context: _Context) -> Response:
    refs, text = _refs(context), context.value("edits")
    edits = parse_edit_lines(text)
    reports = await run_in_threadpool(
        lambda: context.state.backend.replay(refs, edits, who=context.identity.name)
    )
    _report(context, "replayed", reports)
    return RedirectResponse("/deadletters", status_code=303)


async def _purge_confirm(_request: Request, context: _Context) -> Response:
    refs = _refs(context)
    wanted = {str(ref) for ref in refs}
    backend = context.state.backend
    letters = await run_in_threadpool(
        lambda: [
            letter
            for area, subscription in sorted({(r.area, r.subscription) for r in refs})
            for letter in backend.letters(area, subscription, None)
            if str(LetterRef(letter.area, letter.subscription, letter.sequence_number)) in wanted
        ]
    )
    body = pages.purge_page(letters, len(wanted) - len(letters), context.csrf)
    return context.page("Purge: confirm", body, active="/deadletters")


async def _purge(_request: Request, context: _Context) -> Response:
    refs = _refs(context)
    reports = await run_in_threadpool(lambda: context.state.backend.purge(refs, who=context.identity.name))
    _report(context, "purged", reports)
    return RedirectResponse("/deadletters", status_code=303)


def _report(context: _Context, verb: str, reports: dict[str, OperationReport]) -> None:
    done = sum(len(r.done) for r in reports.values())
    matched = sum(r.matched for r in reports.values())
    failed = [f"{mid}: {error}" for r in reports.values() for mid, error in r.failed.items()]
    kind = "ok" if not failed and done else "error"
    text = f"{verb} {done} of {matched} selected message(s)"
    if matched == 0:
        text += " (none of them is there any more)"
    context.flash(kind, text + (f"; failed: {failed[0]}" if failed else ""))


async def _reconcile(_request: Request, context: _Context) -> Response:
    state = context.state
    jobs = state.jobs.all(JobKind.RECONCILE) + state.jobs.all(JobKind.REPAIR)
    jobs.sort(key=lambda job: job.started, reverse=True)
    body = pages.reconcile_page(state.config.areas, jobs, context.csrf)
    return context.page("Reconcile", body, active="/reconcile")


def _area(context: _Context) -> str:
    area = context.value("area")
    if area not in context.state.config.areas:
        raise ConfigError(f"unknown area {area!r}; known: {', '.join(context.state.config.areas)}")
    return area


def _start(context: _Context, kind: JobKind, area: str, work: Callable[[Job], Any], **details: Any) -> Job:  # noqa: ANN401
    backend, who = context.state.backend, context.identity.name

    def finished(job: Job) -> None:
        outcome = "failed" if job.state is JobState.FAILED else "finished"
        backend.record(who, kind.value, outcome, area=area, job=job.id, error=job.error)

    job = context.state.jobs.start(kind, area, who, work, finished=finished)
    backend.record(who, kind.value, "started", area=area, job=job.id, **details)
    return job


async def _reconcile_run(_request: Request, context: _Context) -> Response:
    area = _area(context)
    job = _start(context, JobKind.RECONCILE, area, context.state.workflows.reconcile)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


async def _repair(_request: Request, context: _Context) -> Response:
    source = context.state.jobs.get(context.value("job"))
    records = frozenset(context.values("record"))
    if not records:
        raise ConfigError("no drifted record picked: tick the records to repair")
    repair = context.state.workflows.repair
    job = _start(
        context, JobKind.REPAIR, source.area, lambda job: repair(records, job), records=sorted(records)
    )
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


async def _sync(_request: Request, context: _Context) -> Response:
    body = pages.sync_page(
        context.state.config.areas, context.state.jobs.all(JobKind.INITIAL_SYNC), context.csrf
    )
    return context.page("Initial sync", body, active="/sync")


async def _sync_start(_request: Request, context: _Context) -> Response:
    area, origin = _area(context), context.value("origin", "fo")
    if origin not in ("fo", "dataverse"):
        raise ConfigError(f"an initial sync reads from fo or dataverse, not {origin!r}")
    deep = context.value("dependencies") == "yes"
    sync = context.state.workflows.sync
    job = _start(
        context,
        JobKind.INITIAL_SYNC,
        area,
        lambda job: sync(origin, deep, job),
        origin=origin,
        with_dependencies=deep,
    )
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


async def _job(request: Request, context: _Context) -> Response:
    job = context.state.jobs.get(str(request.path_params["job"]))
    part = pages.job_page(job, context.csrf)
    body = (
        Markup(f'<div data-refresh="/jobs/{job.id}/part" data-until="data-running">{part}</div>')
        if job.state is JobState.RUNNING
        else part
    )
    active = "/sync" if job.kind is JobKind.INITIAL_SYNC else "/reconcile"
    return context.page(f"{job.kind.value.capitalize()}: {job.area}", body, active=active)


async def _job_part(request: Request, context: _Context) -> Response:
    job = context.state.jobs.get(str(request.path_params["job"]))
    return HTMLResponse(pages.job_page(job, context.csrf))


async def _audit(_request: Request, context: _Context) -> Response:
    lines = await run_in_threadpool(context.state.backend.audit)
    return context.page("Audit trail", pages.audit_page(lines), active="/audit")


async def _alerts(_request: Request, context: _Context) -> Response:
    lines = await run_in_threadpool(context.state.backend.audit)
    return context.page("Alerts that fired", pages.alerts_page(lines), active="/alerts")
