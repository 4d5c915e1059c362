"""A busy entity's page in Chromium (Playwright) against `seqtrace up` (#16).

A customer with 60 orders, 3 of them failed, each order a checkout that calls 14 services:
far over the 500-message cap, so the diagram folds the clean orders into one drawing whose
arrows stand for 57 calls each, and it has 17 participants, more than fit the page (14 do).
The spans go in through the collector (OTLP/HTTP, protobuf). In the browser: each folded arrow
says its count once (a multiplication sign and 57, never also "(x57)"), the figure keeps
a readable column per participant and scrolls sideways in its own box, and hovering a
header shows the whole name. Screenshots in test-artifacts/.
"""

from __future__ import annotations

import random
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from analyzer.source import HttpSource
from spanstore.model import Span
from spanstore.rows import request_from_spans
from tests.conftest import ROOT, start_seqtrace
from tests.e2e.test_browser import (  # noqa: F401  (fixtures, used by name)
    Up,
    browser,
    settle,
    shoot,
)
from tests.e2e.test_browser import page as page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ORDERS = 60
FAILED = {11, 29, 47}
SERVICES = [f"{name}-service" for name in (
    "inventory-reservations", "pricing", "tax", "loyalty", "fraud-screening", "shipping-quotes",
    "payments", "notifications", "recommendations", "audit-log", "warehouse-slots",
    "gift-wrapping", "carbon-offsets", "customs-declarations",
)]  # fmt: skip
CUSTOMER = "CUST-E2E-BUSY"


def order_spans(number: int, rng: random.Random, t0: int) -> list[Span]:
    """frontend -> checkout -> each of SERVICES in turn; a failed order's payment fails."""
    trace_id = f"{rng.getrandbits(128):032x}"
    ids = iter(f"{rng.getrandbits(64):016x}" for _ in range(64))
    start = t0 + number * 20_000_000_000  # 20 s apart
    ms = 1_000_000
    fails = number in FAILED
    spans: list[Span] = []

    def add(parent: str | None, service: str, name: str, kind: str, begin: int, end: int,
            error: bool = False) -> str:  # fmt: skip
        span_id = next(ids)
        attributes = {
            "customer.id": CUSTOMER,
            "order.id": f"ORD-E2E-{number}",
            "http.request.method": "POST",
            "http.route": name.split(" ", 1)[1],
        }
        if kind == "CLIENT":
            attributes["peer.service"] = name.split("/")[1]
        spans.append(
            Span(
                trace_id=trace_id, span_id=span_id, parent_span_id=parent,
                service_name=service, name=name, kind=kind,
                start_unix_nano=start + begin * ms, end_unix_nano=start + end * ms,
                status_code="ERROR" if error else "UNSET",
                status_message="card declined" if error else "",
                attributes=attributes, resource_attributes={"service.name": service},
            )
        )  # fmt: skip
        return span_id

    root = add(None, "frontend", "POST /checkout", "SERVER", 0, 400, fails)
    client = add(root, "frontend", "POST /checkout-service/orders", "CLIENT", 2, 398, fails)
    checkout = add(client, "checkout-service", "POST /checkout-service/orders", "SERVER", 3, 397,
                   fails)  # fmt: skip
    for index, service in enumerate(SERVICES):
        begin = 10 + index * 35
        failing = fails and service == "payments-service"
        route = f"POST /{service}/run"
        call = add(checkout, "checkout-service", route, "CLIENT", begin, begin + 30, failing)
        add(call, service, route, "SERVER", begin + 1, begin + 29, failing)
    return spans


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """`seqtrace up` on an empty store, the busy customer sent through OTLP/HTTP."""
    db = tmp_path_factory.mktemp("e2e-busy") / "up.duckdb"
    server = start_seqtrace("up", "--db", str(db), "--no-demo", cwd=ROOT)
    try:
        rng = random.Random(60)
        t0 = time.time_ns() - 3_600_000_000_000
        spans = [s for n in range(ORDERS) for s in order_spans(n, rng, t0)]
        for first in range(0, len(spans), 400):
            body = request_from_spans(spans[first : first + 400]).SerializeToString()
            request = urllib.request.Request(
                f"http://{server.addresses['otlp-http']}/v1/traces",
                data=body,
                headers={"Content-Type": "application/x-protobuf"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
        yield Up(server.addresses)
    finally:
        server.stop(timeout=30)


def test_busy_entity_page_labels_once_and_scrolls_wide(page: Any, up: Up) -> None:
    diagram = HttpSource(up.api).diagram(entity=f"customer.id={CUSTOMER}")
    assert isinstance(diagram, dict)
    assert len(diagram["traces"]) == ORDERS and len(diagram["participants"]) == 17
    failed = [m for m in diagram["messages"] if m["status"] == "error"]
    named = {m["trace_id"] for m in failed}
    assert len(named) == len(FAILED)  # every failed order has an error message naming it
    folded = [m for m in diagram["messages"] if m.get("trace_ids")]
    assert folded and all(m["count"] == ORDERS - len(FAILED) for m in folded)
    assert all(m["label"].endswith(f" \u00d7{m['count']}") for m in folded)

    page.goto(f"{up.ui}/?entity=customer.id={CUSTOMER}")
    settle(page, "Entity sequence diagram")
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for()
    page.get_by_text("Folded:", exact=False).first.wait_for()
    page.wait_for_timeout(1000)
    texts = chart.evaluate(
        "c => [...c.querySelectorAll('.annotation-text')].map(e => e.textContent || '')"
    )
    counted = [t for t in texts if "\u00d757" in t]
    assert counted, texts[:40]
    assert all(t.count("\u00d757") == 1 for t in counted)
    assert not [t for t in texts if "(x" in t]
    # Wider than the page: the figure scrolls sideways inside its own box.
    box = page.locator("[class*='st-key-entity_sequence']").first
    scroll_width, client_width = box.evaluate("b => [b.scrollWidth, b.clientWidth]")
    assert scroll_width > client_width + 200, (scroll_width, client_width)
    shoot(page, "entity-busy-wide", height=1400)
    # A shortened header name shows in full on hover.
    header = chart.locator("g.annotation", has_text="fraud-screening").first
    header.hover()
    page.locator(".hoverlayer", has_text="fraud-screening-service").first.wait_for()
    box.evaluate("b => { b.scrollLeft = b.scrollWidth; }")
    page.wait_for_timeout(500)
    shoot(page, "entity-busy-wide-scrolled", height=1400)
