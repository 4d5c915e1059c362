"""The partial-failure report on real and generated trace files.

``sample_traces/`` is the shop incident (each scenario is one classification case);
``/work/shared/real_traces`` holds public captures: HotROD (three redis timeouts, each
retried) and the OpenTelemetry demo (a proxy timeout whose span below is fine).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from analyzer.failures import failure_report, render_failures_table
from spanstore.frame import frame_from_spans
from spanstore.model import Span
from spanstore.otlp import request_from_json, spans_from_request
from spanstore.semconv import is_entity_key

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_traces"
REAL = Path(__file__).resolve().parents[1] / "data" / "real_traces"
EVERYTHING = (0, 2**62)


def load_spans(path: Path) -> list[Span]:
    # Every file is in the repository (sample_traces/, tests/data/): a missing one fails.
    doc = json.loads(path.read_text(encoding="utf-8"))
    if "result" in doc:  # Jaeger's API v3 envelope
        doc = doc["result"]
    return list(spans_from_request(request_from_json(doc)))


def entities_of(spans: Iterable[Span]) -> dict[str, dict[str, list[str]]]:
    """trace -> entity key -> values, as ``reader.trace_entities`` returns them."""
    found: dict[str, dict[str, set[str]]] = {}
    for span in spans:
        for attrs in (span.attributes, span.resource_attributes):
            for key, value in attrs.items():
                if is_entity_key(key) and isinstance(value, str | int):
                    found.setdefault(span.trace_id, {}).setdefault(key, set()).add(str(value))
    return {t: {k: sorted(v) for k, v in keys.items()} for t, keys in found.items()}


def report_for(paths: Sequence[Path]) -> dict[str, Any]:
    spans = [s for p in paths for s in load_spans(p)]
    return failure_report(frame_from_spans(spans), entities_of(spans), *EVERYTHING)


def sample(name: str) -> dict[str, Any]:
    return report_for([SAMPLES / name])


def with_entity(report: dict[str, Any], key: str, value: str) -> list[dict[str, Any]]:
    return [t for t in report["traces"] if value in t["entities"].get(key, [])]


# --------------------------------------------------------------------------- the shop


def test_happy_orders_and_background_traffic_are_ok() -> None:
    for name in ("01-happy-orders.json", "06-background-noise.json", "90-hostile-strings.json"):
        report = sample(name)
        assert report["traces"] == [], name
        assert report["summary"]["ok"] == report["summary"]["traces"] > 0


def test_payment_retry_is_retried() -> None:
    report = sample("02-payment-retry.json")
    assert report["summary"]["partial"] == 1
    assert report["summary"]["failed"] == 0
    (trace,) = report["traces"]
    assert trace["outcome"] == "partial"
    assert trace["pattern"] == "retried"
    assert trace["error_spans"] == 2
    assert "ORD-1002" in trace["entities"]["order.id"]
    assert "PAY-31062" in trace["entities"]["payment.id"]
    cause = trace["root_cause"]
    assert (cause["service"], cause["operation"]) == ("payment", "POST /v1/charges")
    assert cause["message"] == "503 Service Unavailable"
    assert cause["http_status_code"] == 503
    assert trace["root_service"] == "frontend"
    assert trace["root_operation"] == "POST /api/checkout"


def test_recommendation_fallback_is_degraded() -> None:
    report = sample("03-degraded-recommendations.json")
    (trace,) = report["traces"]
    assert trace["outcome"] == "partial"
    assert trace["pattern"] == "degraded"
    assert "ORD-1004" in trace["entities"]["order.id"]
    assert trace["error_spans"] == 3
    cause = trace["root_cause"]
    assert (cause["service"], cause["operation"]) == ("recommendation", "load user features")
    assert cause["message"] == "TimeoutError: feature store lookup timed out after 200 ms"
    assert trace["error_services"] == ["frontend", "recommendation"]


def test_checkout_deadlock_is_failed_with_the_database_as_root_cause() -> None:
    report = sample("04-checkout-deadlock.json")
    assert report["summary"]["failed"] == 1
    assert report["summary"]["partial"] == 0
    (trace,) = report["traces"]
    assert trace["outcome"] == "failed"
    assert trace["pattern"] == "failed"
    assert trace["error_spans"] == 4
    assert "CUST-47128" in trace["entities"]["customer.id"]
    cause = trace["root_cause"]
    assert (cause["service"], cause["operation"], cause["kind"]) == (
        "checkout",
        "INSERT orders",
        "CLIENT",
    )
    assert cause["message"] == "DeadlockDetected: deadlock detected"
    assert cause["exception_type"] == "psycopg.errors.DeadlockDetected"
    assert report["by_service"][0] == {
        "service": "checkout",
        "partial": 0,
        "failed": 1,
        "error_spans": 2,
    }


def test_unknown_order_404_blames_the_client_not_the_server() -> None:
    report = sample("05-unknown-order-404.json")
    assert report["summary"] == {
        "traces": 3,
        "ok": 1,
        "partial": 2,
        "failed": 0,
        "patterns": {"retried": 0, "degraded": 2, "failed_branch": 0, "failed": 0},
    }
    traces = with_entity(report, "order.id", "ORD-9999")
    assert len(traces) == 2
    assert with_entity(report, "order.id", "ORD-0987") == []
    for trace in traces:
        # The root SERVER span answered 404 (UNSET): the trace is partial, not failed.
        assert trace["outcome"] == "partial"
        assert trace["error_spans"] == 1
        cause = trace["root_cause"]
        assert (cause["service"], cause["kind"], cause["message"]) == (
            "frontend",
            "CLIENT",
            "404 Not Found",
        )
    assert [s["service"] for s in report["by_service"]] == ["frontend"]


def test_whole_incident_hour() -> None:
    report = report_for(sorted(SAMPLES.glob("*.json")))
    summary = report["summary"]
    assert (summary["partial"], summary["failed"]) == (4, 1)
    assert summary["ok"] == summary["traces"] - 5
    assert summary["patterns"] == {"retried": 1, "degraded": 3, "failed_branch": 0, "failed": 1}
    by_order = {
        value: t["pattern"] for t in report["traces"] for value in t["entities"].get("order.id", [])
    }
    assert by_order["ORD-1002"] == "retried"
    assert by_order["ORD-1004"] == "degraded"
    assert by_order["ORD-9999"] == "degraded"
    for ok_order in ("ORD-1001", "ORD-1003", "ORD-1666", "ORD-1006"):
        assert ok_order not in by_order
    # Failed checkout: the frontend never learnt the order id, but checkout did.
    failed = [t for t in report["traces"] if t["outcome"] == "failed"]
    assert [t["root_cause"]["operation"] for t in failed] == ["INSERT orders"]
    text = render_failures_table(report)
    assert "retried" in text and "degraded" in text and "INSERT orders" in text


def test_service_filter_on_the_incident() -> None:
    spans = [s for p in sorted(SAMPLES.glob("*.json")) for s in load_spans(p)]
    report = failure_report(frame_from_spans(spans), entities_of(spans), *EVERYTHING, "payment")
    # Traces through payment: the retry and the deadlock (payment charged, then voided).
    assert {t["pattern"] for t in report["traces"]} == {"retried", "failed"}


# --------------------------------------------------------------------------- real captures


@pytest.mark.parametrize(
    ("name", "trace_id"),
    [
        (
            "jaegertracing-jaeger-hotrod-n_plus_one_full_concurrent.json",
            "1a4e4a7b270e9f2a0f716e3ee115218a",
        ),
        (
            "jaegertracing-jaeger-ui-hotrod-v3-getTrace-response.json",
            "2ea75461946a7dd10f2c15ab36a076cb",
        ),
    ],
)
def test_hotrod_redis_timeouts_are_retried(name: str, trace_id: str) -> None:
    report = report_for([REAL / name])
    (trace,) = report["traces"]
    assert trace["trace_id"] == trace_id
    assert trace["outcome"] == "partial"
    # Every GetDriver that timed out is followed by a successful GetDriver from the
    # same driver span (HotROD logs "Retrying GetDriver after error").
    assert trace["pattern"] == "retried"
    assert trace["error_spans"] == 3
    assert trace["root_service"] == "frontend"
    assert trace["root_operation"] == "GET /dispatch"
    cause = trace["root_cause"]
    assert (cause["service"], cause["operation"]) == ("redis-manual", "GetDriver")
    assert cause["message"] == "An error occurred"
    assert cause["exception_message"] == "redis timeout"


def test_hotrod_root_cause_is_the_first_timeout() -> None:
    report = report_for([REAL / "jaegertracing-jaeger-hotrod-n_plus_one_full_concurrent.json"])
    assert report["traces"][0]["root_cause"]["span_id"] == "d61e8256a1209b32"


def test_otel_demo_masked_timeout() -> None:
    report = report_for([REAL / "jaegertracing-jaeger-otel-demo-error_timeout_masked.json"])
    (trace,) = report["traces"]
    assert trace["outcome"] == "partial"  # the load generator's root span is UNSET
    assert trace["pattern"] == "degraded"
    assert trace["error_spans"] == 1
    cause = trace["root_cause"]
    # The span below the proxy's error is fine, so the proxy span is the root cause.
    assert cause["span_id"] == "247a43490cfe60cd"
    assert (cause["service"], cause["operation"]) == ("frontend-proxy", "POST")
    assert cause["message"] is None
    assert cause["http_status_code"] == 504
    assert "HTTP 504" in render_failures_table(report)


def test_rootless_official_example_is_counted_ok() -> None:
    spans = load_spans(REAL / "otlp-proto-example-trace.json")
    frame = frame_from_spans(spans)
    assert frame.filter(pl.col("parent_span_id").is_null()).height == 0
    report = failure_report(frame, {}, *EVERYTHING)
    assert report["summary"]["traces"] == 1
    assert report["summary"]["ok"] == 1
