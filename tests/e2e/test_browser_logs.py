"""Log records in a real browser (#18): markers on the entity diagram's lifelines (errors
stand out), the record on hover and in the message's detail dialog, the Logs panels of the
entity and trace pages with their severity filter, and the search outside traces.

Runs against `seqtrace up` with the demo data (its sample logs included), as
test_browser.py does; screenshots land in test-artifacts/.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import test_browser as base
from tests.e2e.test_browser import ARTIFACTS, ORD_1002_TRACE, Up, settle, shoot

# The same `seqtrace up` and Chromium fixtures as test_browser.py (module-scoped here).
up = base.up
browser = base.browser
page = base.page

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def chart_traces(page: Any) -> dict[str, int]:
    """Plotly trace name -> number of points, of the first chart on the page."""
    pairs = page.evaluate(
        "() => document.querySelector('.js-plotly-plot').data"
        ".map(t => [t.name, (t.x || []).length])"
    )
    return {str(name): int(count) for name, count in pairs}


def test_log_markers_on_the_entity_diagram(page: Any, up: Up) -> None:
    page.goto(up.ui + "/?entity=order.id=ORD-1002")
    settle(page, "Entity sequence diagram")
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for()
    traces = chart_traces(page)
    # the two failed charges logged an error and a retry warning each; four info lines
    assert (traces["logs-error"], traces["logs-warn"], traces["logs-info"]) == (2, 2, 4)
    names = list(traces)
    assert names.index("logs-error") == len(names) - 1  # errors drawn on top

    layers = chart.locator(".scatterlayer .trace")
    error_marker = layers.nth(layers.count() - 1).locator(".points path").first
    error_marker.scroll_into_view_if_needed()
    error_marker.hover(force=True)
    hover = page.locator(".hoverlayer").first
    page.wait_for_function(
        "() => document.querySelector('.hoverlayer').textContent.includes('ERROR')"
    )
    text = hover.text_content() or ""
    assert "httpx.HTTPStatusError: 503 Service Unavailable" in text and "payment" in text
    page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / "logs-entity-marker-hover.png"))

    # a click on the marker opens its message's span, with the records drawn there
    error_marker.click(force=True)
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Selected span").wait_for()
    dialog.get_by_role("tab", name="Logs (1)").click()
    dialog.get_by_text("503 Service Unavailable").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "logs-entity-span-dialog.png"))
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert not page.watch.errors and not page.watch.dialogs


def test_entity_logs_panel_filters_by_severity(page: Any, up: Up) -> None:
    page.goto(up.ui + "/?entity=order.id=ORD-1002")
    settle(page, "Entity sequence diagram")
    page.get_by_role("heading", name="Logs (8)").wait_for()
    # warnings and errors are shown first when there are any
    grid = page.locator("[data-testid=stDataFrame]").filter(has_text="payprovider answered")
    grid.first.wait_for()
    page.get_by_text("all", exact=True).click()
    settle(page, "Entity sequence diagram")
    page.get_by_text("errors", exact=True).click()
    settle(page, "Entity sequence diagram")
    shoot(page, "logs-entity-panel", height=1200)
    assert not page.watch.errors


def test_trace_page_lists_logs_under_each_span(page: Any, up: Up) -> None:
    page.goto(up.ui + f"/?trace={ORD_1002_TRACE}")
    settle(page, "Trace")
    page.get_by_role("tab", name="Logs (7)").click()  # the entity's 8th is in its other trace
    page.get_by_role("heading", name="Logs by span").wait_for()
    page.get_by_text("payment · POST /v1/charges", exact=False).first.wait_for()
    page.get_by_text("Logs outside any trace").click()
    page.locator("[data-testid=stDataFrame]").filter(
        has_text="nightly price index rebuilt"
    ).first.wait_for()
    shoot(page, "logs-trace-page", height=1400)
    assert not page.watch.errors
