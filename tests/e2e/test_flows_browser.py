"""The Flows page in Chromium (Playwright) against `seqtrace up` with the sample shop.

The deep link ``/?flow=SERVICE:OPERATION`` opens the checkouts' variants (9 clean, the
deadlock, the retried payment); a variant is picked, a message clicked, and the Failures
page's link to a failing trace's variant (``variant_of=``) opens that variant. Screenshots
in test-artifacts/.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from analyzer.source import HttpSource
from tests.e2e.test_browser import (  # noqa: F401  (fixtures, used by name)
    Up,
    browser,
    no_page_not_found,
    settle,
    shoot,
)
from tests.e2e.test_browser import page as page
from tests.e2e.test_browser import up as up

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHECKOUT = "frontend:POST /api/checkout"


def flow_url(up: Up, **extra: str) -> str:
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in extra.items())
    return f"{up.ui}/?flow={quote(CHECKOUT, safe=':/')}" + (f"&{query}" if query else "")


def test_flows_deep_link_variants_and_message(page: Any, up: Up) -> None:
    page.goto(flow_url(up))
    settle(page, "Flows")
    assert "/flows" in page.url
    page.locator("[data-testid=stDataFrame]:visible").first.wait_for()
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for()
    metrics = page.locator("[data-testid=stMetricValue]")
    assert metrics.nth(0).inner_text() == "11"  # checkouts
    assert metrics.nth(1).inner_text() == "3"  # variants
    variant = page.get_by_role("combobox", name="Variant")
    assert variant.input_value().startswith("1 · 9 traces (81.8%) · 0 failed, 0 partial")
    no_page_not_found(page)
    shoot(page, "flows-checkout", height=1400)

    # The second variant: the deadlock, failing, with the compensation calls marked extra.
    variant.click()
    page.get_by_role("option", name="2 · 1 traces (9.1%) · 1 failed, 0 partial").click()
    settle(page, "Flows")
    page.get_by_role("heading", name="Variant 2").wait_for()
    chart = page.locator(".js-plotly-plot").first
    chart.get_by_text("+ POST /api/payments/{paymentId}/void", exact=False).first.wait_for()
    assert chart.get_by_text("! POST /api/checkout", exact=False).count() >= 1
    shoot(page, "flows-checkout-variant-2", height=1400)

    # Click a message: its counts and the traces of the variant are listed.
    dots = chart.locator(".scatterlayer .trace .points path")
    assert dots.count() >= 10
    dots.nth(0).click(force=True)
    settle(page, "Flows")
    page.get_by_text("Selected message").wait_for()
    page.locator("[data-testid=stCode]", has_text="1 calls, 1 failed").first.wait_for()
    page.get_by_role("heading", name="Traces of this message").wait_for()
    assert not page.watch.errors, page.watch.errors
    assert not page.watch.dialogs


def test_failures_link_opens_the_trace_variant(page: Any, up: Up) -> None:
    report = HttpSource(up.api).failures(start=0, end=1 << 62)
    failed = [
        t
        for t in report["traces"]
        if t["outcome"] == "failed" and t["root_operation"] == "POST /api/checkout"
    ]
    assert len(failed) == 1
    # The Failures page links every failing trace to its variant.
    page.goto(f"{up.ui}/?failures")
    settle(page, "Failures")
    page.locator("[data-testid=stDataFrame]").first.wait_for()
    page.goto(flow_url(up, variant_of=failed[0]["trace_id"]))
    settle(page, "Flows")
    page.get_by_role("heading", name="Variant 2").wait_for()
    variant = page.get_by_role("combobox", name="Variant")
    assert variant.input_value().startswith("2 · 1 traces (9.1%) · 1 failed, 0 partial")
    shoot(page, "flows-variant-of-failed-trace", height=1400)
    assert not page.watch.errors, page.watch.errors


def test_flows_by_entity_key(page: Any, up: Up) -> None:
    page.goto(flow_url(up))
    settle(page, "Flows")
    page.get_by_text("Entity key", exact=True).click()
    settle(page, "Flows")
    page.locator("[data-testid=stMetricLabel]", has_text="Entities").wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    assert "flow=" not in page.url
    shoot(page, "flows-by-key", height=1400)
    assert not page.watch.errors, page.watch.errors
