"""Flows (#16): traces folded into variants.

Real SDK traffic: the OpenTelemetry SDK's OTLP exporter sends traces of known shapes, in
known numbers, to a running `seqtrace serve`; `flow` (API and CLI) must count them exactly.
Property tests: variant counts add up to the traces selected, and a trace's variant does not
depend on the order its spans arrive in or on their ids. Unit tests of the normalisation.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from analyzer.flow import FlowError, flow_of_spans
from analyzer.flow.shape import template_label
from analyzer.flow.variants import percentile
from analyzer.source import HttpSource, SourceError
from spanstore.model import Span
from tests.conftest import SEQTRACE, Server, start_server

MS = 1_000_000
BASE = 1_790_000_000_000_000_000


# --- unit: templates and percentiles ---------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "templated"),
    [
        ("GET /orders/1002", "GET /orders/{id}"),
        ("GET /orders/ORD-1002/items/7", "GET /orders/{id}/items/{id}"),
        ("GET /users/5f0c1d2e-8a3b-4c5d-9e6f-0a1b2c3d4e5f", "GET /users/{id}"),
        ("GET /blobs/deadbeef42", "GET /blobs/{id}"),
        ("GET /api/v2/orders/{orderId}", "GET /api/v2/orders/{orderId}"),
        ("CartService/GetCart", "CartService/GetCart"),
        ("SELECT orders", "SELECT orders"),
    ],
)
def test_template_label(raw: str, templated: str) -> None:
    assert template_label(raw) == templated


def test_percentile_is_nearest_rank() -> None:
    values = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.95) == 100
    assert percentile([7], 0.95) == 7
    assert percentile([], 0.5) == 0


# --- spans built by hand --------------------------------------------------------------------


@dataclass
class Call:
    """A CLIENT span in the caller answered by a SERVER span in ``service``."""

    service: str
    route: str
    start_ms: int
    end_ms: int
    error: bool = False
    calls: tuple[Call, ...] = ()


def _span(
    trace_id: str,
    span_id: str,
    parent: str | None,
    service: str,
    name: str,
    kind: str,
    start_ms: int,
    end_ms: int,
    error: bool,
    attributes: dict[str, Any],
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        service_name=service,
        name=name,
        kind=kind,
        start_unix_nano=BASE + start_ms * MS,
        end_unix_nano=BASE + end_ms * MS,
        status_code="ERROR" if error else "UNSET",
        attributes=attributes,
    )


def trace_spans(trace_id: str, root: Call, ids: Iterator[str]) -> list[Span]:
    """The root SERVER span of ``root.service``, then each call as CLIENT + SERVER."""
    spans: list[Span] = []
    root_id = next(ids)
    attrs = {"http.request.method": "POST", "http.route": root.route}
    spans.append(
        _span(
            trace_id,
            root_id,
            None,
            root.service,
            f"POST {root.route}",
            "SERVER",
            root.start_ms,
            root.end_ms,
            root.error,
            attrs,
        )
    )

    def add(parent_id: str, caller: str, call: Call) -> None:
        client_id, server_id = next(ids), next(ids)
        attrs = {
            "http.request.method": "GET",
            "http.route": call.route,
            "peer.service": call.service,
        }
        spans.append(
            _span(
                trace_id,
                client_id,
                parent_id,
                caller,
                f"GET {call.route}",
                "CLIENT",
                call.start_ms,
                call.end_ms,
                call.error,
                attrs,
            )
        )
        spans.append(
            _span(
                trace_id,
                server_id,
                client_id,
                call.service,
                f"GET {call.route}",
                "SERVER",
                call.start_ms + 1,
                call.end_ms - 1,
                call.error,
                attrs,
            )
        )
        for sub in call.calls:
            add(server_id, call.service, sub)

    for call in root.calls:
        add(root_id, root.service, call)
    return spans


def hex_ids(rng: random.Random, width: int) -> Iterator[str]:
    seen: set[str] = set()
    while True:
        value = f"{rng.getrandbits(width * 4):0{width}x}"
        if value not in seen:
            seen.add(value)
            yield value


def checkout(k_items: int, fail_payment: bool, fail_root: bool, offset_ms: int) -> Call:
    """cart, then stock checked k times (an N+1 run), then payment."""
    t = offset_ms
    items = tuple(Call("stock", f"/stock/{100 + i}", t + 20 + 10 * i, t + 28 + 10 * i)
                  for i in range(k_items))  # fmt: skip
    pay_start = t + 30 + 10 * k_items
    return Call(
        "shop",
        "/checkout",
        t,
        pay_start + 40,
        fail_root,
        (
            Call("cart", "/cart/{id}", t + 2, t + 15),
            *items,
            Call("payment", "/pay", pay_start, pay_start + 30, fail_payment),
        ),
    )


# --- properties -----------------------------------------------------------------------------

shapes = st.tuples(st.integers(1, 4), st.booleans(), st.booleans())


@given(st.lists(shapes, min_size=1, max_size=12), st.integers(0, 2**32))
def test_variant_counts_add_up_and_ignore_order_and_ids(
    traces: list[tuple[int, bool, bool]], seed: int
) -> None:
    rng = random.Random(seed)
    spans: list[Span] = []
    expected: dict[tuple[bool, bool], int] = {}
    for number, (k, fail_payment, fail_root) in enumerate(traces):
        ids = hex_ids(rng, 16)
        root = checkout(k, fail_payment, fail_root, number * 1000)
        spans += trace_spans(f"{number + 1:032x}", root, ids)
        expected[(fail_payment, fail_root)] = expected.get((fail_payment, fail_root), 0) + 1
    variants = flow_of_spans(spans)
    assert sum(v.count for v in variants) == len(traces)
    # Stock checked 1-4 times is one shape; what failed makes the others.
    assert sorted(v.count for v in variants) == sorted(expected.values())

    def membership(variants_: list[Any]) -> dict[int, frozenset[int]]:
        """Trace number -> the numbers of the traces sharing its variant."""
        out: dict[int, frozenset[int]] = {}
        for v in variants_:
            numbers = frozenset(int(m.trace_ids[0], 16) for m in v.members)
            for n in numbers:
                out[n] = numbers
        return out

    shuffled = list(spans)
    rng.shuffle(shuffled)
    renamed_ids = hex_ids(rng, 16)
    mapping = {s.span_id: next(renamed_ids) for s in spans}
    renamed = [
        Span(**{
            **{f: getattr(s, f) for f in ("trace_id", "service_name", "name", "kind",
                                          "start_unix_nano", "end_unix_nano", "status_code",
                                          "attributes")},
            "span_id": mapping[s.span_id],
            "parent_span_id": mapping.get(s.parent_span_id) if s.parent_span_id else None,
        })
        for s in shuffled
    ]  # fmt: skip
    again = flow_of_spans(renamed)
    assert membership(again) == membership(variants)
    assert [v.id for v in again] == [v.id for v in variants]


def test_runs_fold_and_per_message_counts() -> None:
    """Hand-computed: 3 clean traces with 1, 2 and 3 stock checks; 1 with payment failing."""
    rng = random.Random(4)
    spans: list[Span] = []
    plan = [(1, False), (2, False), (3, False), (2, True)]
    for number, (k, fail) in enumerate(plan):
        spans += trace_spans(f"{number + 1:032x}", checkout(k, fail, False, number * 1000),
                             hex_ids(rng, 16))  # fmt: skip
    variants = flow_of_spans(spans)
    assert [v.count for v in variants] == [3, 1]
    clean, failing = variants
    assert clean.outcomes() == {"ok": 3, "partial": 0, "failed": 0}
    assert failing.outcomes() == {"ok": 0, "partial": 1, "failed": 0}
    calls = {
        m.label: (s.count, s.errors)
        for m, s in zip(clean.diagram.messages, clean.stats, strict=True)
        if m.kind == "call"
    }
    assert calls == {
        "POST /checkout": (3, 0),
        "GET /cart/{id}": (3, 0),
        "GET /stock/{id}": (6, 0),  # 1 + 2 + 3
        "GET /pay": (3, 0),
    }
    loops = [b for b in clean.diagram.blocks if b.kind == "loop"]
    assert [b.label for b in loops] == ["1-3 times"]
    # Stock calls last 8 ms each (client span): p50 and p95 are 8 ms.
    stock = next(s for m, s in zip(clean.diagram.messages, clean.stats, strict=True)
                 if m.label == "GET /stock/{id}")  # fmt: skip
    assert (stock.p50_ns, stock.p95_ns) == (8 * MS, 8 * MS)
    marks = {m.label: mark for m, mark in zip(failing.diagram.messages, failing.marks, strict=True)
             if m.kind == "call"}  # fmt: skip
    assert marks["GET /pay"] == "failed"
    assert failing.examples() == ["00000000000000000000000000000004"]
    # Whole traces last 70 ms + 10 ms per stock check: 80, 90 and 100 ms; nearest rank:
    # p50 is the 2nd of 3 (ceil(1.5)), p95 the 3rd (ceil(2.85)).
    assert clean.duration_percentiles() == (90 * MS, 100 * MS)


def test_par_branches_compare_as_a_set() -> None:
    """Two concurrent calls in either order are one variant."""
    rng = random.Random(7)
    spans: list[Span] = []
    for number, first in enumerate(("cart", "stock", "cart")):
        second = "stock" if first == "cart" else "cart"
        t = number * 1000
        root = Call("shop", "/checkout", t, t + 100, False, (
            Call(first, f"/{first}", t + 5, t + 50),
            Call(second, f"/{second}", t + 6, t + 40),
        ))  # fmt: skip
        spans += trace_spans(f"{number + 1:032x}", root, hex_ids(rng, 16))
    variants = flow_of_spans(spans)
    assert [v.count for v in variants] == [3]
    assert [b.kind for b in variants[0].diagram.blocks] == ["par"]


# --- real SDK traffic through a running server -----------------------------------------------


def _emit(endpoint: str, plan: list[tuple[int, bool, bool]]) -> None:
    """Checkout traces through the SDK: shop (root) -> cart, stock x k, payment."""
    providers: dict[str, TracerProvider] = {}

    def tracer(service: str) -> otel_trace.Tracer:
        if service not in providers:
            provider = TracerProvider(resource=Resource.create({"service.name": service}))
            provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint), max_queue_size=100_000)
            )
            providers[service] = provider
        return providers[service].get_tracer("flow-test")

    now = time.time_ns() - 3_600_000_000_000

    def call(parent: otel_trace.Span, caller: str, service: str, route: str,
             start: int, end: int, error: bool) -> None:  # fmt: skip
        ctx = otel_trace.set_span_in_context(parent)
        attrs = {"http.request.method": "GET", "http.route": route, "peer.service": service}
        client = tracer(caller).start_span(f"GET {route}", ctx, SpanKind.CLIENT, attrs,
                                           start_time=start)  # fmt: skip
        server = tracer(service).start_span(
            f"GET {route}",
            otel_trace.set_span_in_context(client),
            SpanKind.SERVER,
            attrs,
            start_time=start + MS,
        )
        if error:
            server.set_status(Status(StatusCode.ERROR, "payment declined"))
            client.set_status(Status(StatusCode.ERROR, "payment declined"))
        server.end(end - MS)
        client.end(end)

    for number, (k, fail_payment, fail_root) in enumerate(plan):
        t = now + number * 2_000 * MS
        root = tracer("shop").start_span(
            "POST /checkout",
            kind=SpanKind.SERVER,
            start_time=t,
            attributes={
                "http.request.method": "POST",
                "http.route": "/checkout",
                "order.id": f"ORD-{number}",
                "customer.id": "CUST-7",
            },
        )
        call(root, "shop", "cart", "/cart/{id}", t + 2 * MS, t + 15 * MS, False)
        for i in range(k):
            call(root, "shop", "stock", "/stock/{sku}", t + (20 + 10 * i) * MS,
                 t + (28 + 10 * i) * MS, False)  # fmt: skip
        pay = t + (30 + 10 * k) * MS
        call(root, "shop", "payment", "/pay", pay, pay + 30 * MS, fail_payment)
        if fail_root:
            root.set_status(Status(StatusCode.ERROR, "checkout failed"))
        root.end(pay + 40 * MS)
    for provider in providers.values():
        provider.force_flush()
        provider.shutdown()


#: (stock checks, payment fails, root fails): 5 clean in 3 run lengths, 3 with a declined
#: payment, 2 where the checkout itself failed too.
PLAN = [(1, False, False), (2, False, False), (3, False, False), (1, False, False),
        (2, False, False), (1, True, False), (2, True, False), (1, True, False),
        (1, True, True), (3, True, True)]  # fmt: skip


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(tmp_path_factory.mktemp("flow") / "flow.duckdb")
    try:
        _emit(f"http://{server.addresses['otlp-http']}/v1/traces", PLAN)
        source = HttpSource(server.api)
        deadline = time.monotonic() + 30
        while source.stats()["traces"] < len(PLAN) and time.monotonic() < deadline:
            time.sleep(0.2)
        yield server
    finally:
        server.stop()


def test_sdk_traffic_folds_into_known_variants(sdk_server: Server) -> None:
    source = HttpSource(sdk_server.api)
    body = source.flow(root="shop: POST /checkout", start=0, end=time.time_ns())
    assert isinstance(body, dict)
    assert body["traces"] == 10
    assert body["selection"]["root"] == "shop: POST /checkout"
    summary = [(v["count"], v["ok"], v["partial"], v["failed"]) for v in body["variants"]]
    assert summary == [(5, 5, 0, 0), (3, 0, 3, 0), (2, 0, 0, 2)]
    clean, declined, failed = body["variants"]
    calls = [
        (m["label"], m["count"], m["errors"]) for m in clean["messages"] if m["kind"] == "call"
    ]
    assert calls == [
        ("POST /checkout", 5, 0),
        ("GET /cart/{id}", 5, 0),
        ("GET /stock/{sku}", 9, 0),  # 1 + 2 + 3 + 1 + 2
        ("GET /pay", 5, 0),
    ]
    pay = [m for m in declined["messages"] if m["label"] == "GET /pay"]
    assert [(m["count"], m["errors"], m["diff"]) for m in pay] == [(3, 3, "failed")]
    stock = [m for m in failed["messages"] if m["label"] == "GET /stock/{sku}"]
    assert [m["count"] for m in stock] == [4]  # 1 + 3
    assert failed["messages"][0]["diff"] == "failed"
    # Examples: every trace, failing first.
    assert len(failed["trace_ids"]) == 2 and len(clean["trace_ids"]) == 5
    assert all(v["duration_p50_ns"] <= v["duration_p95_ns"] for v in body["variants"])


def test_flow_by_entity_and_key_over_sdk_traffic(sdk_server: Server) -> None:
    source = HttpSource(sdk_server.api)
    by_customer = source.flow(entity="customer.id=CUST-7", start=0, end=time.time_ns())
    assert isinstance(by_customer, dict)
    assert [v["count"] for v in by_customer["variants"]] == [5, 3, 2]
    by_order = source.flow(key="order.id", start=0, end=time.time_ns())
    assert isinstance(by_order, dict)
    assert by_order["traces"] == 10  # one sequence per order
    assert [v["count"] for v in by_order["variants"]] == [5, 3, 2]


def test_flow_cli_formats_and_errors(sdk_server: Server) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SEQTRACE, "flow", "--api", sdk_server.api, "--from", "-1d", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    table = run("--root", "shop: POST /checkout")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert "10 traces, 3 variants" in lines[0]
    assert lines[3].split()[2:7] == ["5", "50.0%", "5", "0", "0"]
    as_json = run("--root", "shop: POST /checkout", "--format", "json")
    assert json.loads(as_json.stdout)["traces"] == 10
    for fmt, marker in (("mermaid", "sequenceDiagram"), ("plantuml", "@startuml"),
                        ("svg", "<svg"), ("markdown", "## Variant 1")):  # fmt: skip
        out = run("--root", "shop: POST /checkout", "--format", fmt)
        assert out.returncode == 0 and marker in out.stdout, (fmt, out.stderr)
    # --query runs the real query language (#17): the 5 traces with a failed payment.
    query = run("--query", "{ status = error }", "--format", "json")
    assert query.returncode == 0, query.stderr
    by_query = json.loads(query.stdout)
    assert by_query["selection"]["query"] == "{ status = error }"
    assert by_query["traces"] == 5
    assert [(v["count"], v["partial"], v["failed"]) for v in by_query["variants"]] == [
        (3, 3, 0),  # payment declined, checkout answered
        (2, 0, 2),  # the checkout failed too
    ]
    bad_query = run("--query", "{ status = }")
    assert bad_query.returncode == 2
    assert bad_query.stderr.startswith("seqtrace: error: query error at position ")
    assert len(bad_query.stderr.strip().splitlines()) == 1
    # A selection with no trace in the range says how to widen it, in one line.
    nothing = run("--root", "shop: POST /nowhere")
    assert nothing.returncode == 0, nothing.stderr
    assert "0 traces, 0 variants" in nothing.stdout
    assert nothing.stdout.splitlines()[-1].startswith("no trace matches in this range: widen")
    bad = run("--root", "shop")
    assert bad.returncode == 2 and "SERVICE: OPERATION" in bad.stderr
    assert "Traceback" not in bad.stderr
    none = run()
    assert none.returncode == 2


def test_flow_api_errors(sdk_server: Server) -> None:
    source = HttpSource(sdk_server.api)
    with pytest.raises(SourceError) as error:
        source.flow(query="{ status = error")
    assert error.value.status == 400
    assert str(error.value).startswith("query error at position ")
    # /api/v1/flow?q=: the 2 traces whose root span failed, one variant.
    url = (
        sdk_server.api
        + "/api/v1/flow?"
        + urllib.parse.urlencode(
            {
                "q": '{ status = error && kind = server && resource.service.name = "shop" }',
                "from": "-1d",
            }
        )
    )
    with urllib.request.urlopen(url, timeout=60) as response:
        body = json.load(response)
    assert body["traces"] == 2
    assert [(v["count"], v["failed"]) for v in body["variants"]] == [(2, 2)]
    with pytest.raises(SourceError) as error:
        source.flow(root="shop: POST /checkout", fmt="pdf")
    assert error.value.status == 400
    roots = source.flow_roots(start=0, end=time.time_ns())
    assert roots["roots"][0] == {
        "service": "shop", "operation": "POST /checkout", "traces": 10, "failed": 2,
    }  # fmt: skip


def test_flow_through_store_equals_flow_of_spans(tmp_path: Path) -> None:
    """The store's fingerprint path folds exactly as the in-memory path does."""
    from test_diagram_golden import SAMPLES, sample_spans

    from analyzer.flow import flow_of_reader
    from collector.files import read_trace_file
    from spanstore.duckdb_store import DuckDBStore

    path = tmp_path / "s.duckdb"
    with DuckDBStore(path) as store:
        for file in sorted(SAMPLES.glob("*.json")):
            for request in read_trace_file(file):
                store.write(request)
    with DuckDBStore(path, read_only=True) as store:
        report, variants = flow_of_reader(store, 0, 1 << 62, root="frontend: POST /api/checkout")
        ids = {t for v in variants for m in v.members for t in m.trace_ids}
        direct = flow_of_spans([s for s in sample_spans() if s.trace_id in ids])
    assert report["traces"] == 11

    def summary(vs: list[Any]) -> list[Any]:
        return [(v.id, v.count, v.outcomes(), v.stats, v.diagram.blocks) for v in vs]

    assert summary(variants) == summary(direct)


def test_flow_of_a_query_through_the_store_reader(tmp_path: Path) -> None:
    """flow_of_reader(query=...) with no finder: the reader's query language selects the
    traces, the same ones a scan of the spans in memory finds."""
    from test_diagram_golden import SAMPLES, sample_spans

    from analyzer.flow import flow_of_reader
    from collector.files import read_trace_file
    from spanstore.duckdb_store import DuckDBStore

    path = tmp_path / "q.duckdb"
    with DuckDBStore(path) as store:
        for file in sorted(SAMPLES.glob("*.json")):
            for request in read_trace_file(file):
                store.write(request)
    spans = sample_spans()
    failed_payment = {s.trace_id for s in spans if s.is_error and s.service_name == "payment"}
    assert failed_payment  # the samples have failed payments
    with DuckDBStore(path, read_only=True) as store:
        query = '{ status = error && resource.service.name = "payment" }'
        report, variants = flow_of_reader(store, 0, 1 << 62, query=query)
        with pytest.raises(FlowError, match="query error at position"):
            flow_of_reader(store, 0, 1 << 62, query="{ status = error")
    assert report["selection"]["query"] == query
    assert report["traces"] == len(failed_payment)
    assert {t for v in variants for m in v.members for t in m.trace_ids} == failed_payment


def test_query_selection_uses_the_source_query_function(tmp_path: Path) -> None:
    """`flow --query` folds the traces the source's query_trace_ids finds (#17 supplies
    it); a query it cannot parse (ValueError) is a one-line 400."""
    from test_diagram_golden import SAMPLES

    from analyzer.source import LocalSource
    from collector.files import read_trace_file
    from spanstore.duckdb_store import DuckDBStore

    path = tmp_path / "q.duckdb"
    with DuckDBStore(path) as store:
        for file in sorted(SAMPLES.glob("*.json")):
            for request in read_trace_file(file):
                store.write(request)
    with DuckDBStore(path, read_only=True) as store:
        source = LocalSource(store)
        roots = source.flow(root="frontend: POST /api/checkout", start=0, end=1 << 62)
        assert isinstance(roots, dict)
        wanted = [t for v in roots["variants"] for t in v["trace_ids"]]
        asked: list[tuple[str, int, int]] = []

        def query_trace_ids(query: str, start: int, end: int) -> list[str]:
            asked.append((query, start, end))
            if query == "bad":
                raise ValueError("position 1: expected '{'")
            return wanted

        source.query_trace_ids = query_trace_ids  # type: ignore[attr-defined]
        body = source.flow(query='{ name = "POST /api/checkout" }', start=0, end=1 << 62)
        assert isinstance(body, dict)
        assert body["selection"]["query"] == '{ name = "POST /api/checkout" }'
        assert body["traces"] == 11
        assert [v["id"] for v in body["variants"]] == [v["id"] for v in roots["variants"]]
        assert asked[0][1:] == (0, 1 << 62)
        with pytest.raises(SourceError) as error:
            source.flow(query="bad", start=0, end=1 << 62)
        assert error.value.status == 400 and str(error.value) == "position 1: expected '{'"
