"""Decoding OTLP requests in worker processes, so ingest uses every core.

Turning a request into columns is pure Python per span (``spanstore.ingest``); in one
process it holds the interpreter lock and, with the receivers and the writer, tops out
below the ingest target on two cores (docs/performance.md). A small pool of worker
processes does that work instead: the receiver hands over the request's serialized bytes,
a worker parses and prepares it, and the Arrow batch comes back (pickled Arrow buffers,
cheap to move). The store's writer thread then only appends.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
import signal
from typing import Any, Final

import pyarrow as pa
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from spanstore.base import InvalidRequest, StoreUnavailable
from spanstore.ingest import KeyClassifier, PreparedBatch, prepare_request
from spanstore.nopandas import keep_pandas_out
from spanstore.policy import IngestPolicy, PolicyEngine

__all__ = ["DecoderPool", "prepare_serialized"]

_worker_keys: KeyClassifier | None = None
#: Seconds the pool's workers may take to start (imports) before the store gives up.
_START_TIMEOUT: Final = 120.0
_worker_policy: PolicyEngine | None = None
#: forkserver, not fork: the server process runs gRPC threads, which fork would copy.
_START_METHOD: Final = (
    "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
)


def prepare_serialized(
    data: bytes, keys: KeyClassifier, policy: PolicyEngine | None = None
) -> PreparedBatch:
    """Parse a serialized ExportTraceServiceRequest and prepare its batch."""
    try:
        request = ExportTraceServiceRequest.FromString(data)
    except DecodeError as exc:
        raise InvalidRequest(f"malformed ExportTraceServiceRequest: {exc}") from None
    return prepare_request(request, keys, policy)


def _init_worker(entity_keys: frozenset[str], policy: IngestPolicy | None = None) -> None:
    import gc

    keep_pandas_out()
    # Ctrl-C reaches the whole process group; the server decides when workers stop (it
    # closes the pool after draining), so a worker must not die with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _worker_keys, _worker_policy
    _worker_keys = KeyClassifier(entity_keys)
    _worker_policy = PolicyEngine(policy) if policy is not None else None
    # The worker allocates many short-lived objects and keeps almost nothing: collect the
    # young generation rarely (NOTES.md: the collector's scans halve decode speed).
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def _from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


def _prepare_in_worker(data: bytes) -> tuple[Any, ...]:
    """The batch as plain values: Arrow tables travel as IPC streams, because unpickling
    a pyarrow Table imports pandas (seconds, and tens of MiB) in the receiving process."""
    assert _worker_keys is not None
    batch = prepare_serialized(data, _worker_keys, _worker_policy)
    return (
        _ipc(batch.spans),
        _ipc(batch.entities),
        _ipc(batch.links),
        batch.resources,
        batch.scopes,
        batch.span_keys,
        batch.min_start,
        batch.max_start,
        batch.rejected,
        batch.duplicates,
        batch.messages,
        batch.counts,
    )


def _ready(_: int) -> bool:
    return _worker_keys is not None


class DecoderPool:
    """Worker processes that turn serialized requests into prepared batches."""

    def __init__(
        self,
        workers: int | None = None,
        entity_keys: frozenset[str] = frozenset(),
        policy: IngestPolicy | None = None,
    ):
        self.workers = workers or min(4, os.cpu_count() or 1)
        context = multiprocessing.get_context(_START_METHOD)
        if _START_METHOD == "forkserver":
            context.set_forkserver_preload(["spanstore.decoder"])
        self._pool: multiprocessing.pool.Pool | None = context.Pool(
            self.workers, initializer=_init_worker, initargs=(entity_keys, policy)
        )

        # Start every worker now (imports take a second or two), not on the first export.
        # A worker that dies while starting is restarted by the pool, forever: give up
        # after a while with an error instead of hanging.
        try:
            self._pool.map_async(_ready, range(self.workers), chunksize=1).get(_START_TIMEOUT)
        except multiprocessing.TimeoutError:
            self._pool.terminate()
            self._pool = None
            raise StoreUnavailable(
                f"the decoder processes did not start within {_START_TIMEOUT:.0f} s"
            ) from None

    def prepare(self, data: bytes, timeout: float | None = None) -> PreparedBatch:
        if self._pool is None:
            raise RuntimeError("the decoder pool is closed")
        parts = self._pool.apply_async(_prepare_in_worker, (data,)).get(timeout)
        spans, entities, links, resources, scopes, keys, lo, hi, rejected, dups = parts[:10]
        messages, counts = parts[10:]
        return PreparedBatch(
            spans=_from_ipc(spans),
            entities=_from_ipc(entities),
            links=_from_ipc(links),
            resources=resources,
            scopes=scopes,
            span_keys=keys,
            min_start=lo,
            max_start=hi,
            rejected=rejected,
            duplicates=dups,
            messages=messages,
            counts=counts,
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None
