"""Golden files: every renderer on every sample-trace case and on real captured traces.

``tests/golden/diagram/<case>.{mmd,puml,svg,json,md}``. After an intended change, rerun
with ``SEQTRACE_UPDATE_GOLDEN=1`` to rewrite them, and review the diff.

Entity cases select spans the way the store does for ``seqtrace diagram --entity``: every
trace with a span carrying the attribute, plus the traces joined to those by a span link
(either end). Real-trace cases draw the whole trace, like ``--trace ID``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from analyzer.diagram import FORMATS, build_diagram, render
from analyzer.diagram.model import Diagram
from analyzer.diagram.text import TIMES
from spanstore.model import Span
from spanstore.otlp import request_from_json, spans_from_request
from tests.conftest import GOLDEN as GOLDEN_ROOT
from tests.conftest import REAL_TRACES as REAL
from tests.conftest import SAMPLES, assert_golden

GOLDEN = GOLDEN_ROOT / "diagram"
SUFFIXES = {"mermaid": "mmd", "plantuml": "puml", "svg": "svg", "json": "json", "markdown": "md"}


@dataclass(frozen=True)
class Case:
    name: str
    entity: tuple[str, str] | None = None
    real_file: str | None = None
    show_internal: bool = False


CASES = (
    Case("ORD-1001", ("order.id", "ORD-1001")),  # over two days, four traces, a Kafka hop
    Case("ORD-1002", ("order.id", "ORD-1002")),  # payment retried twice, then succeeded
    Case("ORD-1003", ("order.id", "ORD-1003")),  # happy order
    Case("ORD-1004", ("order.id", "ORD-1004")),  # degraded recommendations, fallback
    Case("ORD-1005", ("order.id", "ORD-1005")),  # DB deadlock, root ERROR
    Case("ORD-9999", ("order.id", "ORD-9999")),  # a 404
    Case("ORD-1666", ("order.id", "ORD-1666")),  # hostile strings
    Case("ORD-1666-internal", ("order.id", "ORD-1666"), show_internal=True),
    Case("CUST-48213", ("customer.id", "CUST-48213")),  # browsing before the order existed
    Case("hotrod", real_file="jaegertracing-jaeger-hotrod-n_plus_one_full_concurrent.json"),
    Case("hotrod-v3", real_file="jaegertracing-jaeger-ui-hotrod-v3-getTrace-response.json"),
    Case("otel-demo-timeout", real_file="jaegertracing-jaeger-otel-demo-error_timeout_masked.json"),
    Case("otlp-example", real_file="otlp-proto-example-trace.json"),
)


def load_file(path: Path) -> list[Span]:
    if not path.exists():
        pytest.fail(f"{path} is missing: restore it (sample_traces/generate.py or real_traces)")
    doc = json.loads(path.read_text(encoding="utf-8"))
    if "result" in doc:  # Jaeger's API v3 envelope
        doc = doc["result"]
    return list(spans_from_request(request_from_json(doc)))


@cache
def sample_spans() -> tuple[Span, ...]:
    files = sorted(SAMPLES.glob("*.json"))
    if not files:
        pytest.fail(f"no sample traces in {SAMPLES}: run sample_traces/generate.py")
    return tuple(span for file in files for span in load_file(file))


def _carries(span: Span, key: str, value: str) -> bool:
    return any(attrs.get(key) == value for attrs in (span.attributes, span.resource_attributes))


def entity_spans(spans: Iterable[Span], key: str, value: str) -> list[Span]:
    """The store's selection: traces carrying key=value plus traces linked either way."""
    spans = list(spans)
    chosen = {span.trace_id for span in spans if _carries(span, key, value)}
    linked = {link.trace_id for s in spans if s.trace_id in chosen for link in s.links}
    linked |= {s.trace_id for s in spans for link in s.links if link.trace_id in chosen}
    return [span for span in spans if span.trace_id in chosen | linked]


def case_spans(case: Case) -> list[Span]:
    if case.real_file:
        return load_file(REAL / case.real_file)
    assert case.entity is not None
    return entity_spans(sample_spans(), *case.entity)


@cache
def case_diagram(case: Case) -> Diagram:
    return build_diagram(case_spans(case), case.entity, show_internal=case.show_internal)


def rendered(case: Case, fmt: str) -> str:
    return render(case_diagram(case), fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_golden(case: Case, fmt: str) -> None:
    text = rendered(case, fmt)
    assert_golden(f"diagram/{case.name}.{SUFFIXES[fmt]}", text)
    if fmt == "svg":
        ET.fromstring(text.encode("utf-8"))
    if fmt == "json":
        assert json.loads(text)["traces"] == list(case_diagram(case).traces)


def test_no_stray_golden_files() -> None:
    expected = {f"{case.name}.{suffix}" for case in CASES for suffix in SUFFIXES.values()}
    present = {path.name for path in GOLDEN.glob("*")} if GOLDEN.exists() else set()
    assert present - expected == set(), "golden files without a case: delete them"


# --- what the sample cases must show -----------------------------------------------------


def messages(case: Case) -> list[tuple[str, str, str]]:
    return [(m.source, m.target, m.label) for m in case_diagram(case).messages]


def case_named(name: str) -> Case:
    return next(case for case in CASES if case.name == name)


def test_order_over_two_days_has_a_divider_and_the_kafka_hop() -> None:
    diagram = case_diagram(case_named("ORD-1001"))
    assert len(diagram.traces) >= 4
    gaps = [note.text for note in diagram.notes if note.kind == "gap"]
    assert any("day" in text for text in gaps), gaps
    assert ("order-events", "fulfillment", "process order-events") in messages(
        case_named("ORD-1001")
    )


def test_retried_payment_is_a_loop_of_three_attempts() -> None:
    diagram = case_diagram(case_named("ORD-1002"))
    loops = [b for b in diagram.blocks if b.kind == "loop"]
    assert [b.label for b in loops] == ["retry: 3 attempts, 2 failed"]
    inside = diagram.messages[loops[0].first : loops[0].last + 1]
    assert [m.target for m in inside if m.kind == "call"] == ["payprovider"] * 3


def test_degraded_recommendations_run_in_parallel_and_fail() -> None:
    diagram = case_diagram(case_named("ORD-1004"))
    assert any(b.kind == "par" for b in diagram.blocks)
    failed = [m for m in diagram.messages if m.is_error and m.kind == "return"]
    assert any(m.source == "recommendation" and "TimeoutError" in (m.error or "") for m in failed)


def test_deadlock_is_drawn_where_it_happened() -> None:
    diagram = case_diagram(case_named("ORD-1005"))
    deadlock = [m for m in diagram.messages if m.kind == "return" and m.source == "orders-db"]
    assert any(m.error == "DeadlockDetected: deadlock detected" for m in deadlock)
    root_answer = [m for m in diagram.messages if m.target == "client"]
    assert root_answer[-1].status == "error" and root_answer[-1].label == "502"


def test_hotrod_collapses_the_n_plus_one_and_keeps_route_calls_parallel() -> None:
    diagram = case_diagram(case_named("hotrod"))
    collapsed = [m for m in diagram.messages if m.count > 1]
    assert [(m.label, m.count, m.failed) for m in collapsed if m.kind == "call"] == [
        (f"GetDriver {TIMES}13", 13, 3)
    ]
    par = [b for b in diagram.blocks if b.kind == "par"]
    assert len(par) == 1 and len(par[0].branches) == 10
    kinds = {p.id: p.kind for p in diagram.participants}
    assert kinds["mysql"] == kinds["redis-manual"] == "database"
