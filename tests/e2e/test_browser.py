"""The UI in a real browser: Debian Chromium driven by Playwright, against `seqtrace up`.

`seqtrace up` loads the sample shop into a fresh database and serves the collector, the
query API and the UI on free ports; the UI reads through the query API (HttpSource), as in
production. Screenshots and downloads land in test-artifacts/ (gitignored).

No `playwright install`: the browser is Debian's chromium at /usr/bin/chromium. Without it
these tests fail (skips count as failures in this project).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import ROOT, start_seqtrace

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
HOSTILE = "<img src=x onerror=alert(1)>"
ORD_1002_TRACE = "28aa6f8cecf63975079bb73dfbbeb308"
HOSTILE_NAME = re.compile(r"attach note <img src=x onerror=alert\(1\)>")


class Up:
    def __init__(self, addresses: dict[str, str]) -> None:
        self.ui = f"http://{addresses['ui']}"
        self.api = f"http://{addresses['api']}"
        self.addresses = addresses


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """`seqtrace up` on free ports with the demo data (the UI reads its query API)."""
    db = tmp_path_factory.mktemp("e2e") / "up.duckdb"
    server = start_seqtrace("up", "--db", str(db), cwd=ROOT, env={"PYTHONUNBUFFERED": "1"})
    try:
        yield Up(server.addresses)
    finally:
        try:
            server.stop(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Debian chromium is missing at {CHROMIUM}: apt-get install chromium", pytrace=False
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Watch:
    """What a page did that it must not: dialogs (alert()), page errors, 'page not found'."""

    def __init__(self, page: Any) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    tab.watch = Watch(tab)
    yield tab
    context.close()
    # Whatever a test checked, no page may have thrown a script error.
    assert not tab.watch.errors, tab.watch.errors


def settle(page: Any, title: str) -> None:
    """Wait until the page shows its title and the script run is over."""
    page.get_by_role("heading", name=title, level=1).wait_for()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if page.locator("[data-testid=stStatusWidget]").count() == 0:
            break
        time.sleep(0.2)
    page.wait_for_timeout(500)


def shoot(page: Any, name: str, height: int = 1000) -> Path:
    """A screenshot of the whole page (Streamlit scrolls inside its main block, so the
    viewport is stretched to the content first)."""
    ARTIFACTS.mkdir(exist_ok=True)
    full = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
        "section.main, body')].map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": 1500, "height": max(height, min(int(full) + 40, 6000))})
    page.wait_for_timeout(700)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": 1500, "height": 1000})
    return path


def no_page_not_found(page: Any) -> None:
    assert page.get_by_text("Page not found").count() == 0


def test_the_demo_incident_ends_now(up: Up) -> None:
    """`up` moves the sample incident so that its newest span ends at start-up: with an
    exporter's live traffic the store covers days, so the UI's default range stays
    "Everything stored" and shows both. Ids and the times between spans stay as in
    sample_traces/ (README: 2026-11-20T09:00:00Z on)."""
    from analyzer.source import HttpSource

    source = HttpSource(up.api)
    stats = source.stats()
    newest = int(stats["last_unix_nano"])
    assert abs(time.time_ns() - newest) < 15 * 60 * 10**9, stats
    # The incident's two days and a half are kept whole: the first span is as far
    # before the newest as in the files.
    assert (newest - int(stats["first_unix_nano"])) / 3.6e12 == pytest.approx(53.5, abs=0.1)
    # Ids are the files' (the diagram of the README's order still draws).
    assert source.diagram(entity="order.id=ORD-1002")["messages"]


def test_home_page(page: Any, up: Up) -> None:
    page.goto(up.ui + "/")
    settle(page, "Overview")
    page.locator(".js-plotly-plot").nth(1).wait_for()
    assert page.locator(".js-plotly-plot").count() >= 2
    page.get_by_text("Spans in range").wait_for()
    page.locator("[data-testid=stDataFrame]").first.wait_for()
    no_page_not_found(page)
    shoot(page, "overview")
    assert not page.watch.errors, page.watch.errors


def test_entity_deep_link_diagram_click_and_export(page: Any, up: Up) -> None:
    page.goto(up.ui + "/?entity=order.id=ORD-1002")
    settle(page, "Entity sequence diagram")
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for()
    assert "/entity" in page.url
    # the retries of the payment call are grouped in a loop block
    page.get_by_text("retry: 3 attempts, 2 failed").wait_for()
    assert page.get_by_text("503 Service Unavailable").count() >= 1
    no_page_not_found(page)
    shoot(page, "entity-ORD-1002", height=1200)

    # click the first failed charge's dot: its whole span opens in a dialog
    dots = chart.locator(".scatterlayer .trace .points path")
    assert dots.count() >= 30
    dots.nth(13).click(force=True)
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Selected span").wait_for()
    dialog.locator("[data-testid=stCode]", has_text="POST /v1/charges").first.wait_for()
    dialog.get_by_text("503 Service Unavailable").first.wait_for()
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "entity-ORD-1002-span.png"))
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    settle(page, "Entity sequence diagram")

    ARTIFACTS.mkdir(exist_ok=True)
    for label, suffix, marker in (
        ("Mermaid", ".mmd", "sequenceDiagram"),
        ("SVG", ".svg", "<svg"),
        ("JSON", ".json", '"participants"'),
    ):
        with page.expect_download() as info:
            page.get_by_role("button", name=label, exact=True).click()
        download = info.value
        assert download.suggested_filename.endswith(suffix), download.suggested_filename
        target = ARTIFACTS / download.suggested_filename
        download.save_as(str(target))
        assert marker in target.read_text(encoding="utf-8")

    # the postmortem bundle is built on click, through the same query API
    import zipfile

    with page.expect_download() as info:
        page.get_by_role("button", name="Postmortem", exact=True).click()
    target = ARTIFACTS / info.value.suggested_filename
    info.value.save_as(str(target))
    with zipfile.ZipFile(target) as archive:
        markdown = archive.read("postmortem-order.id-ORD-1002/postmortem.md").decode()
    assert "sequenceDiagram" in markdown
    assert not page.watch.errors, page.watch.errors


def test_failures_page(page: Any, up: Up) -> None:
    page.goto(up.ui + "/?failures")
    settle(page, "Failures")
    page.locator("[data-testid=stDataFrame]").first.wait_for()
    page.get_by_text("Failing traces (5 shown)").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()  # root causes by service
    no_page_not_found(page)
    shoot(page, "failures")
    assert not page.watch.errors, page.watch.errors


def test_trace_deep_link(page: Any, up: Up) -> None:
    page.goto(up.ui + f"/?trace={ORD_1002_TRACE}")
    settle(page, "Trace")
    page.locator(".js-plotly-plot").first.wait_for()
    page.get_by_text("Critical path: 22 spans").wait_for()
    no_page_not_found(page)
    shoot(page, "trace-ORD-1002", height=1200)
    assert not page.watch.errors, page.watch.errors


def test_service_map_and_slo_pages(page: Any, up: Up) -> None:
    page.goto(up.ui + "/")
    settle(page, "Overview")
    page.get_by_role("link", name="Service map").click()
    settle(page, "Service map")
    page.locator(".js-plotly-plot").first.wait_for()
    shoot(page, "service-map")
    page.get_by_role("link", name="SLOs").click()
    settle(page, "SLOs")
    page.locator(".js-plotly-plot").nth(1).wait_for()
    shoot(page, "slo")
    assert not page.watch.errors, page.watch.errors


def test_hostile_strings_are_text_and_run_nothing(page: Any, up: Up) -> None:
    # The ORD-1666 order note is an XSS probe, in a span name and in attributes.
    page.goto(up.ui + "/?entity=order.id=ORD-1666")
    settle(page, "Entity sequence diagram")
    page.locator(".js-plotly-plot").first.wait_for()
    page.get_by_text("Internal spans").click()  # the note is in an INTERNAL span's name
    label = page.get_by_text(HOSTILE_NAME).first
    label.wait_for()
    assert label.is_visible()
    shoot(page, "entity-ORD-1666-hostile", height=1200)
    assert page.locator('img[src="x"]').count() == 0

    # a hostile deep link: the value is echoed in the selectbox, the error and the link box
    page.goto(up.ui + "/?entity=order.id=" + quote(HOSTILE + " **bold** :red[x]"))
    settle(page, "Entity sequence diagram")
    page.get_by_text("No diagram for this entity").wait_for()
    echoed = page.get_by_text(HOSTILE).first
    echoed.wait_for(state="visible")  # the page's widgets render one after another
    assert echoed.is_visible()
    shoot(page, "entity-hostile-link")
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator("strong", has_text="bold").count() == 0
    assert page.watch.dialogs == [], page.watch.dialogs
    assert not page.watch.errors, page.watch.errors


def test_hostile_span_on_the_trace_page(page: Any, up: Up) -> None:
    from analyzer.source import HttpSource

    diagram = HttpSource(up.api).diagram(entity="order.id=ORD-1666")
    assert isinstance(diagram, dict)
    trace_id = diagram["traces"][0]
    page.goto(up.ui + f"/?trace={trace_id}")
    settle(page, "Trace")
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for()
    label = page.get_by_text(HOSTILE_NAME).first
    label.wait_for()
    assert label.is_visible()
    # click the hostile span's bar: its name and attributes show as text
    names = chart.locator(".yaxislayer-above text")
    row = next(
        i for i in range(names.count()) if "attach note" in (names.nth(i).text_content() or "")
    )
    chart.locator(".barlayer .trace").first.locator(".point").nth(row).click(force=True)
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Selected span").wait_for()
    code = dialog.locator("[data-testid=stCode]", has_text=HOSTILE).first
    code.wait_for()
    assert code.is_visible()
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "trace-hostile-span.png"))
    assert page.locator('img[src="x"]').count() == 0
    assert page.watch.dialogs == [], page.watch.dialogs
    assert not page.watch.errors, page.watch.errors
