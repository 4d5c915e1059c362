"""Runbooks and "Replay this" in a real Chromium, against `seqtrace up` (fixtures and
helpers of test_browser.py)."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from tests.e2e.test_browser import Up, browser, page, settle, shoot, up

__all__ = ["browser", "page", "up"]  # the fixtures, imported for pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_slo_page_shows_runbooks_as_links_or_text(page: Any, up: Up) -> None:
    page.goto(up.ui + "/slo")
    settle(page, "SLOs")
    page.locator(".js-plotly-plot").nth(1).wait_for()
    url = "https://runbooks.example.com/shop/checkout#availability"
    link = page.get_by_role("link", name=url).first
    link.wait_for()
    assert link.get_attribute("href") == url
    path = page.get_by_text("docs/runbooks/payments.md").first
    path.wait_for()
    assert page.get_by_role("link", name="docs/runbooks/payments.md").count() == 0
    shoot(page, "slo-runbooks", height=1400)
    assert not page.watch.errors, page.watch.errors


def test_replay_this_shows_the_command_to_copy(page: Any, up: Up) -> None:
    page.goto(up.ui + "/?entity=order.id=ORD-1002")
    settle(page, "Entity sequence diagram")
    page.locator(".js-plotly-plot").first.wait_for()
    page.get_by_text("Replay this").click()
    code = page.locator("[data-testid=stCode]", has_text="seqtrace replay").first
    code.wait_for()
    words = shlex.split(code.inner_text())
    assert words == [
        "seqtrace", "replay", "--api", up.api, "--entity", "order.id=ORD-1002",
        "--endpoint", "http://localhost:4317",
    ]  # fmt: skip
    shoot(page, "entity-replay-this", height=1400)

    page.goto(up.ui + "/?failures")
    settle(page, "Failures")
    page.get_by_text("Replay this").click()
    code = page.locator("[data-testid=stCode]", has_text="seqtrace replay").first
    code.wait_for()
    words = shlex.split(code.inner_text())
    assert words[:4] == ["seqtrace", "replay", "--api", up.api]
    assert words[4] == "--from" and words[6] == "--to" and words[-2] == "--endpoint"
    shoot(page, "failures-replay-this", height=1400)
    assert not page.watch.errors, page.watch.errors
