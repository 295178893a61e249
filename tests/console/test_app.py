"""The console's web layer: who may use it, CSRF on every action, actions audited, errors as one line."""

from __future__ import annotations

import html
import re
import socket
from contextlib import ExitStack

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from dualbus.cli import app as cli
from dualbus.console import build_app
from dualbus.console.security import CSRF_COOKIE, SessionLimits, Sessions, is_loopback, require_token
from dualbus.shared.errors import ConfigError
from tests.console.fakes import FakeBackend, Gate, make_app
from tests.console.serving import serving

TOKEN = "a-console-token-of-length"


@pytest.fixture
def client_for():
    """A client of the app over a loopback socket; every app started is stopped at the end."""
    with ExitStack() as stack:

        def make(backend: FakeBackend, **kwargs) -> httpx.Client:
            url = stack.enter_context(serving(make_app(backend, **kwargs)))
            return stack.enter_context(httpx.Client(base_url=url, timeout=10))

        yield make


def _csrf(client: httpx.Client) -> str:
    client.get("/routes")
    return client.cookies[CSRF_COOKIE]


def _flash(page: str) -> list[str]:
    found = re.findall(r'<p class="flash (?:error|ok)" role="status">([^<]*)</p>', page)
    return [html.unescape(text) for text in found]


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_needs_no_token(host):
    require_token(host, None)
    assert is_loopback(host)


PUBLIC_HOSTS = ["0.0.0.0", "192.168.1.10", "example.org", "::"]  # noqa: S104 - refusing them is the point


@pytest.mark.parametrize("host", PUBLIC_HOSTS)
def test_any_other_host_needs_a_token(host):
    with pytest.raises(ConfigError, match="token"):
        require_token(host, None)
    require_token(host, SecretStr(TOKEN))


def test_a_short_token_is_refused():
    with pytest.raises(ConfigError, match="16 characters"):
        require_token(PUBLIC_HOSTS[1], SecretStr("short"))


def test_the_command_refuses_a_public_host_without_a_token_in_one_line(monkeypatch):
    monkeypatch.delenv("DUALBUS_CONSOLE_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["console", "--host", PUBLIC_HOSTS[0], "--port", "0"])
    assert result.exit_code == 2  # a usage error, as a bad --allowed-host is
    assert "Traceback" not in result.output
    assert "give it a token" in result.output
    assert build_app  # the app is built only after the check


def test_the_command_refuses_a_busy_port_in_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["console", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


def test_without_a_token_on_loopback_pages_open_as_the_os_user(client_for):
    client = client_for(FakeBackend())
    page = client.get("/routes")
    assert page.status_code == 200
    assert "os-user" in page.text
    assert 'data-route="customer/to-fo"' in page.text


def test_with_a_token_a_browser_must_sign_in(client_for):
    backend = FakeBackend()
    client = client_for(backend, token=TOKEN)
    assert client.get("/routes").headers["location"] == "/login"
    csrf = client.cookies[CSRF_COOKIE]
    wrong = client.post("/login", data={"csrf": csrf, "name": "alice", "token": "not-the-token-at-all"})
    assert wrong.status_code == 400
    assert _flash(wrong.text) == ["that is not the console's token"]
    assert client.get("/routes").status_code == 303
    signed = client.post("/login", data={"csrf": csrf, "name": "alice", "token": TOKEN})
    assert signed.status_code == 303
    page = client.get("/routes")
    assert page.status_code == 200
    assert "alice" in page.text
    # Signed in, the browser holds a token signed for its session, not the one it had before.
    assert client.cookies[CSRF_COOKIE] != csrf
    assert client.post("/logout", data={"csrf": csrf}).status_code == 403
    out = client.post("/logout", data={"csrf": client.cookies[CSRF_COOKIE]})
    assert out.headers["location"] == "/login"
    assert client.get("/routes").status_code == 303
    assert [(x["operator"], x["outcome"]) for x in backend.trail] == [
        ("alice", "refused"),
        ("alice", "signed in"),
    ]


def test_a_session_that_expired_signs_in_again_and_its_cookie_lives_no_longer(client_for):
    backend = FakeBackend()
    # A microsecond of idle time: the session is gone by the next request, with no wait in the test.
    limits = SessionLimits(idle_seconds=1e-6, lifetime_seconds=600)
    client = client_for(backend, token=TOKEN, sessions=limits)
    csrf = _csrf(client)
    signed = client.post("/login", data={"csrf": csrf, "name": "alice", "token": TOKEN})
    assert signed.status_code == 303
    cookie = signed.headers["set-cookie"]
    assert "dualbus_session=" in cookie
    assert "Max-Age=600" in cookie
    # The page's own refresh is told to reload (and so reaches sign-in), not handed the sign-in page.
    refreshed = client.get("/routes/table", headers={"X-Dualbus-Refresh": "1"})
    assert refreshed.status_code == 401
    assert client.get("/routes").headers["location"] == "/login"


def test_session_limits_must_allow_a_session() -> None:
    with pytest.raises(ConfigError, match="idle time"):
        SessionLimits(idle_seconds=0)
    with pytest.raises(ConfigError, match="lifetime"):
        SessionLimits(lifetime_seconds=0.5)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_expires_when_idle_and_at_its_lifetime_and_use_keeps_it_alive():
    clock = _Clock()
    sessions = Sessions(SessionLimits(idle_seconds=60, lifetime_seconds=300), clock=clock)
    session = sessions.open("alice")
    for _ in range(5):  # a request every 59 s keeps it open (295 s)...
        clock.now += 59
        assert sessions.name(session) == "alice"
    clock.now += 59  # ...but not past its 300 s lifetime, however busy (checked at 354 s)
    assert sessions.name(session) is None
    idle = sessions.open("bob")
    for _ in range(2):  # a page refreshing itself every 20 s is no activity...
        clock.now += 20
        assert sessions.name(idle, touch=False) == "bob"
    clock.now += 20
    assert sessions.name(idle, touch=False) is None  # ...so 60 s after sign-in the session is gone
    assert sessions.name("no-such-session") is None


def test_signing_in_forgets_the_sessions_that_expired():
    clock = _Clock()
    sessions = Sessions(SessionLimits(idle_seconds=60, lifetime_seconds=300), clock=clock)
    old = sessions.open("alice")
    clock.now += 61
    sessions.open("bob")
    clock.now -= 61  # were it still kept, going back in time would revive it
    assert sessions.name(old) is None


def test_with_a_token_a_script_sends_it_as_a_bearer_header(client_for):
    backend = FakeBackend()
    client = client_for(backend, token=TOKEN)
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Dualbus-Operator": "ci-job"}
    assert client.get("/routes", headers=headers).status_code == 200
    bad = client.post("/routes/pause", data={"route": "customer/to-fo", "action": "pause"})
    assert bad.status_code == 401
    done = client.post("/routes/pause", data={"route": "customer/to-fo", "action": "pause"}, headers=headers)
    assert done.status_code == 303
    assert backend.paused == {"customer/to-fo"}
    assert backend.trail[-1]["operator"] == "ci-job"


def test_a_post_without_the_csrf_token_is_refused_and_does_nothing(client_for):
    backend = FakeBackend()
    client = client_for(backend)
    csrf = _csrf(client)
    missing = client.post("/routes/pause", data={"route": "customer/to-fo", "action": "pause"})
    forged = client.post(
        "/routes/pause", data={"route": "customer/to-fo", "action": "pause", "csrf": csrf + "x"}
    )
    assert (missing.status_code, forged.status_code) == (403, 403)
    assert "CSRF" in _flash(forged.text)[0]
    assert backend.paused == set()
    assert backend.trail == []
    done = client.post("/routes/pause", data={"route": "customer/to-fo", "action": "pause", "csrf": csrf})
    assert done.status_code == 303
    assert backend.paused == {"customer/to-fo"}


def _with_cookie(value: str) -> dict[str, str]:
    return {"Cookie": f"{CSRF_COOKIE}={value}"}


def test_a_csrf_cookie_planted_by_another_page_on_this_address_gets_nothing_done(client_for):
    """Cookies do not keep ports apart: a page on another loopback port can set the console's CSRF cookie.

    A token of its own making, equal in cookie and form, must not pass; the console's own pages replace it.
    """
    backend = FakeBackend()
    client = client_for(backend)
    planted = "chosen-by-a-page-on-another-port"
    pause = {"route": "customer/to-fo", "action": "pause"}
    forged = client.post("/routes/pause", data={**pause, "csrf": planted}, headers=_with_cookie(planted))
    assert forged.status_code == 403
    assert backend.paused == set()
    assert backend.trail == []
    page = client.get("/routes", headers=_with_cookie(planted))
    mended = page.cookies[CSRF_COOKIE]
    assert mended != planted
    assert f'value="{mended}"' in page.text
    client.cookies.clear()
    done = client.post("/routes/pause", data={**pause, "csrf": mended}, headers=_with_cookie(mended))
    assert done.status_code == 303
    assert backend.paused == {"customer/to-fo"}


def test_a_token_the_sign_in_page_gave_someone_else_gets_nothing_done_in_a_session(client_for):
    """A page of the same site (a sibling subdomain) fetches a signed token from the open sign-in page,
    plants it as the signed-in browser's cookie and posts with it: the token is for no session, refused."""
    backend = FakeBackend()
    victim = client_for(backend, token=TOKEN)
    victim.get("/login")
    csrf = victim.cookies[CSRF_COOKIE]
    victim.post("/login", data={"csrf": csrf, "name": "alice", "token": TOKEN})
    session = victim.cookies["dualbus_session"]
    stranger = client_for(backend, token=TOKEN)
    stranger.base_url = victim.base_url
    stranger.get("/login")
    planted = stranger.cookies[CSRF_COOKIE]
    victim.cookies.clear()
    headers = {"Cookie": f"dualbus_session={session}; {CSRF_COOKIE}={planted}"}
    forged = victim.post(
        "/routes/pause", data={"route": "customer/to-fo", "action": "pause", "csrf": planted}, headers=headers
    )
    assert forged.status_code == 403
    assert backend.paused == set()


def test_pages_may_not_be_framed_by_another_site(client_for):
    """Framed by another page, the ticked purge and pause forms could be clicked for the operator."""
    page = client_for(FakeBackend()).get("/routes")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_a_csrf_token_from_an_earlier_console_process_is_replaced(client_for):
    """Each process signs with a key of its own: an old page's token is refused, the new page works."""
    first, second = client_for(FakeBackend()), client_for(backend := FakeBackend())
    old = _csrf(first)
    pause = {"route": "customer/to-fo", "action": "pause", "csrf": old}
    refused = second.post("/routes/pause", data=pause, headers=_with_cookie(old))
    assert refused.status_code == 403
    assert second.get("/routes", headers=_with_cookie(old)).cookies[CSRF_COOKIE] != old
    assert backend.paused == set()


def test_pause_and_resume_are_audited_with_who(client_for):
    backend = FakeBackend()
    client = client_for(backend)
    csrf = _csrf(client)
    for action in ("pause", "resume"):
        client.post("/routes/pause", data={"route": "currency/to-fo", "action": action, "csrf": csrf})
    assert [(x["action"], x["operator"], x["route"]) for x in backend.trail] == [
        ("pause", "os-user", "currency/to-fo"),
        ("resume", "os-user", "currency/to-fo"),
    ]
    assert backend.paused == set()


def test_replay_preview_shows_the_edit_and_the_count_and_sends_nothing(client_for):
    backend = FakeBackend()
    client = client_for(backend)
    csrf = _csrf(client)
    refs = ["customer/to-dataverse/1", "customer/to-dataverse/2"]
    preview = client.post(
        "/deadletters/preview", data={"csrf": csrf, "ref": refs, "edits": "data.SalesCurrencyCode=USD"}
    )
    assert preview.status_code == 200
    assert "<strong>2</strong> message(s) would be replayed" in preview.text
    assert '+    "SalesCurrencyCode": "USD"' in preview.text.replace("&quot;", '"')
    assert len(backend.dead) == 2
    assert backend.trail == []


def test_replay_and_purge_are_audited_and_report_the_count(client_for):
    backend = FakeBackend()
    client = client_for(backend)
    csrf = _csrf(client)
    replayed = client.post(
        "/deadletters/replay",
        data={"csrf": csrf, "ref": "customer/to-dataverse/1", "edits": "data.SalesCurrencyCode=USD"},
    )
    assert replayed.status_code == 303
    assert _flash(client.get("/deadletters").text) == ["replayed 1 of 1 selected message(s)"]
    confirm = client.post("/deadletters/purge-confirm", data={"csrf": csrf, "ref": "customer/to-dataverse/2"})
    assert "<strong>1</strong> dead-lettered message(s) would be removed" in confirm.text
    client.post("/deadletters/purge", data={"csrf": csrf, "ref": "customer/to-dataverse/2"})
    assert [(x["action"], x["operator"], x["message_id"]) for x in backend.trail] == [
        ("dlq.replay", "os-user", "m-1"),
        ("dlq.purge", "os-user", "m-2"),
    ]
    assert backend.dead == {}


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"edits": "SalesCurrencyCode=USD"}, "an edit names a field of the change's data"),
        ({"edits": "data.NoSuchField=1"}, "CustomersV3 does not carry 'NoSuchField'"),
        ({"edits": "no equals sign"}, "an edit must look like field=value"),
        ({"ref": "customer/to-dataverse/x"}, "not a dead-letter reference"),
        ({"ref": []}, "no dead-letters selected"),
    ],
)
def test_bad_replay_input_is_one_line_and_sends_nothing(form, message, client_for):
    backend = FakeBackend()
    client = client_for(backend)
    data = {"csrf": _csrf(client), "ref": "customer/to-dataverse/1", **form}
    answer = client.post("/deadletters/replay", data=data)
    assert answer.status_code == 400
    (line,) = _flash(answer.text)
    assert message in line
    assert "Traceback" not in answer.text
    assert len(backend.dead) == 2
    assert backend.trail == []


def test_a_body_that_is_not_a_form_is_one_line(client_for):
    client = client_for(FakeBackend())
    csrf = _csrf(client)
    answer = client.post(
        "/routes/pause",
        content=b"--x\r\nnot a part",
        headers={"Content-Type": "multipart/form-data; boundary=x", "Cookie": f"{CSRF_COOKIE}={csrf}"},
    )
    assert answer.status_code in (400, 403)
    assert len(_flash(answer.text)) == 1
    assert "Traceback" not in answer.text


def test_purge_with_nothing_selected_says_so(client_for):
    client = client_for(FakeBackend())
    answer = client.post("/deadletters/purge", data={"csrf": _csrf(client)})
    assert _flash(answer.text) == ["no dead-letters selected: tick at least one"]


def test_an_unknown_area_or_job_is_one_line(client_for):
    client = client_for(FakeBackend())
    csrf = _csrf(client)
    answer = client.post("/reconcile/run", data={"csrf": csrf, "area": "nope"})
    assert _flash(answer.text)[0].startswith("unknown area 'nope'")
    assert "no job" in _flash(client.get("/jobs/123").text)[0]
    assert client.get("/deadletters/message/customer/to-dataverse/99").status_code == 400


def test_an_unexpected_error_is_one_line_without_a_traceback(client_for):
    backend = FakeBackend()
    backend.fail_with = RuntimeError("the namespace went away")
    answer = client_for(backend).get("/routes")
    assert answer.status_code == 400
    assert _flash(answer.text) == ["unexpected RuntimeError: the namespace went away"]
    assert "Traceback" not in answer.text


def test_a_reconcile_is_audited_when_it_starts_and_when_it_ends(client_for):
    backend = FakeBackend()
    gate = Gate()
    client = client_for(backend, gate=gate)
    started = client.post("/reconcile/run", data={"csrf": _csrf(client), "area": "customer"})
    job_url = started.headers["location"]
    assert "running" in client.get(job_url).text
    again = client.post("/reconcile/run", data={"csrf": client.cookies[CSRF_COOKIE], "area": "customer"})
    assert "is running already" in _flash(again.text)[0]
    gate.release.set()
    job_id = job_url.rsplit("/", 1)[1]
    assert backend.job_ended.wait(timeout=10)
    assert [(x["action"], x["outcome"], x["job"]) for x in backend.trail] == [
        ("reconcile", "started", job_id),
        ("reconcile", "finished", job_id),
    ]


def test_audit_and_alert_pages_show_the_trail(client_for):
    backend = FakeBackend()
    backend.record("monitor", "alert", "fired", rule="lookups", count=12)
    backend.record("bob", "pause", "sent", route="customer/to-fo")
    client = client_for(backend)
    audit = client.get("/audit").text
    assert audit.index("customer/to-fo") < audit.index("rule=lookups")  # newest first
    alerts = client.get("/alerts").text
    assert "rule=lookups" in alerts
    assert "customer/to-fo" not in alerts
