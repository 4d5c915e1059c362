"""Backpressure: a memory budget for ingest, retryable answers when it is full, bounded
RSS under a flood, and every span stored in the end once clients retry.

Two budgets (both set by ``--max-queue-mib``): the receivers' budget for request bodies
in flight (charged before a body is read) and the store's budget for decoded batches
waiting for the writer (charged before a batch is queued). docs/reliability.md has the
figures measured here.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_collector_support import EXPORT, http_call, make_request, running_collector

from spanstore.budget import MemoryBudget
from spanstore.duckdb_store import DuckDBStore
from tests.conftest import start_server

PB = {"Content-Type": "application/x-protobuf"}
MIB = 1024 * 1024


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(tmp_path / "bp.duckdb") as s:
        yield s


def test_budget_admits_one_oversized_charge_alone_and_refuses_when_full() -> None:
    budget = MemoryBudget(100)
    assert budget.try_charge(60) and not budget.try_charge(60)
    assert budget.try_charge(40, held=0)
    budget.release(100)
    assert budget.try_charge(500)  # alone: one legal request always gets through
    assert budget.try_charge(50, held=500)  # and may grow while it is alone
    assert not budget.try_charge(1)
    snapshot = budget.snapshot()
    assert (snapshot.used_bytes, snapshot.peak_bytes, snapshot.refused) == (550, 550, 2)


class BlockedStore:
    """The real store, held until ``go`` is set, where a slow disk would hold it.

    ``at="sync"``: the journal's fsync stalls, so writes stay in flight (a request is
    acknowledged only once its record is on disk) and pile up in the receivers.
    ``at="writer"``: DuckDB stalls, so acknowledged batches pile up in the store's queue
    and hold its memory budget until DuckDB takes them."""

    def __init__(self, store: DuckDBStore, at: str = "sync") -> None:
        self.store = store
        self.go = threading.Event()
        self.entered = threading.Event()
        if at == "sync":
            journal = store._journal
            assert journal is not None
            original_sync = journal.sync

            def held_sync(seq: int) -> None:
                self.entered.set()
                self.go.wait(30)
                original_sync(seq)

            journal.sync = held_sync  # type: ignore[method-assign]
        else:
            original_append = store._append

            def held_append(con: Any, batch: Any) -> None:
                self.entered.set()
                self.go.wait(30)
                original_append(con, batch)

            store._append = held_append  # type: ignore[method-assign]


def test_full_receivers_refuse_the_body_before_reading_it(store: DuckDBStore) -> None:
    blocked = BlockedStore(store)
    first = make_request(spans=200, attrs=10).SerializeToString()
    second = make_request(spans=200, first=1000, attrs=10).SerializeToString()
    with running_collector(store, max_inflight_bytes=len(first) + 100) as c:
        address = c.addresses["otlp-http"]
        results: dict[str, int] = {}
        sender = threading.Thread(
            target=lambda: results.setdefault("first", http_call(address, first, PB)[0])
        )
        sender.start()
        assert blocked.entered.wait(10)
        started = time.monotonic()
        status, headers, body = http_call(address, second, PB)
        assert status == 503 and headers["retry-after"] == "2"
        assert time.monotonic() - started < 2.0
        rpc = status_pb2.Status.FromString(body)
        info = error_details_pb2.RetryInfo()
        assert rpc.code == 14 and rpc.details[0].Unpack(info) and info.retry_delay.seconds == 2
        assert "memory limit" in rpc.message
        assert c.counters().refused_requests == 1
        blocked.go.set()
        sender.join(10)
        assert results["first"] == 200
        assert http_call(address, second, PB)[0] == 200  # room again: accepted
        assert c.ingest.budget.used == 0
    assert store.stats().spans == 400


def test_full_store_queue_is_unavailable_with_retry_info_on_grpc(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "q.duckdb", max_queue_bytes=1) as store:
        blocked = BlockedStore(store, at="writer")
        with running_collector(store) as c:
            target = c.addresses["otlp-grpc"]
            thread = threading.Thread(
                target=lambda: http_call(
                    c.addresses["otlp-http"], make_request(spans=5).SerializeToString(), PB
                )
            )
            thread.start()
            assert blocked.entered.wait(10)
            # The first batch holds the (1-byte) queue budget: the next is refused at once.
            with grpc.insecure_channel(target) as channel:
                call = channel.unary_unary(EXPORT)
                with pytest.raises(grpc.RpcError) as caught:
                    call(make_request(spans=3, first=50).SerializeToString(), timeout=10)
            err: Any = caught.value
            assert err.code() == grpc.StatusCode.UNAVAILABLE
            trailers = dict(err.trailing_metadata())
            info = error_details_pb2.RetryInfo()
            # Where the OTLP spec puts it (Go and Java exporters) ...
            status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
            assert status.details[0].Unpack(info) and info.retry_delay.seconds == 2
            # ... and where the Python SDK's exporter looks for it.
            info.ParseFromString(trailers["google.rpc.retryinfo-bin"])
            assert info.retry_delay.seconds == 2
            assert store.ingest_stats()["queue"]["refused_writes"] == 1
            blocked.go.set()
            thread.join(10)
    with DuckDBStore(tmp_path / "q.duckdb", read_only=True) as reopened:
        assert reopened.stats().spans == 5


def recorded_spans(count: int, service: str) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("flood")
    for n in range(count):
        with tracer.start_as_current_span(f"op-{n % 7}") as span:
            span.set_attribute("order.id", f"ORD-{n}")
            span.set_attribute("payload", "p" * 400)
    return list(memory.get_finished_spans())


def test_sdk_exporters_retry_through_backpressure_and_lose_nothing(store: DuckDBStore) -> None:
    """The Python SDK's own exporters, 12 at once against a budget that admits one
    request at a time and lets others wait in line for half a second: the rest are
    refused as retryable, the SDK waits as told and sends again, and every span is
    stored once."""
    batches = [recorded_spans(300, f"svc-{n}") for n in range(12)]
    request_bytes = len(make_request(spans=300, attrs=2).SerializeToString()) * 3
    # The writer stalls for 1.5 s at first (a slow disk): requests pile up past the line
    # wait and are refused for sure; then everything flows and the retries get in.
    blocked = BlockedStore(store)
    threading.Timer(1.5, blocked.go.set).start()
    with running_collector(
        store, max_inflight_bytes=request_bytes, retry_after_seconds=1, admission_wait=0.5
    ) as c:
        exporters: list[Any] = []
        for n in range(12):
            if n % 2:
                exporters.append(
                    GrpcExporter(endpoint=f"http://{c.addresses['otlp-grpc']}", insecure=True)
                )
            else:
                exporters.append(
                    HttpExporter(endpoint=f"http://{c.addresses['otlp-http']}/v1/traces")
                )
        results: list[SpanExportResult] = [SpanExportResult.FAILURE] * 12

        def run(n: int) -> None:
            results[n] = exporters[n].export(batches[n])

        threads = [threading.Thread(target=run, args=(n,)) for n in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        refused = c.counters().refused_requests + store.ingest_stats()["queue"]["refused_writes"]
        for exporter in exporters:
            exporter.shutdown()
    assert results == [SpanExportResult.SUCCESS] * 12
    assert refused > 0, "the budget never pushed back: the test did not test it"
    assert store.stats().spans == 12 * 300


# ----------------------------------------------------------------------------- the flood

FLOOD_THREADS = 80
FLOOD_REQUESTS = 1  # per thread
FLOOD_SPANS = 1000  # per request
FLOOD_ATTRIBUTES = 40  # per span, ~40 bytes each: costly to decode, so the store is slow
FLOOD_BUDGET_MIB = 16
DB_MEMORY_MIB = 64
#: What the process may use beyond its idle size, DuckDB's limit and the two budgets:
#: interpreter heaps, Arrow pools, the decoders' results in transit. Without the budget
#: the same flood takes far more (docs/reliability.md).
SLACK_MIB = 100


_PLACEHOLDER = b"\xfe\xed" * 8  # the template's trace id, replaced per request


def flood_template() -> bytes:
    """One request of FLOOD_SPANS spans of one trace (id: the placeholder)."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "flood"
    scope_spans = resource_spans.scope_spans.add()
    now = time.time_ns()
    for i in range(FLOOD_SPANS):
        span = scope_spans.spans.add(
            trace_id=_PLACEHOLDER, span_id=(i + 1).to_bytes(8, "big"), name="GET /x", kind=2
        )
        span.start_time_unix_nano = now + i
        span.end_time_unix_nano = now + i + 1000
        span.attributes.add(key="order.id").value.string_value = f"ORD-{i}"
        for a in range(FLOOD_ATTRIBUTES):
            span.attributes.add(key=f"flood.attr_{a}").value.string_value = f"value {a:04d} " * 3
    data: bytes = request.SerializeToString()
    assert data.count(_PLACEHOLDER) == FLOOD_SPANS
    return data


def flood_body(template: bytes, thread: int, n: int) -> bytes:
    return template.replace(_PLACEHOLDER, (thread * 1000 + n + 1).to_bytes(16, "big"))


def proc_status(pid: int, field: str) -> int:
    """A /proc/PID/status field in KiB (VmRSS, VmHWM); 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


class FloodClient:
    """Raw OTLP/HTTP clients that honour Retry-After (with jitter), as exporters do."""

    def __init__(self, address: str, bodies: list[list[bytes]]) -> None:
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)
        self.bodies = bodies
        self.lock = threading.Lock()
        self.refusals = 0
        self.attempted_spans = 0
        self.first_started_at: list[float] = []

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def run(self, index: int) -> None:
        conn = self._connect()
        for n, body in enumerate(self.bodies[index]):
            if n == 0:
                with self.lock:
                    self.first_started_at.append(time.monotonic())
            while True:
                try:
                    conn.request("POST", "/v1/traces", body, PB)
                    response = conn.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = self._connect()
                    continue
                with self.lock:
                    self.attempted_spans += FLOOD_SPANS
                if response.status == 200:
                    break
                assert response.status == 503, response.status
                retry_after = float(response.getheader("Retry-After") or "")
                with self.lock:
                    self.refusals += 1
                if (response.getheader("Connection") or "").lower() == "close":
                    conn.close()
                    conn = self._connect()
                time.sleep(retry_after * random.uniform(0.5, 1.0))
        conn.close()


def run_threads(target: Callable[[int], None], count: int) -> None:
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)


@pytest.mark.slow
def test_flood_keeps_rss_bounded_and_retries_get_every_span_in(tmp_path: Path) -> None:
    template = flood_template()
    bodies = [
        [flood_body(template, t, n) for n in range(FLOOD_REQUESTS)] for t in range(FLOOD_THREADS)
    ]
    total = FLOOD_THREADS * FLOOD_REQUESTS * FLOOD_SPANS
    config = tmp_path / "seqtrace.yaml"
    config.write_text(f"limits:\n  db_memory_mib: {DB_MEMORY_MIB}\n")
    server = start_server(
        tmp_path / "flood.duckdb",
        "--max-queue-mib",
        str(FLOOD_BUDGET_MIB),
        "--config",
        str(config),
    )
    pid = server.process.pid
    try:
        time.sleep(0.5)
        idle_kib = proc_status(pid, "VmRSS")
        client = FloodClient(server.addresses["otlp-http"], bodies)
        started = time.monotonic()
        run_threads(client.run, FLOOD_THREADS)
        elapsed = time.monotonic() - started
        peak_kib = proc_status(pid, "VmHWM")
        from analyzer.source import HttpSource

        source = HttpSource(server.api)
        stored = source.stats()["spans"]
        stats = source._request("/api/v1/ingest-stats")
    finally:
        assert server.stop() == 0
    sustained = total / elapsed
    # Every client sends its first request at once: that demand, over the time it took
    # all of them to start sending (at least 0.1 s), against what the store takes per
    # second; and the bytes demanded at once against the two budgets together.
    burst_window = max(max(client.first_started_at) - started, 0.1)
    offered = FLOOD_THREADS * FLOOD_SPANS / burst_window
    demanded_bytes = sum(len(b[0]) for b in bodies)
    over_mib = (peak_kib - idle_kib) / 1024
    bound_mib = DB_MEMORY_MIB + 2 * FLOOD_BUDGET_MIB + SLACK_MIB
    print(
        f"flood: {total} spans in {elapsed:.1f} s ({sustained:.0f}/s stored); offered at "
        f"{offered:.0f}/s ({offered / sustained:.0f}x), {demanded_bytes >> 20} MiB at once; "
        f"{client.refusals} "
        f"refusals; RSS idle {idle_kib / 1024:.0f} MiB, peak {peak_kib / 1024:.0f} MiB "
        f"(+{over_mib:.0f}, bound +{bound_mib})"
    )
    assert stored == total, "retries must get every span in"
    assert client.refusals > 0 and stats["receivers"]["refused_requests"] > 0
    assert stats["receivers"]["peak_inflight_bytes"] <= FLOOD_BUDGET_MIB * MIB + len(bodies[0][0])
    assert stats["queue"]["peak_bytes"] <= FLOOD_BUDGET_MIB * MIB * 2
    assert over_mib < bound_mib, f"peak RSS {over_mib:.0f} MiB over idle, bound {bound_mib}"
    # Several times what the store takes: the refusals above show it was over capacity;
    # the ratio depends on how fast the client threads start (7x at load 10, 20x+ idle).
    assert offered > 3 * sustained, "the flood was not a flood"
    assert demanded_bytes > 5 * 2 * FLOOD_BUDGET_MIB * MIB
