"""OTLP requests cut into bounded batches, for spans and log records alike (replay, the
query API client's log records)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from analyzer.otlp_batches import LOGS, SPANS, RequestBuilder, item_count, split_logs, split_spans

#: Per resource, per scope: how many items.
Layout = list[list[int]]
layouts = st.lists(st.lists(st.integers(0, 9), max_size=3), max_size=3)


def spans_request(layout: Layout) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    for r, scopes in enumerate(layout):
        resource = request.resource_spans.add(schema_url=f"resource-{r}")
        resource.resource.attributes.add(key="service.name").value.string_value = f"svc-{r}"
        for s, count in enumerate(scopes):
            scope = resource.scope_spans.add(schema_url=f"scope-{r}-{s}")
            scope.scope.name = f"lib-{r}-{s}"
            for i in range(count):
                scope.spans.add(name=f"{r}/{s}/{i}")
    return request


def logs_request(layout: Layout) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    for r, scopes in enumerate(layout):
        resource = request.resource_logs.add(schema_url=f"resource-{r}")
        resource.resource.attributes.add(key="service.name").value.string_value = f"svc-{r}"
        for s, count in enumerate(scopes):
            scope = resource.scope_logs.add(schema_url=f"scope-{r}-{s}")
            scope.scope.name = f"lib-{r}-{s}"
            for i in range(count):
                scope.log_records.add(severity_text=f"{r}/{s}/{i}")
    return request


def placed_spans(request: ExportTraceServiceRequest) -> list[tuple[str, str, str, str, str]]:
    """Each span with the resource and scope it sits under, in order."""
    return [
        (
            rs.schema_url,
            rs.resource.attributes[0].value.string_value,
            ss.schema_url,
            ss.scope.name,
            span.name,
        )
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


def placed_records(request: ExportLogsServiceRequest) -> list[tuple[str, str, str, str, str]]:
    return [
        (
            rl.schema_url,
            rl.resource.attributes[0].value.string_value,
            sl.schema_url,
            sl.scope.name,
            record.severity_text,
        )
        for rl in request.resource_logs
        for sl in rl.scope_logs
        for record in sl.log_records
    ]


@settings(max_examples=200, deadline=None)
@given(layout=layouts, max_items=st.integers(1, 12))
def test_spans_are_cut_in_order_under_their_resource_and_scope(
    layout: Layout, max_items: int
) -> None:
    request = spans_request(layout)
    parts = list(split_spans(request, max_items))
    total = sum(sum(scopes) for scopes in layout)
    if total <= max_items:
        assert parts == [request]  # the request itself, even an empty one
        return
    assert [item_count(p, SPANS) for p in parts[:-1]] == [max_items] * (len(parts) - 1)
    assert 0 < item_count(parts[-1], SPANS) <= max_items
    assert [s for p in parts for s in placed_spans(p)] == placed_spans(request)
    for part in parts:  # a scope is copied only where it carries spans
        assert all(ss.spans for rs in part.resource_spans for ss in rs.scope_spans)


@settings(max_examples=200, deadline=None)
@given(layout=layouts, max_items=st.integers(1, 12))
def test_log_records_are_cut_alike_and_an_empty_request_gives_none(
    layout: Layout, max_items: int
) -> None:
    request = logs_request(layout)
    parts = list(split_logs(request, max_items))
    total = sum(sum(scopes) for scopes in layout)
    assert sum(item_count(p, LOGS) for p in parts) == total
    assert len(parts) == -(-total // max_items)  # ceil: full parts, then the rest
    assert [r for p in parts for r in placed_records(p)] == placed_records(request)


def test_no_limit_below_one_keeps_the_request_whole() -> None:
    request = spans_request([[5, 3]])
    assert list(split_spans(request, 0)) == [request]
    assert list(split_logs(logs_request([[4]]), 0)) == [logs_request([[4]])]


def test_the_builder_copies_each_resource_and_scope_pair_once() -> None:
    source = spans_request([[2, 1], [2]])
    builder: RequestBuilder[Any] = RequestBuilder(SPANS)
    items = [
        (rs, ss, span) for rs in source.resource_spans for ss in rs.scope_spans for span in ss.spans
    ]
    for rs, ss, span in items[::2] + items[1::2]:  # interleaved: pairs come back
        builder.add(rs, ss, span)
    assert builder.size == 5
    # One resource entry per (resource, scope) pair, in the order pairs first appear.
    built = builder.request
    assert [
        (rs.schema_url, [ss.scope.name for ss in rs.scope_spans]) for rs in built.resource_spans
    ] == [
        ("resource-0", ["lib-0-0"]),
        ("resource-0", ["lib-0-1"]),
        ("resource-1", ["lib-1-0"]),
    ]
    assert [
        span.name for rs in built.resource_spans for ss in rs.scope_spans for span in ss.spans
    ] == ["0/0/0", "0/0/1", "0/1/0", "1/0/1", "1/0/0"]
