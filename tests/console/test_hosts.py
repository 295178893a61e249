"""The console answers only to the host names it knows: a page whose name is pointed at this machine (DNS
rebinding) is refused before it reaches a page or an action."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from dualbus.cli import app as cli
from dualbus.console.hosts import ANY_HOST, answered_hosts, check_allowed_hosts
from dualbus.console.security import CSRF_COOKIE
from dualbus.shared.errors import ConfigError
from tests.console.fakes import FakeBackend, make_app
from tests.console.serving import serving

TOKEN = "a-console-token-of-length"
REBOUND = "attacker.example:8080"
REFUSED = "Invalid host header"  # starlette's TrustedHostMiddleware, before any page or action


@pytest.fixture
def served() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def _client(stack: ExitStack, backend: FakeBackend, **kwargs: Any) -> httpx.Client:
    url = stack.enter_context(serving(make_app(backend, **kwargs)))
    return stack.enter_context(httpx.Client(base_url=url, timeout=10))


def test_a_console_without_a_token_refuses_a_rebound_name_on_pages_and_actions(served: ExitStack) -> None:
    backend = FakeBackend()
    client = _client(served, backend)
    # What the hostile page would do once its name points at 127.0.0.1: read a page, then post a form.
    page = client.get("/deadletters/list", headers={"Host": REBOUND})
    assert (page.status_code, page.text) == (400, REFUSED)
    assert CSRF_COOKIE not in page.cookies
    csrf = _real_csrf(client)
    for path, form in [
        ("/routes/pause", {"route": "customer/to-fo", "action": "pause"}),
        ("/deadletters/purge", {"ref": "customer/to-dataverse/1"}),
        ("/reconcile/repair", {"job": "1", "record": "customer/usmf/C-1"}),
    ]:
        answer = client.post(path, data={**form, "csrf": csrf}, headers={"Host": REBOUND})
        assert (answer.status_code, answer.text) == (400, REFUSED), path
    assert backend.paused == set()
    assert sorted(backend.dead) == [1, 2]
    assert backend.trail == []


def _real_csrf(client: httpx.Client) -> str:
    """The CSRF cookie a real page of the console gives (the rebinding page would have it too)."""
    assert client.get("/routes").status_code == 200
    return client.cookies[CSRF_COOKIE]


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "[::1]", "LOCALHOST"])
def test_the_loopback_names_are_answered_on_any_port(served: ExitStack, name: str) -> None:
    backend = FakeBackend()
    client = _client(served, backend)
    csrf = _real_csrf(client)
    # Any port: one reached through a tunnel (ssh -L 9000:127.0.0.1:8080) names the tunnel's.
    for host in (name, f"{name}:9000"):
        assert client.get("/routes", headers={"Host": host}).status_code == 200
    done = client.post(
        "/routes/pause",
        data={"route": "customer/to-fo", "action": "pause", "csrf": csrf},
        headers={"Host": f"{name}:9000"},
    )
    assert done.status_code == 303
    assert backend.paused == {"customer/to-fo"}


def test_with_a_token_the_bound_address_and_the_allowed_names_are_answered(served: ExitStack) -> None:
    hosts = answered_hosts("10.0.0.5", with_token=True, allowed=["console.example.com", "*.corp.example"])
    client = _client(served, FakeBackend(), token=TOKEN, allowed_hosts=hosts)
    for host in ("10.0.0.5:8080", "console.example.com", "ops.corp.example:443", "127.0.0.1"):
        assert client.get("/routes", headers={"Host": host}).status_code == 303, host  # to sign in
    for host in (REBOUND, "10.0.0.6", "example.com"):
        answer = client.get("/login", headers={"Host": host})
        assert (answer.status_code, answer.text) == (400, REFUSED), host


def test_which_names_are_answered() -> None:
    assert answered_hosts("127.0.0.1", with_token=False) == ("127.0.0.1", "localhost", "[::1]")
    assert answered_hosts("127.0.0.2", with_token=False)[-1] == "127.0.0.2"
    assert answered_hosts("::1", with_token=True) == ("127.0.0.1", "localhost", "[::1]")
    assert answered_hosts("fe80::1", with_token=True, allowed=["Console.Example"])[-2:] == (
        "[fe80::1]",
        "console.example",
    )
    # On every address with no name given, the token alone guards the console; named, only those names.
    for everywhere in ("0.0.0.0", "::"):  # noqa: S104 - the address asked for, not bound here
        assert answered_hosts(everywhere, with_token=True) == (ANY_HOST,)
        assert ANY_HOST not in answered_hosts(everywhere, with_token=True, allowed=["console.example"])


@pytest.mark.parametrize("name", ["http://console.example", "console.example:8080", "a/b", "*x.example", ""])
def test_a_name_that_is_not_a_host_name_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="is not a host name"):
        check_allowed_hosts([name], with_token=True)


def test_other_names_need_a_token() -> None:
    with pytest.raises(ConfigError, match="need a token"):
        check_allowed_hosts(["console.example"], with_token=False)
    check_allowed_hosts(["console.example", "*.example.com", "10.0.0.5", "[fe80::1]", "*"], with_token=True)


def test_the_command_refuses_an_allowed_host_without_a_token_as_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DUALBUS_CONSOLE_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["console", "--allowed-host", "console.example", "--port", "0"])
    assert result.exit_code == 2
    assert "need a token" in result.output
    assert "Traceback" not in result.output
