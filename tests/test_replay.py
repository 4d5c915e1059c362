"""`seqtrace replay`: a stored incident re-sent between real servers, into endpoints that
push back, and from every trace file format `load` reads."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import (
    LogsServiceServicer,
    add_LogsServiceServicer_to_server,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import (
    TraceServiceServicer,
    add_TraceServiceServicer_to_server,
)

from analyzer.source import HttpSource
from collector.files import read_trace_file
from seqtrace.replay import Chunk, Selection, replay
from seqtrace.replay_export import ExporterOptions, make_exporter
from seqtrace.replay_rewrite import IdMap, rewrite_logs, rewrite_spans, split_spans
from tests.conftest import REAL_TRACES, SEQTRACE, Server, sample_files, start_server

AT = "2026-12-01T12:00:00Z"
AT_NS = 1_796_126_400_000_000_000


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SEQTRACE, *args], capture_output=True, text=True, timeout=timeout)


def spans_of(requests: list[ExportTraceServiceRequest]) -> list[Any]:
    return [
        span
        for request in requests
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


# ------------------------------------------------------------------------------ the rewrite


def _request(trees: list[list[int]], base: int = 1_000_000_000_000) -> ExportTraceServiceRequest:
    """One trace per tree; tree[i] is the index of span i's parent (-1 for the root); each
    span links to the previous trace's root and has one event."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for t, parents in enumerate(trees):
        for i, parent in enumerate(parents):
            span = scope.spans.add(name=f"s{t}.{i}")
            span.trace_id = bytes([t + 1]) * 16
            span.span_id = bytes([t + 1, i + 1]) * 4
            if parent >= 0:
                span.parent_span_id = bytes([t + 1, parent + 1]) * 4
            span.start_time_unix_nano = base + 1000 * t + 10 * i
            span.end_time_unix_nano = base + 1000 * t + 10 * i + 7
            span.events.add(name="e", time_unix_nano=base + 3)
            if t:
                span.links.add(trace_id=bytes([t]) * 16, span_id=bytes([t, 1]) * 4)
    return request


@given(
    st.lists(
        st.integers(1, 12).flatmap(
            lambda n: st.tuples(*[st.integers(-1, i - 1) for i in range(n)]).map(list)
        ),
        min_size=1,
        max_size=4,
    ),
    st.integers(-(10**9), 10**15),
)
def test_rewrite_keeps_every_tree_link_and_time_difference(
    trees: list[list[int]], shift: int
) -> None:
    original = _request(trees)
    rewritten = ExportTraceServiceRequest()
    rewritten.CopyFrom(original)
    ids = IdMap()
    assert rewrite_spans(rewritten, ids, shift) == sum(len(t) for t in trees)
    old, new = spans_of([original]), spans_of([rewritten])
    old_index = {(s.trace_id, s.span_id): i for i, s in enumerate(old)}
    new_index = {(s.trace_id, s.span_id): i for i, s in enumerate(new)}
    assert len(new_index) == len(old)  # ids stay distinct
    for before, after in zip(old, new, strict=True):
        assert after.trace_id != before.trace_id and after.span_id != before.span_id
        assert len(after.trace_id) == 16 and len(after.span_id) == 8
        if before.parent_span_id:  # the parent is the same span, under its new id
            parent = old_index[(before.trace_id, before.parent_span_id)]
            assert new_index[(after.trace_id, after.parent_span_id)] == parent
        else:
            assert after.parent_span_id == b""
        for old_link, new_link in zip(before.links, after.links, strict=True):
            target = old_index[(old_link.trace_id, old_link.span_id)]
            assert new_index[(new_link.trace_id, new_link.span_id)] == target
        assert after.start_time_unix_nano == before.start_time_unix_nano + shift
        assert after.end_time_unix_nano == before.end_time_unix_nano + shift
        assert after.events[0].time_unix_nano == before.events[0].time_unix_nano + shift
        assert after.name == before.name


def test_two_id_maps_give_two_incidents_and_keep_ids_gives_the_same() -> None:
    first, second, kept = _request([[-1, 0]]), _request([[-1, 0]]), _request([[-1, 0]])
    rewrite_spans(first, IdMap(), 0)
    rewrite_spans(second, IdMap(), 0)
    rewrite_spans(kept, IdMap(keep=True), 5)
    a, b, k = spans_of([first]), spans_of([second]), spans_of([kept])
    assert {s.span_id for s in a}.isdisjoint({s.span_id for s in b})
    assert a[0].trace_id != b[0].trace_id
    assert k[0].trace_id == b"\x01" * 16 and k[1].parent_span_id == k[0].span_id
    assert k[0].start_time_unix_nano == 1_000_000_000_005


def test_log_records_follow_their_spans_ids_and_times() -> None:
    spans = _request([[-1, 0]])
    logs = ExportLogsServiceRequest()
    records = logs.resource_logs.add().scope_logs.add().log_records
    records.add(trace_id=b"\x01" * 16, span_id=bytes([1, 2]) * 4, time_unix_nano=1_000_000_000_015)
    records.add(time_unix_nano=0, observed_time_unix_nano=1_000_000_000_020)  # no trace
    ids = IdMap()
    rewrite_spans(spans, ids, 1000)
    assert rewrite_logs(logs, ids, 1000) == 2
    child = spans_of([spans])[1]
    first, lone = logs.resource_logs[0].scope_logs[0].log_records
    assert (first.trace_id, first.span_id) == (child.trace_id, child.span_id)
    assert first.time_unix_nano == 1_000_000_001_015
    assert lone.trace_id == b"" and lone.span_id == b"" and lone.time_unix_nano == 0
    assert lone.observed_time_unix_nano == 1_000_000_001_020


def test_requests_are_cut_at_512_spans_keeping_resources() -> None:
    request = ExportTraceServiceRequest()
    for r in range(3):
        rs = request.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = f"svc{r}"
        scope = rs.scope_spans.add()
        scope.scope.name = f"scope{r}"
        for i in range(450):
            scope.spans.add(name=f"{r}.{i}", span_id=bytes([r, 1]) + i.to_bytes(6, "big"))
    parts = list(split_spans(request, 512))
    assert [len(spans_of([p])) for p in parts] == [512, 512, 326]
    names = [s.name for s in spans_of(parts)]
    assert names == [s.name for s in spans_of([request])]
    second = parts[1].resource_spans
    assert [rs.resource.attributes[0].value.string_value for rs in second] == ["svc1", "svc2"]
    assert [rs.scope_spans[0].scope.name for rs in second] == ["scope1", "scope2"]


# ------------------------------------------------------------------------------ servers


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    first = start_server(tmp_path / "first.duckdb")
    second = start_server(tmp_path / "second.duckdb")
    try:
        loaded = run("load", "--api", first.api, *map(str, sample_files()))
        assert loaded.returncode == 0, loaded.stderr
        yield first, second
    finally:
        first.stop()
        second.stop()


def _shape(diagram: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What must survive a replay: each message, and its time relative to the first."""
    messages = diagram["messages"]
    origin = min(m["start_unix_nano"] for m in messages)
    return [
        (
            m["from"],
            m["to"],
            m["label"],
            m["kind"],
            m["status"],
            m["error"],
            (m["start_unix_nano"] - origin) // 1000,  # to the microsecond
            m["duration_ns"] // 1000,
        )
        for m in messages
    ]


def _span_ids(source: HttpSource, trace_ids: list[str]) -> set[str]:
    return {s["span_id"] for t in trace_ids for s in source.trace(t)["spans"]}


def test_replay_between_two_servers_keeps_the_diagram_with_fresh_ids(
    two_servers: tuple[Server, Server],
) -> None:
    first, second = two_servers
    entity = "order.id=ORD-1001"
    grpc_endpoint = f"http://{second.addresses['otlp-grpc']}"
    out = run("replay", "--api", first.api, "--entity", entity, "--endpoint", grpc_endpoint)
    assert out.returncode == 0, out.stderr
    assert "replayed 43 spans of 4 traces" in out.stdout
    a, b = HttpSource(first.api), HttpSource(second.api)
    before = a.diagram(entity)
    after = b.diagram(entity)
    assert isinstance(before, dict) and isinstance(after, dict)
    assert _shape(after) == _shape(before)
    assert after["participants"] == before["participants"]
    assert after["blocks"] == before["blocks"]
    assert len(after["traces"]) == len(before["traces"]) == 4
    assert set(after["traces"]).isdisjoint(before["traces"])  # fresh trace ids
    assert _span_ids(b, after["traces"]).isdisjoint(_span_ids(a, before["traces"]))
    # The newest span ends now (the replay's moment), the shift kept the rest in step.
    newest = max(m["start_unix_nano"] + m["duration_ns"] for m in after["messages"])
    assert abs(newest - time.time_ns()) < 120 * 10**9
    # Parents and links point at spans that exist, in the second server, under new ids.
    spans = [s for t in after["traces"] for s in b.trace(t)["spans"]]
    old_spans = [s for t in before["traces"] for s in a.trace(t)["spans"]]
    known = {(s["trace_id"], s["span_id"]) for s in spans}
    for span in spans:
        if span["parent_span_id"]:
            assert (span["trace_id"], span["parent_span_id"]) in known
    links = [(s["trace_id"], link) for s in spans for link in s["links"]]
    assert links and len(links) == sum(len(s["links"]) for s in old_spans)
    for _, link in links:
        assert (link["trace_id"], link["span_id"]) in known
    roots = sum(1 for s in spans if not s["parent_span_id"])
    assert roots == sum(1 for s in old_spans if not s["parent_span_id"])

    # A second replay (over HTTP this time) is a second incident: twice the traces.
    http_endpoint = f"http://{second.addresses['otlp-http']}"
    again = run(
        "replay", "--api", first.api, "--entity", entity, "--endpoint", http_endpoint,
        "--protocol", "http",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    twice = b.diagram(entity)
    assert isinstance(twice, dict) and len(twice["traces"]) == 8
    assert b.stats()["spans"] == 86


def test_keep_ids_gives_nothing_new(two_servers: tuple[Server, Server]) -> None:
    first, second = two_servers
    entity = "order.id=ORD-1002"
    args = ["replay", "--api", first.api, "--entity", entity, "--keep-ids", "--at", AT]
    endpoint = ["--endpoint", f"http://{second.addresses['otlp-grpc']}"]
    assert run(*args, *endpoint).returncode == 0
    b = HttpSource(second.api)
    stored = b.stats()["spans"]
    before = HttpSource(first.api).diagram(entity)
    after = b.diagram(entity)
    assert isinstance(before, dict) and isinstance(after, dict)
    assert after["traces"] == before["traces"]  # the same ids
    assert max(m["start_unix_nano"] + m["duration_ns"] for m in after["messages"]) == AT_NS
    again = run(*args, *endpoint)
    assert again.returncode == 0, again.stderr
    assert b.stats()["spans"] == stored  # duplicates dropped
    # Into the first server itself, unshifted: the very same spans, nothing new.
    last = max(m["start_unix_nano"] + m["duration_ns"] for m in before["messages"])
    own = run(
        "replay", "--api", first.api, "--entity", entity, "--keep-ids", "--at", _rfc3339(last),
        "--endpoint", f"http://{first.addresses['otlp-grpc']}",
    )  # fmt: skip
    assert own.returncode == 0, own.stderr
    assert "times shifted by +0.000 s" in own.stdout
    assert HttpSource(first.api).stats()["spans"] == 500


def _rfc3339(ns: int) -> str:
    seconds, fraction = divmod(ns, 10**9)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{fraction:09d}Z"


def test_a_refusing_target_stops_the_replay_with_one_line(tmp_path: Path) -> None:
    target = start_server(tmp_path / "guarded.duckdb", "--ingest-token", "s3cret")
    try:
        sample = str(sample_files()[0])
        for protocol, address, needle in (
            ("grpc", target.addresses["otlp-grpc"], "UNAUTHENTICATED"),
            ("http", target.addresses["otlp-http"], "401"),
        ):
            out = run("replay", sample, "--endpoint", f"http://{address}", "--protocol", protocol)
            assert out.returncode == 2, out.stderr
            assert out.stderr.count("\n") == 1 and out.stderr.startswith("seqtrace: error: ")
            assert needle in out.stderr and "--token" in out.stderr
            assert "Traceback" not in out.stderr
        good = run("replay", sample, "--endpoint", f"http://{target.addresses['otlp-grpc']}",
                   "--token", "s3cret")
        assert good.returncode == 0, good.stderr
    finally:
        target.stop()
