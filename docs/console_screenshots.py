"""Screenshots of the console on a running demo, for docs/console.md.

Start ``dualbus demo --keep-running --run-dir demo-run``, export what it prints, start
``dualbus console --metrics-dir demo-run/metrics``, then:

    python docs/console_screenshots.py http://127.0.0.1:8080 docs [REASON EDIT]

REASON and EDIT default to the demo's e-mail addresses too long for Dataverse (``MappingError``,
``data.PrimaryContactEmail=sales@contoso.com``), the one kind of change the demo plants for the other side
to refuse.

It only looks: it opens the routes, the dead letters, and the dry run of an edited replay (nothing is sent).
Debian's Chromium is driven through Playwright (``apt-get install chromium``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# The demo's customers that Dataverse must refuse carry an e-mail address too long for it.
_GROUP = "MappingError"
_EDIT = "data.PrimaryContactEmail=sales@contoso.com"


def main(url: str, out: Path, group: str = _GROUP, edit: str = _EDIT) -> None:
    """Save ``console-demo-*.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 800})
        expect.set_options(timeout=30_000)
        page.goto(f"{url}/routes")
        expect(page.locator("#routes")).to_be_visible()
        page.screenshot(path=out / "console-demo-routes.png", full_page=True)
        page.get_by_role("link", name="Dead letters").click()
        expect(page.locator("#groups")).to_be_visible()
        page.screenshot(path=out / "console-demo-dead-letters.png", full_page=True)
        page.get_by_role("link", name=group).first.click()
        page.locator("#edits").fill(edit)
        page.get_by_role("button", name="Preview replay").click()
        expect(page.locator("#dry-run-count")).to_be_visible()
        page.screenshot(path=out / "console-demo-replay-preview.png", full_page=True)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"), Path(sys.argv[2]), *sys.argv[3:5])
