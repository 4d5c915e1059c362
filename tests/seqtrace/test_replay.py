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
        good = run(
            "replay",
            sample,
            "--endpoint",
            f"http://{target.addresses['otlp-grpc']}",
            "--token",
            "s3cret",
        )
        assert good.returncode == 0, good.stderr
    finally:
        target.stop()


# ------------------------------------------------------------------------------ endpoints


class _Collector(TraceServiceServicer, LogsServiceServicer):
    """An OTLP/gRPC endpoint that refuses the first ``refuse`` requests with
    ``code`` (+ RetryInfo), then keeps what it is sent."""

    def __init__(self, refuse: int = 0, code: grpc.StatusCode = grpc.StatusCode.OK) -> None:
        self.refuse = refuse
        self.code = code
        self.refused = 0
        self.traces: list[ExportTraceServiceRequest] = []
        self.logs: list[ExportLogsServiceRequest] = []
        self.lock = threading.Lock()

    def _gate(self, context: Any) -> None:
        with self.lock:
            if self.refused >= self.refuse:
                return
            self.refused += 1
        info = error_details_pb2.RetryInfo()
        info.retry_delay.nanos = 50_000_000
        status = status_pb2.Status(code=self.code.value[0], message="busy, try later")
        status.details.add().Pack(info)
        context.abort_with_status(_Status(self.code, "busy, try later", status))

    def Export(self, request: Any, context: Any) -> Any:
        self._gate(context)
        with self.lock:
            if isinstance(request, ExportTraceServiceRequest):
                self.traces.append(request)
                return ExportTraceServiceResponse()
            self.logs.append(request)
            return ExportLogsServiceResponse()


class _Status(grpc.Status):  # type: ignore[misc]
    def __init__(self, code: grpc.StatusCode, details: str, status: Any) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = (("grpc-status-details-bin", status.SerializeToString()),)


class _LogsOnly(LogsServiceServicer):
    def __init__(self, collector: _Collector) -> None:
        self.collector = collector

    def Export(self, request: Any, context: Any) -> Any:
        return self.collector.Export(request, context)


@pytest.fixture
def collector_factory() -> Iterator[Any]:
    servers: list[grpc.Server] = []

    def make(refuse: int = 0, code: grpc.StatusCode = grpc.StatusCode.OK) -> tuple[_Collector, str]:
        collector = _Collector(refuse, code)
        server = grpc.server(futures.ThreadPoolExecutor(4))
        add_TraceServiceServicer_to_server(collector, server)  # type: ignore[no-untyped-call]
        add_LogsServiceServicer_to_server(_LogsOnly(collector), server)  # type: ignore[no-untyped-call]
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return collector, f"http://127.0.0.1:{port}"

    yield make
    for server in servers:
        server.stop(0)


def test_resource_exhausted_for_a_while_still_delivers_every_span(
    collector_factory: Any, tmp_path: Path
) -> None:
    collector, endpoint = collector_factory(refuse=3, code=grpc.StatusCode.RESOURCE_EXHAUSTED)
    files = [str(f) for f in sample_files()]
    out = run("replay", *files, "--endpoint", endpoint, "--at", AT)
    assert out.returncode == 0, out.stderr
    assert collector.refused == 3 and "retry 3 times" in out.stderr
    sent = spans_of(collector.traces)
    expected = spans_of([r for f in files for r in read_trace_file(f)])
    assert len(sent) == len(expected) == 500
    assert len({(s.trace_id, s.span_id) for s in sent}) == 500  # each once
    assert max(s.end_time_unix_nano for s in sent) == AT_NS
    assert all(len(spans_of([r])) <= 512 for r in collector.traces)


class _Http(BaseHTTPRequestHandler):
    """OTLP/HTTP: answers ``script`` statuses in turn (then 200), keeping what it gets."""

    script: list[int] = []
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = type(self).script.pop(0) if type(self).script else 200
        if status == 200:
            type(self).bodies.append(body)
            payload = ExportTraceServiceResponse().SerializeToString()
        else:
            payload = status_pb2.Status(
                code=3, message=f"refused with {status}"
            ).SerializeToString()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        if status in (429, 503):
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_endpoint() -> Iterator[tuple[type[_Http], str]]:
    handler = type("Handler", (_Http,), {"script": [], "bodies": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_429_and_503_are_retried_and_400_stops_with_one_line(
    http_endpoint: tuple[type[_Http], str],
) -> None:
    handler, endpoint = http_endpoint
    handler.script = [429, 503, 503, 502]
    sample = str(sample_files()[0])
    out = run("replay", sample, "--endpoint", endpoint, "--protocol", "http")
    assert out.returncode == 0, out.stderr
    sent = spans_of([ExportTraceServiceRequest.FromString(b) for b in handler.bodies])
    assert len(sent) == len(spans_of(read_trace_file(sample)))
    handler.script = [400]
    handler.bodies.clear()
    refused = run("replay", sample, "--endpoint", endpoint, "--protocol", "http")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "400" in refused.stderr and "refused with 400" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_target_that_never_recovers_is_given_up_after_the_retry_time(
    http_endpoint: tuple[type[_Http], str],
) -> None:
    handler, endpoint = http_endpoint
    handler.script = [503] * 1_000_000  # never runs out within the retry time
    sample = str(sample_files()[0])
    out = run("replay", sample, "--endpoint", endpoint, "--protocol", "http",
              "--max-retry-time", "1")  # fmt: skip
    assert out.returncode == 2
    # One line says why it waits, one why it stopped.
    waiting, error = out.stderr.splitlines()
    assert waiting.startswith("seqtrace: replay: ") and "503 Service Unavailable" in waiting
    assert error.startswith("seqtrace: error: replay stopped: ")
    assert "kept refusing" in error and "--max-retry-time" in error


@pytest.mark.parametrize("name", sorted(p.name for p in REAL_TRACES.glob("*.json")))
def test_replay_from_every_real_trace_file(name: str, collector_factory: Any) -> None:
    collector, endpoint = collector_factory()
    path = str(REAL_TRACES / name)
    out = run("replay", path, "--endpoint", endpoint, "--at", AT)
    assert out.returncode == 0, out.stderr
    original = spans_of(read_trace_file(path))
    sent = spans_of(collector.traces)
    assert len(sent) == len(original) > 0
    shift = AT_NS - max(max(s.end_time_unix_nano, s.start_time_unix_nano) for s in original)
    by_name: dict[str, list[int]] = {}
    for span in original:
        by_name.setdefault(span.name, []).append(span.start_time_unix_nano + shift)
    for span in sent:
        assert span.start_time_unix_nano in by_name[span.name]
    assert {s.trace_id for s in sent}.isdisjoint({s.trace_id for s in original})
    # Every parent found in the file is found among the replayed spans (new ids), and
    # a parent the file lacks stays missing (not turned into a span of this incident).
    old_ids, new_ids = {s.span_id for s in original}, {s.span_id for s in sent}
    assert sum(s.parent_span_id in new_ids for s in sent) == sum(
        s.parent_span_id in old_ids for s in original
    )
    assert sum(bool(s.parent_span_id) for s in sent) == sum(
        bool(s.parent_span_id) for s in original
    )


def test_gzip_jsonl_and_protobuf_files_replay(tmp_path: Path, collector_factory: Any) -> None:
    import gzip

    sample = sample_files()[0]
    requests = read_trace_file(sample)
    (tmp_path / "a.binpb").write_bytes(requests[0].SerializeToString())
    (tmp_path / "b.json.gz").write_bytes(gzip.compress(sample.read_bytes()))
    collector, endpoint = collector_factory()
    out = run("replay", str(tmp_path / "a.binpb"), str(tmp_path / "b.json.gz"),
              "--endpoint", endpoint)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert len(spans_of(collector.traces)) == 2 * len(spans_of(requests))


def test_log_records_go_with_their_spans_under_the_same_new_ids(collector_factory: Any) -> None:
    """The optional source hook: log records of a chunk's traces, rewritten like the spans."""
    collector, endpoint = collector_factory()
    spans = _request([[-1, 0, 0]])
    logs = ExportLogsServiceRequest()
    records = logs.resource_logs.add().scope_logs.add().log_records
    records.add(trace_id=b"\x01" * 16, span_id=bytes([1, 3]) * 4, time_unix_nano=10**12 + 25)
    asked: list[list[str]] = []

    def logs_of(trace_ids: list[str]) -> list[ExportLogsServiceRequest]:
        asked.append(trace_ids)
        return [logs]

    selection = Selection(
        10**12, 10**12 + 27, 1, lambda: iter([Chunk(["01" * 16], [spans])]), logs_of
    )
    exporter = make_exporter(ExporterOptions(endpoint))
    summary = replay(selection, exporter, IdMap(), AT_NS, speed=0)
    exporter.close()
    assert asked == [["01" * 16]] and summary.spans == 3 and summary.logs == 1
    sent = spans_of(collector.traces)
    record = collector.logs[0].resource_logs[0].scope_logs[0].log_records[0]
    third = next(s for s in sent if s.name == "s0.2")
    assert (record.trace_id, record.span_id) == (third.trace_id, third.span_id)
    assert record.trace_id != b"\x01" * 16
    assert record.time_unix_nano == AT_NS - 2  # 25 ns after the start, the end at 27


def test_speed_paces_spans_by_their_end_time(collector_factory: Any) -> None:
    """--speed 1: a 1.2 s incident takes about 1.2 s, its spans in end-time order."""
    collector, endpoint = collector_factory()
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    base = 10**18
    for i, offset_ms in enumerate((0, 400, 800, 1200)):
        scope.spans.add(
            name=f"s{i}",
            trace_id=b"\x07" * 16,
            span_id=bytes([7, i + 1]) * 4,
            start_time_unix_nano=base,
            end_time_unix_nano=base + offset_ms * 1_000_000 + 1,
        )
    selection = Selection(base, base + 1_200_000_001, 1, lambda: iter([Chunk([], [request])]))
    exporter = make_exporter(ExporterOptions(endpoint))
    started = time.monotonic()
    summary = replay(selection, exporter, IdMap(), AT_NS, speed=1, progress=False)
    took = time.monotonic() - started
    exporter.close()
    assert summary.spans == 4 and 1.1 <= took < 3.0
    assert [spans_of([r])[0].name for r in collector.traces] == ["s0", "s1", "s2", "s3"]


def test_replay_from_a_database_file_by_range_and_by_trace(
    sample_db: Path, collector_factory: Any
) -> None:
    """Straight from a DuckDB file (read-only), a chunk of traces at a time."""
    collector, endpoint = collector_factory()
    out = run("replay", "--db", str(sample_db), "--from", "2026-11-01T00:00:00Z",
              "--to", "2026-12-01T00:00:00Z", "--endpoint", endpoint, "--at", AT)  # fmt: skip
    assert out.returncode == 0, out.stderr
    sent = spans_of(collector.traces)
    assert len(sent) == 500 and "of 47 traces" in out.stdout
    assert max(s.end_time_unix_nano for s in sent) == AT_NS
    single, endpoint_2 = collector_factory()
    trace = "28aa6f8cecf63975079bb73dfbbeb308"
    out = run("replay", "--db", str(sample_db), "--trace", trace, "--endpoint", endpoint_2)
    assert out.returncode == 0, out.stderr
    assert len({s.trace_id for s in spans_of(single.traces)}) == 1
    in_files = [
        s for f in sample_files() for s in spans_of(read_trace_file(f))
        if s.trace_id.hex() == trace
    ]  # fmt: skip
    assert len(spans_of(single.traces)) == len(in_files) == 22
    missing = run("replay", "--db", str(sample_db), "--trace", "ab" * 16, "--endpoint", endpoint_2)
    assert missing.returncode == 2 and "no trace" in missing.stderr
    both = run("replay", str(SAMPLE_ONE), "--trace", trace, "--endpoint", endpoint_2)
    assert both.returncode == 2 and "not both" in both.stderr
    nothing = run("replay", "--db", str(sample_db), "--endpoint", endpoint_2)
    assert nothing.returncode == 2 and "--entity" in nothing.stderr


SAMPLE_ONE = sample_files()[0]


# ------------------------------------------------------------------------------ log records

LOGGED_ENTITY = "order.id=ORD-1002"  # the payment retries: WARN/ERROR records on its spans


def _load_with_logs(*target: str) -> None:
    from tests.conftest import SAMPLES

    files = [*map(str, sample_files()), *map(str, sorted((SAMPLES / "logs").glob("*.json")))]
    loaded = run("load", *target, *files)
    assert loaded.returncode == 0, loaded.stderr
    assert "and 90 log records" in loaded.stdout


def _spans_by_id(source: HttpSource, trace_ids: list[str]) -> dict[tuple[str, str], Any]:
    return {(s["trace_id"], s["span_id"]): s for t in trace_ids for s in source.trace(t)["spans"]}


def _newest_end(diagram: Any) -> int:
    return max(m["start_unix_nano"] + m["duration_ns"] for m in diagram["messages"])


def _assert_logs_replayed(a: HttpSource, b: HttpSource, fresh_ids: bool) -> None:
    """The second server's records of the entity are the first's: same bodies,
    severities, attributes and services, on the replayed spans (the same span, under its
    new ids), at the spans' shift."""
    before, after = a.diagram(LOGGED_ENTITY), b.diagram(LOGGED_ENTITY)
    assert isinstance(before, dict) and isinstance(after, dict)
    shift = _newest_end(after) - _newest_end(before)
    old_logs = a.logs(LOGGED_ENTITY)["logs"]
    new_logs = b.logs(LOGGED_ENTITY)["logs"]
    assert len(old_logs) >= 5 and len(new_logs) == len(old_logs)
    assert {r["severity"] for r in old_logs} >= {"INFO", "WARN"}

    def content(record: dict[str, Any]) -> tuple[Any, ...]:
        return (record["body"], record["severity"], record["severity_number"],
                record["service"], sorted(record["attributes"].items()))  # fmt: skip

    assert [content(r) for r in new_logs] == [content(r) for r in old_logs]
    assert [r["time_unix_nano"] - shift for r in new_logs] == [
        r["time_unix_nano"] for r in old_logs
    ]
    old_spans = _spans_by_id(a, before["traces"])
    new_spans = _spans_by_id(b, after["traces"])
    for old, new in zip(old_logs, new_logs, strict=True):
        old_span = old_spans[(old["trace_id"], old["span_id"])]
        new_span = new_spans[(new["trace_id"], new["span_id"])]  # a replayed span's ids
        assert new_span["name"] == old_span["name"]
        assert new_span["start_unix_nano"] - shift == old_span["start_unix_nano"]
        assert (new["trace_id"] != old["trace_id"]) is fresh_ids
        assert (new["span_id"] != old["span_id"]) is fresh_ids


def test_log_records_replay_between_two_servers_under_the_new_ids(tmp_path: Path) -> None:
    """--api over gRPC (fresh ids), then straight from a database file over OTLP/HTTP
    with --keep-ids: the records arrive at /v1/logs and LogsService/Export."""
    first = start_server(tmp_path / "first.duckdb")
    second = start_server(tmp_path / "second.duckdb")
    try:
        _load_with_logs("--api", first.api)
        endpoint = f"http://{second.addresses['otlp-grpc']}"
        out = run("replay", "--api", first.api, "--entity", LOGGED_ENTITY, "--endpoint", endpoint)
        assert out.returncode == 0, out.stderr
        a, b = HttpSource(first.api), HttpSource(second.api)
        records = len(a.logs(LOGGED_ENTITY)["logs"])
        assert f"{records} log records" in out.stdout
        _assert_logs_replayed(a, b, fresh_ids=True)
    finally:
        first.stop()
        second.stop()

    db = tmp_path / "logged.duckdb"
    _load_with_logs("--db", str(db))
    third = start_server(tmp_path / "third.duckdb")
    fourth = start_server(tmp_path / "fourth.duckdb")  # the --db side's records, served
    try:
        out = run(
            "replay", "--db", str(db), "--entity", LOGGED_ENTITY, "--keep-ids", "--at", AT,
            "--endpoint", f"http://{third.addresses['otlp-http']}", "--protocol", "http",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        _load_with_logs("--api", fourth.api)
        original, replayed = HttpSource(fourth.api), HttpSource(third.api)
        assert _newest_end(replayed.diagram(LOGGED_ENTITY)) == AT_NS
        _assert_logs_replayed(original, replayed, fresh_ids=False)
    finally:
        third.stop()
        fourth.stop()


def test_replay_logs_endpoint_serves_the_stored_records_losslessly(tmp_path: Path) -> None:
    """/api/v1/replay/logs: the records as stored (the store's own request), in one
    OTLP/JSON document; HttpSource cuts them into 512-record requests."""
    from analyzer.source import LocalSource, SourceError
    from spanstore.duckdb_store import DuckDBStore

    db = tmp_path / "logged.duckdb"
    _load_with_logs("--db", str(db))
    with DuckDBStore(db, read_only=True) as store:
        local = LocalSource(store)
        traces = [t["trace_id"] for t in local.replay_traces(LOGGED_ENTITY)["traces"]]
        wanted = local.logs_requests(traces)
        one_by_one = [store.logs_request(t) for t in traces]
        in_twos = store.logs_requests(traces, max_records=2)
        drawn = len(local.logs(LOGGED_ENTITY)["logs"])

    def records(requests: list[ExportLogsServiceRequest]) -> list[bytes]:
        return sorted(
            r.SerializeToString()
            for request in requests for rl in request.resource_logs
            for sl in rl.scope_logs for r in sl.log_records
        )  # fmt: skip

    assert len(wanted) == 1 and records(wanted) == records(one_by_one)
    assert len(records(wanted)) == drawn
    # Bounded requests: every record once, at most 2 a request, each with its resource.
    assert [len(records([r])) for r in in_twos[:-1]] == [2] * (len(in_twos) - 1)
    assert records(in_twos) == records(wanted)
    assert all(rl.resource.attributes for r in in_twos for rl in r.resource_logs)
    server = start_server(tmp_path / "served.duckdb")
    try:
        _load_with_logs("--api", server.api)
        served = HttpSource(server.api).logs_requests(traces)
        assert served == wanted
        served_in_twos = HttpSource(server.api).logs_requests(traces, max_records=2)
        assert [len(records([r])) for r in served_in_twos] == [len(records([r])) for r in in_twos]
        assert records(served_in_twos) == records(wanted)
        assert HttpSource(server.api).logs_requests(["ab" * 16]) == []
        with pytest.raises(SourceError, match="32 hex digits"):
            HttpSource(server.api).logs_requests(["not-an-id"])
    finally:
        server.stop()
