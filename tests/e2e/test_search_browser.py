"""The Search page in Chromium (Playwright) against `seqtrace up` with the sample shop:
the /?q= deep link, inline query errors, examples, compare charts, the flow link, ids
pasted as 12-digit prefixes, and hostile query text shown as text."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

import pytest
from test_browser import browser, no_page_not_found, page, settle, shoot, up  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CASCADE = "{ status = error } !< { status = error }"


def test_query_deep_link_runs_the_query(page: Any, up: Any) -> None:  # noqa: F811
    page.goto(up.ui + "/?q=" + quote(CASCADE))
    settle(page, "Search")
    page.get_by_text("5 matching traces").wait_for()
    page.locator("[data-testid=stDataFrame]").first.wait_for()
    page.get_by_text("What sets these apart").wait_for()
    page.locator(".js-plotly-plot").nth(1).wait_for()  # attribute bars, then latencies
    flow = page.get_by_role("link", name="Open the matches as a flow")
    assert unquote(flow.get_attribute("href") or "").startswith("./?flowq=" + CASCADE)
    no_page_not_found(page)
    shoot(page, "search-cascade", height=1400)
    assert not page.watch.errors, page.watch.errors


def test_a_bad_query_shows_the_parser_message_inline(page: Any, up: Any) -> None:  # noqa: F811
    page.goto(up.ui + "/?q=" + quote('{ duration > "2s" }'))
    settle(page, "Search")
    page.get_by_text("query error at position 14: expected a duration").wait_for()
    shoot(page, "search-error")


def test_examples_fill_the_query_box(page: Any, up: Any) -> None:  # noqa: F811
    page.goto(up.ui + "/?q=" + quote("{ status = error }"))
    settle(page, "Search")
    page.get_by_text("5 matching traces").wait_for()
    page.locator("[data-testid=stSelectbox]").filter(has_text="Examples").click()
    page.get_by_role("option", name="Payment errors beneath a checkout").click()
    page.get_by_text("1 matching traces").wait_for()  # 28aa6f8c: two failed charge attempts
    from playwright.sync_api import expect

    expect(page.get_by_label("Query", exact=True)).to_have_value(
        '{ name = "POST /api/checkout" } >> { resource.service.name = "payment" && status = error }'
    )


def test_a_pasted_prefix_opens_its_trace(page: Any, up: Any) -> None:  # noqa: F811
    page.goto(up.ui + "/?trace=1dd722018e15")
    settle(page, "Trace")
    page.get_by_text("trace 1dd722018e153afe0b5a9c61b05aa28b").wait_for()
    assert page.get_by_text("Trace not found").count() == 0
    shoot(page, "trace-by-prefix")


def test_hostile_query_text_is_text(page: Any, up: Any) -> None:  # noqa: F811
    hostile = '{ name = "<img src=x onerror=alert(1)> **bold**" }'
    page.goto(up.ui + "/?q=" + quote(hostile))
    settle(page, "Search")
    page.get_by_text("No trace in this range matches the query.").wait_for()
    assert page.watch.dialogs == []
    assert page.locator("img[src=x]").count() == 0


def test_failures_page_links_its_query(page: Any, up: Any) -> None:  # noqa: F811
    page.goto(up.ui + "/?failures")
    settle(page, "Failures")
    link = page.get_by_role("link", name="their root causes")
    href = link.get_attribute("href") or ""
    assert unquote(href).startswith("./?q={ status = error } !< { status = error }")
    page.goto(up.ui + "/" + href.removeprefix("./"))  # markdown links open a new tab
    settle(page, "Search")
    page.get_by_text("5 matching traces").wait_for()


def test_the_matches_open_as_a_flow(page: Any, up: Any) -> None:  # noqa: F811
    """Search's "Open the matches as a flow" (?flowq=) shows the Flows page folding the
    query's 5 traces: the two ORD-9999 lookups share a shape, the other three differ."""
    page.goto(up.ui + "/?q=" + quote(CASCADE))
    settle(page, "Search")
    page.get_by_text("5 matching traces").wait_for()
    href = page.get_by_role("link", name="Open the matches as a flow").get_attribute("href")
    assert href and href.startswith("./?flowq=")
    page.goto(up.ui + "/" + href.removeprefix("./"))  # link buttons open a new tab
    settle(page, "Flows")
    assert "/flows" in page.url and "flowq=" in page.url
    page.locator("[data-testid=stDataFrame]:visible").first.wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    from playwright.sync_api import expect

    expect(page.get_by_label("Query: the traces it selects (docs/query.md)")).to_have_value(CASCADE)
    metrics = page.locator("[data-testid=stMetricValue]")
    assert metrics.nth(0).inner_text() == "5"  # traces
    assert metrics.nth(1).inner_text() == "4"  # variants
    variant = page.get_by_role("combobox", name="Variant")
    assert variant.input_value().startswith("1 · 2 traces (40.0%) · 0 failed, 2 partial")
    share = page.locator("[data-testid=stCode]").last.inner_text()
    assert "/?flowq=" in share
    no_page_not_found(page)
    shoot(page, "flows-of-query", height=1400)
    assert not page.watch.errors, page.watch.errors


def test_a_bad_flow_query_shows_the_parser_message(page: Any, up: Any) -> None:  # noqa: F811
    page.goto(up.ui + "/?flowq=" + quote("{ status = error } !<"))
    settle(page, "Flows")
    page.get_by_text(
        "query error at position 22: expected '{' starting a spanset filter"
    ).wait_for()
    shoot(page, "flows-bad-query")
    assert page.locator(".js-plotly-plot").count() == 0
