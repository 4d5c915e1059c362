"""The consume contract, in the spirit of the OpenTelemetry Collector's
``consumerretry``/``contracttest`` checker: the real receivers in front of the real
DuckDBStore, with a writer wrapper that injects errors at random.

* permanent errors (decided per request: a "poison" request always fails, before it is
  stored): the exporter must drop it, and nothing of it may be stored;
* temporary errors before the write: the exporter retries;
* temporary errors AFTER the write committed (the answer is lost, as when a commit
  outlives its timeout): the exporter retries, and de-duplication must keep one copy;
* some spans are invalid (wrong id lengths): partial success, never stored.

Then: accepted + rejected == sent, the store holds exactly the accepted spans, once each.
"""

from __future__ import annotations

import random
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from test_collector_support import (
    EXPORT,
    PermanentStoreError,
    http_call,
    make_request,
    running_collector,
)

from collector import Collector
from spanstore.base import StoreUnavailable, WriteResult
from spanstore.duckdb_store import DuckDBStore
from spanstore.otlp import request_to_json

REQUESTS = 160


class FlakyWriter:
    """The real store behind random failures (thread-safe)."""

    def __init__(self, store: DuckDBStore, seed: int) -> None:
        self.store = store
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.injected = {"permanent": 0, "before": 0, "after": 0}

    @staticmethod
    def poisoned(data: bytes) -> bool:
        return zlib.crc32(data[-64:]) % 10 == 0  # about one request in ten, always the same

    def write(
        self, request: ExportTraceServiceRequest | bytes, timeout: float | None = None
    ) -> WriteResult:
        data = request if isinstance(request, bytes) else request.SerializeToString()
        with self._lock:
            roll = self._rng.random()
        if self.poisoned(_identity(data)):
            self.injected["permanent"] += 1
            raise PermanentStoreError("injected permanent failure")
        if roll < 0.25:
            self.injected["before"] += 1
            raise StoreUnavailable("injected temporary failure")
        result = self.store.write(request, timeout)
        if roll > 0.85:
            self.injected["after"] += 1
            raise StoreUnavailable("injected failure after the commit")
        return result

    def close(self) -> None:
        pass


def _identity(data: bytes) -> bytes:
    """The part of a request that identifies it whatever its encoding: its span ids."""
    request = ExportTraceServiceRequest.FromString(data)
    return b"".join(
        s.trace_id + s.span_id
        for rs in request.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    )


def build(n: int, rng: random.Random) -> tuple[ExportTraceServiceRequest, int]:
    """Request ``n``: 1-12 spans of a fresh trace, sometimes with invalid spans added."""
    request = make_request(spans=rng.randint(1, 12), first=n * 100 + 1, attrs=2)
    invalid = 0
    spans = request.resource_spans[0].scope_spans[0].spans
    if rng.random() < 0.2:
        for _ in range(rng.randint(1, 2)):
            bad = spans.add()
            bad.CopyFrom(spans[0])
            bad.span_id = bytes([rng.randint(1, 255)]) * rng.choice([3, 7, 9])
            invalid += 1
    return request, invalid


class Outcome:
    def __init__(self) -> None:
        self.accepted: set[bytes] = set()
        self.rejected = 0
        self.lock = threading.Lock()


def send(collector: Collector, request: ExportTraceServiceRequest, how: str) -> tuple[str, int]:
    """One export with retries; ('ok', rejected spans) or ('permanent', 0)."""
    for _attempt in range(100):
        if how == "grpc":
            with grpc.insecure_channel(collector.addresses["otlp-grpc"]) as channel:
                call = channel.unary_unary(EXPORT)
                try:
                    body = call(request.SerializeToString(), timeout=20)
                except grpc.RpcError as err:
                    if err.code() == grpc.StatusCode.UNAVAILABLE:
                        continue
                    return "permanent", 0
            return "ok", ExportTraceServiceResponse.FromString(body).partial_success.rejected_spans
        if how == "json":
            payload = orjson.dumps(request_to_json(request))
            headers = {"Content-Type": "application/json"}
        else:
            payload = request.SerializeToString()
            headers = {"Content-Type": "application/x-protobuf"}
        status, answer_headers, body = http_call(collector.addresses["otlp-http"], payload, headers)
        if status == 503:
            assert "retry-after" in answer_headers
            continue
        if status != 200:
            assert status == 500, status  # the injected permanent error
            return "permanent", 0
        if how == "json":
            partial = orjson.loads(body).get("partialSuccess", {})
            return "ok", int(partial.get("rejectedSpans", 0))
        return "ok", ExportTraceServiceResponse.FromString(body).partial_success.rejected_spans
    raise AssertionError("a temporary failure never cleared")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(tmp_path / "contract.duckdb") as s:
        yield s


@pytest.mark.parametrize("seed", [1, 2])
def test_accepted_plus_rejected_equals_sent_and_nothing_is_doubled(
    store: DuckDBStore, seed: int
) -> None:
    rng = random.Random(seed)
    writer = FlakyWriter(store, seed)
    jobs = []
    sent = 0
    for n in range(REQUESTS):
        request, invalid = build(n, rng)
        total = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        sent += total
        jobs.append((request, invalid, total, rng.choice(["grpc", "protobuf", "json"])))
    outcome = Outcome()

    def run(job: tuple[ExportTraceServiceRequest, int, int, str]) -> None:
        request, invalid, total, how = job
        verdict, rejected = send(collector, request, how)
        valid = {
            s.trace_id + s.span_id
            for s in request.resource_spans[0].scope_spans[0].spans
            if len(s.span_id) == 8
        }
        with outcome.lock:
            if verdict == "permanent":
                outcome.rejected += total
            else:
                assert rejected == invalid
                outcome.rejected += rejected
                outcome.accepted |= valid

    with running_collector(writer) as collector, ThreadPoolExecutor(4) as pool:
        list(pool.map(run, jobs))

    assert writer.injected["permanent"] and writer.injected["before"] and writer.injected["after"]
    assert len(outcome.accepted) + outcome.rejected == sent
    store.flush()  # what was acknowledged is in the journal until the writer commits it
    con = store._db.cursor()
    rows = con.execute("SELECT trace_id || span_id FROM spans").fetchall()
    stored = [row[0] for row in rows]
    assert len(stored) == len(set(stored)), "a span is stored twice"
    assert set(stored) == outcome.accepted
