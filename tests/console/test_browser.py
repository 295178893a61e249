"""The console in real Chromium on a running pipeline: fix a dead letter's cause and replay it, pause and
resume a route, reconcile and initial-sync an area, and watch the counts move.

Chromium is Debian's (``apt-get install chromium``; ``.ci/run`` installs it), driven by Playwright; no
browser is downloaded. With ``DUALBUS_SCREENSHOTS_DIR`` set, each page is saved there as a PNG (the
screenshots of docs/console.md are taken so).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright import sync_api as playwright
from pydantic import SecretStr

from dualbus.console import build_app
from dualbus.sandbox.dataverse.server import start_dataverse
from dualbus.sandbox.fo.server import start_fo
from dualbus.sandbox.servicebus.config import load_config
from dualbus.sandbox.servicebus.launcher import start_in_process
from dualbus.shared.envelope import Envelope
from dualbus.shared.maps import load_maps
from dualbus.shared.render import render_emulator_config
from dualbus.shared.settings import ServiceBusSettings, Settings
from dualbus.shared.topology import Direction, default_topology
from tests.console.pipeline import running_consumers
from tests.console.serving import serving
from tests.integration.consumers.conftest import CLIENT_ID, CLIENTS, SECRET, Pipeline
from tests.integration.consumers.helpers import seed, seed_fo
from tests.integration.consumers.samples import event, row
from tests.twin_settings import api_settings

# ``long``: handed to a worker first (tests/conftest.py).
pytestmark = [pytest.mark.integration, pytest.mark.long, pytest.mark.timeout(300)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# Generous for a loaded 2-core machine; every wait ends as soon as the page shows what it waits for.
WAIT_MS = 60_000
ROUTE = "customer/to-dataverse"
SHOTS = os.environ.get("DUALBUS_SCREENSHOTS_DIR")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Pipeline, Settings, Path]]:
    topology = default_topology()
    with (
        start_in_process(config=load_config(render_emulator_config(topology))) as bus,
        start_dataverse(clients=CLIENTS) as dataverse,
        start_fo(clients=CLIENTS) as fo,
    ):
        pipeline = Pipeline(bus, dataverse, fo)

        settings = Settings(
            servicebus=ServiceBusSettings(connection_string=SecretStr(bus.connection_string)),
            dataverse=api_settings(dataverse, client_id=CLIENT_ID, secret=SECRET),
            fo=api_settings(fo, client_id=CLIENT_ID, secret=SECRET),
            state_dir=tmp_path / "state",
        )
        yield pipeline, settings, tmp_path


def _customer(n: int, currency: str) -> Envelope:
    change = event(load_maps()["customers"], "fo", n, label="console")
    return change.model_copy(update={"data": {**change.data, "SalesCurrencyCode": currency}})


def _create_currency_in_dataverse(pipeline: Pipeline, code: str) -> None:
    """What an operator does in Dataverse to fix the cause: create the currency the customer looks up."""
    dataverse = pipeline.dataverse
    token = dataverse.issuer.issue(
        client_id="workload", client_secret=CLIENTS["workload"], scope=dataverse.scope
    )
    with httpx.Client(
        base_url=dataverse.api_url, headers={"Authorization": f"Bearer {token['access_token']}"}
    ) as client:
        answer = client.patch(
            f"transactioncurrencies(isocurrencycode='{code}')",
            json={"currencyname": "Euro", "currencysymbol": "€", "exchangerate": 1},
        )
        assert answer.status_code < 300, answer.text


def _shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"console-{name}.png"), full_page=True)


def _edit_currency_name_in_fo(pipeline: Pipeline, code: str, name: str) -> None:
    """A change made in F&O that never reached Dataverse (no producer runs here): drift to repair."""
    with pipeline.fo.client("workload") as client:
        answer = client.patch(f"/data/Currencies(CurrencyCode='{code}')", json={"Name": name})
        assert answer.status_code < 300, answer.text


class Console:
    """The browser on the console, and the cells of the customer route's line on the routes page."""

    def __init__(self, page, url: str) -> None:
        self.page = page
        self.url = url
        row = page.locator(f'tr[data-route="{ROUTE}"]')
        self.row = row
        self.applied = row.locator("td").nth(4)
        self.dead_lettered = row.locator("td").nth(7)
        self.backlog = row.locator("td").nth(8)

    def routes(self) -> None:
        self.page.goto(f"{self.url}/routes")


def test_an_operator_replays_a_fixed_dead_letter_and_pauses_a_route(stack):
    pipeline, settings, tmp = stack
    playwright.expect.set_options(timeout=WAIT_MS)
    metrics = tmp / "metrics"
    seed_fo(pipeline)
    asyncio.run(seed(pipeline, Direction.TO_DATAVERSE))
    routes = [(area, Direction.TO_DATAVERSE) for area in ("company", "currency", "customer")]
    with (
        running_consumers(settings, routes, metrics) as consumers,
        serving(build_app(settings, metrics_dir=metrics)) as url,
        playwright.sync_playwright() as driver,
    ):
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        console = Console(browser.new_page(viewport={"width": 1360, "height": 800}), url)
        _replay_after_fixing_the_cause(console, pipeline)
        _pause_and_resume(console, pipeline, consumers)
        _reconcile_and_repair(console, pipeline)
        _initial_sync(console, pipeline)
        _audit_trail(console)
        browser.close()


def _replay_after_fixing_the_cause(console: Console, pipeline: Pipeline) -> None:
    """A customer whose currency Dataverse lacks is dead-lettered: fix the cause, replay, see it applied."""
    expect, page = playwright.expect, console.page
    pipeline.publish([_customer(1, "EUR"), _customer(2, "USD")])
    console.routes()
    expect(console.dead_lettered).to_have_text("1")
    expect(console.applied).to_have_text("1")
    _shot(page, "routes")

    page.get_by_role("link", name="Dead letters").click()
    _shot(page, "dead-letters")
    page.get_by_role("link", name="UnresolvedLookup").click()
    _shot(page, "dead-letter-list")
    page.locator("#letters table a").first.click()
    expect(page.locator("#body")).to_contain_text('"SalesCurrencyCode": "EUR"')
    expect(page.locator("dl")).to_contain_text("UnresolvedLookup")
    _shot(page, "dead-letter")
    page.go_back()

    # An edit the map does not know is refused in one line; a good one is previewed, nothing sent yet.
    page.locator("#edits").fill("data.NoSuchField=1")
    page.get_by_role("button", name="Preview replay").click()
    expect(page.locator(".flash.error")).to_contain_text("CustomersV3 does not carry 'NoSuchField'")
    expect(page.locator("#dry-run-count")).to_contain_text("0 message(s) would be replayed")
    page.go_back()
    page.locator("#edits").fill("data.SalesCurrencyCode=USD")
    page.get_by_role("button", name="Preview replay").click()
    expect(page.locator("pre.diff ins")).to_contain_text('"SalesCurrencyCode": "USD"')
    expect(page.locator("#dry-run-count")).to_contain_text("1 message(s) would be replayed")
    _shot(page, "replay-preview")

    # Rather than edit the message, fix its cause: create the euro in Dataverse, then replay it unchanged.
    _create_currency_in_dataverse(pipeline, "EUR")
    page.go_back()
    page.locator("#edits").fill("")
    page.get_by_role("button", name="Preview replay").click()
    expect(page.locator("#dry-run-count")).to_contain_text("1 message(s) would be replayed")
    page.get_by_role("button", name="Replay 1 message(s)").click()
    expect(page.locator(".flash.ok")).to_have_text("replayed 1 of 1 selected message(s)")
    console.routes()
    expect(console.dead_lettered).to_have_text("0")
    expect(console.applied).to_have_text("2")


def _pause_and_resume(console: Console, pipeline: Pipeline, consumers) -> None:
    """Paused, a change waits in the subscription (the backlog shows it); resumed, it is applied."""
    expect, page = playwright.expect, console.page
    console.row.get_by_role("button", name="Pause").click()
    expect(console.row.locator(".badge")).to_have_text("paused")
    assert consumers.paused.wait(timeout=WAIT_MS / 1000)
    pipeline.publish([_customer(3, "USD")])
    expect(console.backlog).to_have_text("1")
    _shot(page, "routes-paused")
    console.row.get_by_role("button", name="Resume").click()
    expect(console.row.locator(".badge")).to_have_text("running")
    expect(console.backlog).to_have_text("0")
    expect(console.applied).to_have_text("3")


def _reconcile(console: Console) -> None:
    page = console.page
    page.get_by_role("link", name="Reconcile").click()
    page.get_by_label("Area", exact=True).select_option("currency")
    page.get_by_role("button", name="Run reconcile").click()
    playwright.expect(page.locator("h2", has_text="Drift by company")).to_be_visible()


def _reconcile_and_repair(console: Console, pipeline: Pipeline) -> None:
    """Drift by company and record; repairing the picked record leaves the other one alone."""
    expect, page = playwright.expect, console.page
    _edit_currency_name_in_fo(pipeline, "USD", "US dollar (renamed)")
    _reconcile(console)
    drifted = page.locator("form[action='/reconcile/repair'] tbody tr")
    expect(drifted).to_have_count(2)  # the euro made in Dataverse only, and the renamed dollar
    _shot(page, "reconcile")
    drifted.filter(has_text="USD").get_by_role("checkbox").check()
    page.get_by_role("button", name="Repair selected").click()
    expect(page.locator("text=Published 1 repair(s)")).to_be_visible()
    expect(page.locator(".badge").first).to_have_text("done")
    # Once the currency consumer applied it, only the euro (missing in F&O, not picked) still drifts.
    console.routes()
    currency = page.locator('tr[data-route="currency/to-dataverse"]').locator("td").nth(4)
    expect(currency).to_have_text("1")
    _reconcile(console)
    expect(drifted).to_have_count(1)
    expect(drifted).to_contain_text("EUR")


def _create_customers_in_fo(pipeline: Pipeline, count: int) -> None:
    """Customers made in F&O while no producer ran: only an initial sync brings them across."""
    table_map = load_maps()["customers"]
    with pipeline.fo.client("workload") as client:
        company = client.post("/data/LegalEntities", json={"LegalEntityId": "USMF", "Name": "Contoso"})
        assert company.status_code == 201, company.text
        for n in range(100, 100 + count):
            key, data = row(table_map, "fo", n, label="sync")
            answer = client.post(
                f"/data/{table_map.fo_entity}", json={**data, **key}, params={"cross-company": "true"}
            )
            assert answer.status_code == 201, answer.text


def _initial_sync(console: Console, pipeline: Pipeline) -> None:
    """An initial sync of customers, first the companies and currencies they look up, layer by layer."""
    expect, page = playwright.expect, console.page
    _create_customers_in_fo(pipeline, 3)
    page.get_by_role("link", name="Initial sync").click()
    page.get_by_label("Area", exact=True).select_option("customer")
    page.get_by_role("button", name="Start initial sync").click()
    expect(page.locator(".badge").first).to_have_text("done")
    layers = page.locator("table tbody tr")
    expect(layers).to_have_count(2)
    expect(layers.nth(0)).to_contain_text("company, currency")
    expect(layers.nth(1)).to_contain_text("customer")
    # The three customers and the groups and terms of the customer area seeded in F&O before.
    expect(layers.nth(1).locator("td").nth(3)).to_have_text(re.compile(r"^([3-9]|\d\d+)$"))
    for index in range(2):
        expect(layers.nth(index)).to_contain_text("taken by the consumers")
    _shot(page, "initial-sync")


def _audit_trail(console: Console) -> None:
    """Every action is in the audit trail, with who and when."""
    page = console.page
    page.get_by_role("link", name="Audit trail").click()
    trail = page.locator("table")
    for action in ("dlq.replay", "pause", "resume", "reconcile", "repair", "initial-sync"):
        playwright.expect(trail).to_contain_text(action)
    _shot(page, "audit")
