"""The partial-failure report (analyzer.failures): error semantics, classification, root
cause, range and service filters, the JSON shape and the terminal table.

Trees are built by hand with :func:`frame`; ``S(...)`` describes one span with only the
fields a case needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyzer.failures import (
    ByService,
    FailureReport,
    FailureSummary,
    FailureTrace,
    RootCause,
    error_expr,
    failing_trace_ids,
    failure_report,
    render_failures_table,
    render_table,
)
from spanstore.frame import FRAME_SCHEMA

MS = 1_000_000
T0 = 1_795_600_800_000_000_000  # 2026-11-25T10:00:00Z
TRACE = "0af7651916cd43dd8448eb211c80319c"


@dataclass
class S:
    span_id: str
    parent: str | None = None
    service: str = "frontend"
    name: str = "op"
    kind: str = "INTERNAL"
    start_ms: float = 0
    dur_ms: float = 10
    status: str = "UNSET"
    message: str = ""
    exception_type: str | None = None
    exception_message: str | None = None
    http: int | None = None
    trace_id: str = TRACE
    extra: dict[str, Any] = field(default_factory=dict)


def sid(text: str) -> str:
    """A 16-hex span id from a short label, so trees read as a, b, c in the tests."""
    return text.encode().hex().rjust(16, "0")[-16:]


def frame(spans: Iterable[S]) -> pl.DataFrame:
    rows: dict[str, list[Any]] = {name: [] for name in FRAME_SCHEMA}
    for s in spans:
        start = T0 + int(s.start_ms * MS)
        end = start + int(s.dur_ms * MS)
        values: dict[str, Any] = {
            "trace_id": s.trace_id,
            "span_id": sid(s.span_id),
            "parent_span_id": sid(s.parent) if s.parent else None,
            "service_name": s.service,
            "name": s.name,
            "kind": s.kind,
            "start_unix_nano": start,
            "end_unix_nano": end,
            "duration_ns": end - start,
            "status_code": s.status,
            "status_message": s.message,
            "exception_type": s.exception_type,
            "exception_message": s.exception_message,
            "http_status_code": s.http,
            **s.extra,
        }
        for name in FRAME_SCHEMA:
            rows[name].append(values.get(name))
    return pl.DataFrame(rows, schema=FRAME_SCHEMA)


def report_of(spans: Iterable[S], **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("entities", {})
    kwargs.setdefault("from_unix_nano", T0 - 3_600_000 * MS)
    kwargs.setdefault("to_unix_nano", T0 + 3_600_000 * MS)
    return failure_report(frame(spans), **kwargs)


def only_trace(spans: Iterable[S]) -> dict[str, Any]:
    report = report_of(spans)
    assert len(report["traces"]) == 1, report
    trace: dict[str, Any] = report["traces"][0]
    return trace


# --------------------------------------------------------------------------- error semantics


@pytest.mark.parametrize(
    ("span", "is_error"),
    [
        (S("a", status="ERROR"), True),
        (S("a", status="OK", http=500, kind="SERVER"), False),  # OK is the app's last word
        (S("a", status="UNSET"), False),
        # 4xx: the client's error, so only the CLIENT span is one.
        (S("a", kind="SERVER", http=404), False),
        (S("a", kind="CLIENT", http=404), True),
        (S("a", kind="CLIENT", http=503), True),
        # A SERVER 5xx left UNSET by an old instrumentation is still a failure.
        (S("a", kind="SERVER", http=503), True),
        (S("a", kind="SERVER", http=200), False),
        (S("a", kind="INTERNAL", http=500), False),
        # The stored status wins over the code: an ERROR server span with a 4xx stays.
        (S("a", kind="SERVER", http=409, status="ERROR", message="conflict"), True),
        # An exception that was handled does not make a span an error.
        (S("a", exception_type="ValueError", exception_message="x"), False),
        # Cancellations are the caller's choice, not failures.
        (S("a", status="ERROR", exception_type="asyncio.exceptions.CancelledError"), False),
        (S("a", status="ERROR", exception_type="System.OperationCanceledException"), False),
        (S("a", status="ERROR", message="context canceled"), False),
        (
            S("a", status="ERROR", message="rpc error: code = Canceled desc = context canceled"),
            False,
        ),
        (S("a", status="ERROR", message="StatusCode.CANCELLED"), False),
        (S("a", status="ERROR", message="CANCELLED: call cancelled by client"), False),
        (S("a", status="ERROR", kind="SERVER", http=499), False),
        # ... but a business message that merely mentions a cancelled order is an error.
        (S("a", status="ERROR", message="payment declined: order cancelled"), True),
    ],
)
def test_error_semantics(span: S, is_error: bool) -> None:
    assert frame([span]).select(error_expr())[0, 0] is is_error


# --------------------------------------------------------------------------- classification


def test_trace_without_errors_is_only_counted() -> None:
    report = report_of([S("root", kind="SERVER"), S("c", "root", kind="CLIENT")])
    assert report["summary"] == {
        "traces": 1,
        "ok": 1,
        "partial": 0,
        "failed": 0,
        "patterns": {"retried": 0, "degraded": 0, "failed_branch": 0, "failed": 0},
    }
    assert report["traces"] == []
    assert report["by_service"] == []


def retry_tree(final_status: str = "UNSET") -> list[S]:
    """payment calls payprovider three times; the first two attempts get a 503."""
    return [
        S("root", kind="SERVER", service="payment", name="POST /api/payments", dur_ms=400),
        S("charge", "root", service="payment", name="charge card", start_ms=1, dur_ms=390),
        *(
            S(
                f"try{i}",
                "charge",
                kind="CLIENT",
                service="payment",
                name="POST /v1/charges",
                start_ms=2 + i * 100,
                dur_ms=50,
                status="ERROR" if i < 2 else final_status,
                message="503 Service Unavailable" if i < 2 else "",
                http=503 if i < 2 else 200,
                extra={"peer_service": "payprovider"},
            )
            for i in range(3)
        ),
    ]


def test_retried_call_that_recovered() -> None:
    trace = only_trace(retry_tree())
    assert trace["outcome"] == "partial"
    assert trace["pattern"] == "retried"
    assert trace["error_spans"] == 2
    # Two equally deep failed attempts: the earlier one is the root cause.
    assert trace["root_cause"]["span_id"] == sid("try0")
    assert trace["root_cause"]["message"] == "503 Service Unavailable"
    assert trace["root_cause"]["service"] == "payment"
    assert trace["root_cause"]["operation"] == "POST /v1/charges"


def test_retry_that_never_succeeded_is_degraded() -> None:
    trace = only_trace(retry_tree(final_status="ERROR"))
    assert trace["pattern"] == "degraded"
    assert trace["error_spans"] == 3


def test_retry_to_a_different_peer_is_not_the_same_call() -> None:
    spans = retry_tree()
    spans[-1].extra = {"peer_service": "backup-provider"}
    assert only_trace(spans)["pattern"] == "degraded"


def test_error_swallowed_by_fallback_is_degraded() -> None:
    # frontend -> recommendation fails (client and server ERROR, timeout deep inside),
    # the frontend serves cached recommendations and answers 200.
    trace = only_trace(
        [
            S("root", kind="SERVER", name="GET /confirmation", http=200, dur_ms=300),
            S("order", "root", kind="CLIENT", name="GetOrder", start_ms=1, dur_ms=20),
            S(
                "recs",
                "root",
                kind="CLIENT",
                name="ListRecommendations",
                start_ms=1,
                dur_ms=210,
                status="ERROR",
                message="DEADLINE_EXCEEDED",
            ),
            S(
                "recs-srv",
                "recs",
                kind="SERVER",
                service="recommendation",
                name="ListRecommendations",
                start_ms=2,
                dur_ms=205,
                status="ERROR",
                message="TimeoutError",
            ),
            S(
                "features",
                "recs-srv",
                service="recommendation",
                name="load user features",
                start_ms=3,
                dur_ms=200,
                status="ERROR",
                message="feature store timed out",
            ),
            S("fallback", "root", name="recommendations fallback", start_ms=215, dur_ms=5),
        ]
    )
    assert trace["outcome"] == "partial"
    assert trace["pattern"] == "degraded"
    assert trace["error_spans"] == 3
    assert trace["root_cause"]["span_id"] == sid("features")
    assert trace["root_cause"]["message"] == "feature store timed out"
    assert trace["error_services"] == ["frontend", "recommendation"]


def fan_out(statuses: list[str], overlap: bool = True) -> list[S]:
    """frontend fetches N prices from pricing, in parallel or one after another."""
    return [
        S("root", kind="SERVER", name="GET /basket", dur_ms=500),
        *(
            S(
                f"p{i}",
                "root",
                kind="CLIENT",
                name="GetPrice",
                start_ms=1 if overlap else 1 + 60 * i,
                dur_ms=50,
                status=status,
                message="unavailable" if status == "ERROR" else "",
                extra={"rpc_service": "Pricing", "rpc_method": "GetPrice"},
            )
            for i, status in enumerate(statuses)
        ),
    ]


def test_parallel_fan_out_with_some_branches_failed() -> None:
    trace = only_trace(fan_out(["UNSET", "ERROR", "UNSET", "ERROR"]))
    assert trace["pattern"] == "failed_branch"
    assert trace["root_cause"]["span_id"] == sid("p1")  # same depth, same start: lowest id


def test_sequential_fan_out_where_the_last_item_failed() -> None:
    # An N+1 loop whose last call failed: earlier branches succeeded, none came later.
    assert only_trace(fan_out(["UNSET", "UNSET", "ERROR"], overlap=False))["pattern"] == (
        "failed_branch"
    )


def test_sequential_failure_followed_by_success_reads_as_retry() -> None:
    assert only_trace(fan_out(["ERROR", "UNSET"], overlap=False))["pattern"] == "retried"


def test_fan_out_where_every_branch_failed_is_degraded() -> None:
    assert only_trace(fan_out(["ERROR", "ERROR"]))["pattern"] == "degraded"


def test_hedged_request_reads_as_failed_branch() -> None:
    # The second attempt starts before the first has failed: a fan-out of one call.
    spans = fan_out(["ERROR", "UNSET"], overlap=False)
    spans[2].start_ms = 20
    assert only_trace(spans)["pattern"] == "failed_branch"


def test_worst_pattern_wins() -> None:
    # One retried call and one degraded call in the same trace: degraded.
    spans = [
        *retry_tree(),
        S(
            "x",
            "root",
            kind="CLIENT",
            service="payment",
            name="GET fraud-score",
            start_ms=350,
            dur_ms=5,
            status="ERROR",
            message="fraud service down",
        ),
    ]
    trace = only_trace(spans)
    assert trace["pattern"] == "degraded"
    # The root cause is the degraded call, not the deeper but recovered attempts.
    assert trace["root_cause"]["span_id"] == sid("x")


def checkout_deadlock(extra: Iterable[S] = ()) -> list[S]:
    return [
        S(
            "root",
            kind="SERVER",
            name="POST /api/checkout",
            status="ERROR",
            http=502,
            message="UpstreamError: checkout returned 500",
            dur_ms=300,
        ),
        S(
            "cli",
            "root",
            kind="CLIENT",
            name="POST /api/orders",
            status="ERROR",
            http=500,
            message="500 Internal Server Error",
            start_ms=1,
            dur_ms=290,
        ),
        S(
            "srv",
            "cli",
            kind="SERVER",
            service="checkout",
            name="POST /api/orders",
            status="ERROR",
            http=500,
            message="DeadlockDetected",
            start_ms=2,
            dur_ms=280,
        ),
        S(
            "pay",
            "srv",
            kind="CLIENT",
            service="checkout",
            name="POST /api/payments",
            start_ms=10,
            dur_ms=100,
            http=201,
        ),
        S(
            "insert",
            "srv",
            kind="CLIENT",
            service="checkout",
            name="INSERT orders",
            start_ms=120,
            dur_ms=40,
            status="ERROR",
            exception_type="DeadlockDetected",
            exception_message="deadlock detected",
            extra={"db_system": "postgresql"},
        ),
        *extra,
    ]


def test_hard_failure_root_cause_is_deepest_error_on_the_path() -> None:
    trace = only_trace(checkout_deadlock())
    assert trace["outcome"] == "failed"
    assert trace["pattern"] == "failed"
    assert trace["error_spans"] == 4
    cause = trace["root_cause"]
    assert cause["span_id"] == sid("insert")
    assert cause["service"] == "checkout"
    assert cause["operation"] == "INSERT orders"
    # No status message: the exception message stands in.
    assert cause["message"] == "deadlock detected"
    assert cause["exception_type"] == "DeadlockDetected"


def test_failed_trace_ignores_deeper_recovered_errors_elsewhere() -> None:
    # A retried cache read deep under the payment call is not why checkout failed.
    trace = only_trace(
        checkout_deadlock(
            [
                S("pay-srv", "pay", kind="SERVER", service="payment", start_ms=11, dur_ms=90),
                S(
                    "cache1",
                    "pay-srv",
                    kind="CLIENT",
                    service="payment",
                    name="GET",
                    start_ms=12,
                    dur_ms=5,
                    status="ERROR",
                    message="redis timeout",
                    extra={"db_system": "redis"},
                ),
                S(
                    "cache2",
                    "pay-srv",
                    kind="CLIENT",
                    service="payment",
                    name="GET",
                    start_ms=20,
                    dur_ms=5,
                    extra={"db_system": "redis"},
                ),
            ]
        )
    )
    assert trace["error_spans"] == 5
    assert trace["root_cause"]["span_id"] == sid("insert")


def test_error_whose_children_are_fine_is_its_own_root_cause() -> None:
    # The OTel demo's masked timeout: the proxy span failed, the span below it is OK.
    trace = only_trace(
        [
            S("root", kind="CLIENT", service="load-generator", name="user_checkout", dur_ms=15_100),
            S(
                "proxy",
                "root",
                kind="SERVER",
                service="frontend-proxy",
                name="POST",
                status="ERROR",
                http=504,
                start_ms=1,
                dur_ms=15_001,
            ),
            S(
                "egress",
                "proxy",
                kind="CLIENT",
                service="frontend-proxy",
                start_ms=2,
                dur_ms=15_000,
                http=0,
            ),
            S(
                "front",
                "egress",
                kind="SERVER",
                service="frontend",
                name="POST",
                start_ms=3,
                dur_ms=14_999,
                http=200,
            ),
        ]
    )
    assert trace["outcome"] == "partial"
    assert trace["pattern"] == "degraded"
    assert trace["root_cause"]["span_id"] == sid("proxy")
    assert trace["root_cause"]["message"] is None  # no status message, no exception
    assert trace["root_cause"]["http_status_code"] == 504


def test_error_below_a_span_that_absorbed_it_does_not_explain_the_parent() -> None:
    # checkout failed; below it a cache lookup failed but its caller fell back and was
    # fine, so checkout's own failure is not explained by anything beneath it.
    trace = only_trace(
        [
            S("root", kind="SERVER", status="ERROR", message="validation failed", dur_ms=50),
            S("lookup", "root", name="lookup with fallback", start_ms=1, dur_ms=20),
            S(
                "cache",
                "lookup",
                kind="CLIENT",
                name="GET",
                start_ms=2,
                dur_ms=5,
                status="ERROR",
                message="cache miss storm",
            ),
        ]
    )
    assert trace["outcome"] == "failed"
    assert trace["root_cause"]["span_id"] == sid("root")
    assert trace["root_cause"]["message"] == "validation failed"


def test_parallel_error_branches_deepest_wins_then_earliest() -> None:
    spans = [
        S("root", kind="SERVER", status="ERROR", dur_ms=100),
        S("a", "root", kind="CLIENT", name="A", start_ms=5, dur_ms=50, status="ERROR"),
        S("b", "root", kind="CLIENT", name="B", start_ms=1, dur_ms=50, status="ERROR"),
        S(
            "a2",
            "a",
            kind="SERVER",
            service="svc-a",
            name="A",
            start_ms=6,
            dur_ms=40,
            status="ERROR",
            message="a failed",
        ),
    ]
    assert only_trace(spans)["root_cause"]["span_id"] == sid("a2")
    # Equal depth: the earlier start wins.
    spans[-1].parent = "root"
    spans[-1].start_ms = 3
    assert only_trace(spans)["root_cause"]["span_id"] == sid("b")


def test_server_4xx_is_not_blamed() -> None:
    # The 404 case: the CLIENT span is the error, the server that answered 404 is not.
    trace = only_trace(
        [
            S("root", kind="SERVER", name="GET /api/orders/{orderId}", http=404),
            S(
                "cli",
                "root",
                kind="CLIENT",
                name="GET /api/orders/{orderId}",
                status="ERROR",
                message="404 Not Found",
                http=404,
                start_ms=1,
                dur_ms=5,
            ),
            S(
                "srv",
                "cli",
                kind="SERVER",
                service="checkout",
                name="GET /api/orders/{orderId}",
                http=404,
                start_ms=2,
                dur_ms=3,
            ),
        ]
    )
    assert trace["outcome"] == "partial"
    assert trace["error_spans"] == 1
    assert trace["root_cause"]["span_id"] == sid("cli")
    assert trace["root_cause"]["service"] == "frontend"
    assert trace["error_services"] == ["frontend"]


def test_root_error_alone_is_the_cause() -> None:
    trace = only_trace([S("root", kind="SERVER", status="ERROR", message="boom")])
    assert trace["outcome"] == "failed"
    assert trace["root_cause"]["span_id"] == sid("root")
    assert trace["error_spans"] == 1


# --------------------------------------------------------------------------- range, roots


def test_range_is_decided_by_the_root_start() -> None:
    spans = [
        S("root", kind="SERVER", start_ms=-10, dur_ms=100, trace_id="1" * 32),
        S("child", "root", start_ms=5, status="ERROR", trace_id="1" * 32),
        S("root", kind="SERVER", start_ms=0, status="ERROR", trace_id="2" * 32),
        S("root", kind="SERVER", start_ms=1000, status="ERROR", trace_id="3" * 32),
    ]
    report = report_of(spans, from_unix_nano=T0, to_unix_nano=T0 + 1000 * MS)
    # Trace 1 started before the range, trace 3 exactly at its exclusive end.
    assert [t["trace_id"] for t in report["traces"]] == ["2" * 32]
    assert report["summary"]["traces"] == 1
    assert report["from_unix_nano"] == T0
    assert report["to_unix_nano"] == T0 + 1000 * MS


def test_trace_without_a_stored_root_uses_its_earliest_span() -> None:
    spans = [
        S("late", "missing", start_ms=20, status="ERROR", service="b", name="late"),
        S("early", "missing", start_ms=10, service="a", name="early", dur_ms=30),
    ]
    trace = only_trace(spans)
    assert trace["root_service"] == "a"
    assert trace["root_operation"] == "early"
    assert trace["start_unix_nano"] == T0 + 10 * MS
    assert trace["duration_ns"] == 30 * MS
    assert trace["outcome"] == "partial"
    assert trace["root_cause"]["span_id"] == sid("late")


def test_orphans_and_parent_cycles_do_not_hang_or_crash() -> None:
    spans = [
        S("root", kind="SERVER", dur_ms=100),
        S("x", "y", start_ms=1, status="ERROR", message="x"),
        S("y", "x", start_ms=2, status="ERROR", message="y"),
        S("z", "z", start_ms=3),  # its own parent
    ]
    trace = only_trace(spans)
    assert trace["outcome"] == "partial"
    assert trace["error_spans"] == 2
    assert trace["root_cause"]["span_id"] in {sid("x"), sid("y")}
    # An error hanging below the cycle, and a span id used twice.
    spans += [
        S("w", "x", start_ms=4, status="ERROR", message="w"),
        S("w", "root", start_ms=5, name="duplicate"),
    ]
    trace = only_trace(spans)
    assert trace["error_spans"] == 3
    assert trace["pattern"] == "degraded"


def test_all_zero_parent_id_counts_as_root() -> None:
    f = frame([S("root", kind="SERVER", status="ERROR"), S("c", "root", start_ms=-5)])
    f = f.with_columns(
        pl.when(pl.col("parent_span_id").is_null())
        .then(pl.lit("0" * 16))
        .otherwise(pl.col("parent_span_id"))
        .alias("parent_span_id")
    )
    report = failure_report(f, {}, T0 - 10**12, T0 + 10**12)
    assert report["traces"][0]["root_span_id"] == sid("root")
    assert report["traces"][0]["outcome"] == "failed"


def test_service_filter_keeps_traces_touching_the_service() -> None:
    spans = [
        *checkout_deadlock(),
        S("root", kind="SERVER", status="ERROR", service="cart", trace_id="2" * 32),
        S("root", kind="SERVER", service="checkout", trace_id="3" * 32),
    ]
    report = report_of(spans, service="checkout")
    assert [t["trace_id"] for t in report["traces"]] == [TRACE]
    assert report["summary"]["traces"] == 2
    assert report["summary"]["ok"] == 1
    assert report["service"] == "checkout"
    assert failing_trace_ids(frame(spans), T0 - 10**12, T0 + 10**12) == sorted([TRACE, "2" * 32])


def test_entities_and_per_service_summary() -> None:
    spans = [
        *retry_tree(),
        *(
            S(
                s.span_id,
                s.parent,
                service=s.service,
                name=s.name,
                kind=s.kind,
                start_ms=s.start_ms + 1000,
                dur_ms=s.dur_ms,
                status=s.status,
                message=s.message,
                exception_type=s.exception_type,
                exception_message=s.exception_message,
                http=s.http,
                trace_id="f" * 32,
                extra=s.extra,
            )
            for s in checkout_deadlock()
        ),
    ]
    entities = {
        TRACE: {"payment.id": ["PAY-1"], "order.id": ["ORD-1002"]},
        "f" * 32: {"order.id": ["ORD-1005"]},
        "unrelated": {"order.id": ["ORD-0"]},
    }
    report = report_of(spans, entities=entities)
    by_id = {t["trace_id"]: t for t in report["traces"]}
    assert by_id[TRACE]["entities"] == {"order.id": ["ORD-1002"], "payment.id": ["PAY-1"]}
    assert by_id["f" * 32]["entities"] == {"order.id": ["ORD-1005"]}
    assert report["summary"]["partial"] == 1
    assert report["summary"]["failed"] == 1
    assert report["summary"]["patterns"]["retried"] == 1
    assert report["summary"]["patterns"]["failed"] == 1
    assert report["by_service"] == [
        {"service": "checkout", "partial": 0, "failed": 1, "error_spans": 2},
        {"service": "payment", "partial": 1, "failed": 0, "error_spans": 2},
        {"service": "frontend", "partial": 0, "failed": 0, "error_spans": 2},
    ]
    # Oldest first.
    assert [t["trace_id"] for t in report["traces"]] == [TRACE, "f" * 32]


def test_json_shape_matches_the_spec() -> None:
    report = report_of(checkout_deadlock())
    json.dumps(report)  # plain JSON types only
    assert {"from_unix_nano", "to_unix_nano", "summary", "traces"} <= report.keys()
    assert {"traces", "ok", "partial", "failed"} <= report["summary"].keys()
    trace = report["traces"][0]
    assert {
        "trace_id",
        "root_service",
        "root_operation",
        "start_unix_nano",
        "duration_ns",
        "outcome",
        "pattern",
        "root_cause",
        "error_spans",
        "entities",
    } <= trace.keys()
    assert {"service", "operation", "span_id", "message"} <= trace["root_cause"].keys()
    assert re.fullmatch(r"[0-9a-f]{32}", trace["trace_id"])
    assert re.fullmatch(r"[0-9a-f]{16}", trace["root_cause"]["span_id"])
    assert isinstance(trace["start_unix_nano"], int)
    assert isinstance(trace["duration_ns"], int)


def test_keys_match_the_declared_shape() -> None:
    report = report_of([*checkout_deadlock(), *retry_tree()])
    assert report.keys() == FailureReport.__required_keys__
    assert report["summary"].keys() == FailureSummary.__required_keys__
    for trace in report["traces"]:
        assert trace.keys() == FailureTrace.__required_keys__
        assert trace["root_cause"].keys() == RootCause.__required_keys__
    for row in report["by_service"]:
        assert row.keys() == ByService.__required_keys__


def test_frame_missing_optional_columns_still_works() -> None:
    f = frame(checkout_deadlock()).drop(["http_status_code", "db_system", "peer_service"])
    report = failure_report(f, {}, T0 - 10**12, T0 + 10**12)
    assert report["traces"][0]["root_cause"]["span_id"] == sid("insert")


def test_empty_frame() -> None:
    report = failure_report(pl.DataFrame(schema=FRAME_SCHEMA), {}, 0, 10)
    assert report["summary"]["traces"] == 0
    assert report["traces"] == []
    assert "no partial or failed traces" in render_failures_table(report)


# --------------------------------------------------------------------------- text output


HOSTILE = "\x1b[31mred\x1b[0m <img src=x>\n\u202egnp | 注文 ✓"


def test_table_is_aligned_and_escapes_hostile_strings() -> None:
    spans = checkout_deadlock()
    spans[-1].name = HOSTILE
    spans[-1].exception_message = "line one\nline two\r\x07"
    report = report_of(spans, entities={TRACE: {"order.id": ["ORD-1666\n"]}})
    text = render_failures_table(report)
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text and "\r" not in text
    assert "\\x1b[31mred" in text
    assert "<img src=x>\\n\\u202" in text  # escaped, then cut to the column width
    assert "line one\\nline two\\r\\x07" in text
    assert "order.id=ORD-1666\\n" in text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("START"))
    # Each column starts at the same display position on every row of the table.
    dash_line = lines[header + 1]
    starts = [m.start() for m in re.finditer(r"(?<=  )-", dash_line)]
    row = lines[header + 2]
    assert row.startswith("2026-11-25T10:00:00.000Z")
    for pos in starts[:6]:  # up to the (wide-character) root-cause column
        assert row[pos - 2 : pos] == "  "
    assert "failed" in row and TRACE in row
    assert "SERVICE" in text and "CAUSED FAILED" in text


def test_render_table_counts_wide_characters_twice() -> None:
    text = render_table(("A", "B"), [("注文", 1), ("ab", 22)], right=frozenset({1}))
    lines = text.splitlines()
    assert lines[0] == "A      B"
    assert lines[2] == "注文   1"
    assert lines[3] == "ab    22"


def test_render_table_truncates_long_cells() -> None:
    text = render_table(("A",), [("x" * 100,)], max_width=10)
    assert text.splitlines()[2] == "x" * 9 + "…"


def test_table_limit_says_how_many_were_left_out() -> None:
    spans = [
        S("root", kind="SERVER", status="ERROR", start_ms=i, trace_id=f"{i:032x}") for i in range(5)
    ]
    text = render_failures_table(report_of(spans), limit=2)
    assert "... 3 more traces" in text


# --------------------------------------------------------------------------- properties

CALL_FIELDS = ("service", "kind", "name")


def reference(spans: list[S]) -> tuple[str, str] | None:
    """(pattern, root-cause label) by the documented rules, one span at a time.

    The report computes the same thing with vectorised joins; this slow oracle is a
    direct reading of docs/reports.md for acyclic trees, orphans included.
    """
    flags = frame(spans).select(error_expr()).to_series().to_list()
    err = {s.span_id: flag for s, flag in zip(spans, flags, strict=True)}
    if not any(err.values()):
        return None
    by_id = {s.span_id: s for s in spans}
    root = min((s for s in spans if s.parent is None), key=lambda s: (s.start_ms, sid(s.span_id)))

    def parent(s: S) -> S | None:
        return by_id.get(s.parent) if s is not root and s.parent else None

    def depth(s: S) -> int:
        p = parent(s)
        return 0 if s is root else 1 if p is None else depth(p) + 1

    def end(s: S) -> float:
        return s.start_ms + s.dur_ms

    def call(s: S) -> tuple[object, ...]:
        return (s.parent, *(getattr(s, f) for f in CALL_FIELDS))

    errors = [s for s in spans if err[s.span_id]]
    tops = [s for s in errors if s is not root and ((p := parent(s)) is None or not err[p.span_id])]
    severity = {"retried": 1, "failed_branch": 2, "degraded": 3}
    kind: dict[str, str] = {}
    for top in tops:
        fine = [
            x
            for x in spans
            if x is not top and x is not root and not err[x.span_id] and call(x) == call(top)
        ]
        if any(x.start_ms >= end(top) for x in fine):
            kind[top.span_id] = "retried"
        elif fine:
            kind[top.span_id] = "failed_branch"
        else:
            kind[top.span_id] = "degraded"
    if err[root.span_id]:
        pattern = "failed"
        decisive = {root.span_id}
    else:
        pattern = max(kind.values(), key=severity.__getitem__)
        decisive = {t for t, k in kind.items() if k == pattern}

    def chain_top(s: S) -> str:
        p = parent(s)
        return s.span_id if p is None or not err[p.span_id] else chain_top(p)

    def explained(s: S) -> bool:
        return any(err[c.span_id] for c in spans if parent(c) is s)

    candidates = [s for s in errors if not explained(s) and chain_top(s) in decisive]
    cause = min(candidates, key=lambda s: (-depth(s), s.start_ms, sid(s.span_id)))
    return pattern, cause.span_id


@st.composite
def random_trace(draw: st.DrawFn) -> list[S]:
    n = draw(st.integers(min_value=1, max_value=25))
    spans = [
        S(
            "s0",
            kind="SERVER",
            status=draw(st.sampled_from(["UNSET", "ERROR", "OK"])),
            start_ms=draw(st.integers(min_value=0, max_value=5)),
        )
    ]
    for i in range(1, n):
        # -1: an orphan whose parent was never stored.
        parent = draw(st.integers(min_value=-1, max_value=i - 1))
        spans.append(
            S(
                f"s{i}",
                f"s{parent}" if parent >= 0 else "missing",
                service=draw(st.sampled_from(["a", "b"])),
                name=draw(st.sampled_from(["x", "y"])),
                kind=draw(st.sampled_from(["CLIENT", "SERVER", "INTERNAL"])),
                start_ms=draw(st.integers(min_value=0, max_value=50)),
                dur_ms=draw(st.integers(min_value=0, max_value=50)),
                status=draw(st.sampled_from(["UNSET", "UNSET", "ERROR", "OK"])),
                http=draw(st.sampled_from([None, 200, 404, 503])),
            )
        )
    return spans


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(random_trace())
def test_report_agrees_with_the_reference_reading(spans: list[S]) -> None:
    f = frame(spans)
    report = failure_report(f, {}, T0 - 10**12, T0 + 10**12)
    summary = report["summary"]
    assert summary["traces"] == 1
    assert summary["ok"] + summary["partial"] + summary["failed"] == 1
    expected = reference(spans)
    if expected is None:
        assert report["traces"] == []
        return
    (trace,) = report["traces"]
    errors = set(f.filter(error_expr())["span_id"].to_list())
    assert trace["error_spans"] == len(errors)
    assert (trace["outcome"] == "failed") == (sid("s0") in errors)
    assert (trace["pattern"], trace["root_cause"]["span_id"]) == (
        expected[0],
        sid(expected[1]),
    )
    # No child of the root cause is an error: its own children do not explain it.
    children = set(f.filter(pl.col("parent_span_id") == sid(expected[1]))["span_id"].to_list())
    assert not children & errors
