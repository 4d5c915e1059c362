"""Decoding OTLP requests in worker processes, so ingest uses every core.

Turning a request into columns (upb's parse, the C scanner ``spanstore.decode.scan``, and
the per-resource work in Python) holds the interpreter lock; in the server's process it
would compete with the receivers and the writer (docs/performance.md). A small pool of
worker processes does that work instead: the receiver hands over the request's
serialized bytes, a worker parses and prepares it, and the batch comes back in the
journal's encoding (``spanstore.wire``, cheap to move). The store's writer thread then
only appends.

Each worker has a pipe of its own and serves one request at a time; the thread that
needs a batch borrows an idle worker, writes the request's bytes and reads the answer.
No helper threads, no pickling of the request: ``multiprocessing.Pool``'s task, result
and worker-maintenance threads took a large share of the server's interpreter lock
(docs/performance.md), and the lock is what the receivers and the writer wait for.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import threading
import time
from typing import Any, Final

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from spanstore.base import InvalidRequest, StoreUnavailable
from spanstore.decode.prepare import KeyClassifier, PreparedBatch, prepare_request
from spanstore.decode.scan import prepare_fast
from spanstore.logs import LogBatch, decode_log_batch, encode_log_batch, prepare_logs
from spanstore.nopandas import keep_pandas_out
from spanstore.policy import IngestPolicy, PolicyEngine
from spanstore.wire import decode_tables, encode_batch

__all__ = ["DecoderPool", "prepare_serialized"]

_worker_keys: KeyClassifier | None = None
#: Marks a logs request sent to a worker: no serialized ExportTraceServiceRequest starts
#: with 0xff (its only field is 1, tag 0x0a).
LOGS_TAG: Final = b"\xffLOGS"
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
    """Parse a serialized ExportTraceServiceRequest and prepare its batch.

    upb parses (and so validates) every request; the C scanner then does the per-span
    work where it gives the same batch (``spanstore.decode.scan``), prepare_request the rest.
    """
    try:
        request = ExportTraceServiceRequest.FromString(data)
    except DecodeError as exc:
        raise InvalidRequest(f"malformed ExportTraceServiceRequest: {exc}") from None
    batch = prepare_fast(data, request, keys, policy)
    if batch is not None:
        return batch
    return prepare_request(request, keys, policy)


def _init_worker(
    entity_keys: frozenset[str], policy: IngestPolicy | None = None, niceness: int = 0
) -> None:
    import gc

    keep_pandas_out()
    # Ctrl-C reaches the whole process group; the server decides when workers stop (it
    # closes the pool after draining), so a worker must not die with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if niceness:
        # Decoding is most of ingest's CPU: under a flood, a read in the server's process
        # then runs first instead of sharing the cores with the workers (ingest takes
        # the CPU back as soon as the read is done; nothing is dropped).
        os.nice(niceness)
    global _worker_keys, _worker_policy
    _worker_keys = KeyClassifier(entity_keys)
    _worker_policy = PolicyEngine(policy) if policy is not None else None
    # The worker allocates many short-lived objects and keeps almost nothing: collect the
    # young generation rarely (its scans slow decoding down, docs/performance.md).
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _prepare_in_worker(data: bytes) -> tuple[Any, ...]:
    """The batch as plain values: Arrow tables travel as IPC streams (``spanstore.wire``,
    the journal's own format, so the server journals these very bytes), because
    unpickling a pyarrow Table imports pandas (seconds, and tens of MiB) in the server."""
    assert _worker_keys is not None
    if data.startswith(LOGS_TAG):  # a logs request (#18): its journal record comes back
        logs = prepare_logs(data[len(LOGS_TAG) :], _worker_policy)
        return (encode_log_batch(logs), logs.rejected, logs.messages, logs.counts)
    batch = prepare_serialized(data, _worker_keys, _worker_policy)
    return (
        encode_batch(batch),
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


def _worker_main(
    conn: multiprocessing.connection.Connection,
    entity_keys: frozenset[str],
    policy: IngestPolicy | None,
    niceness: int = 0,
) -> None:
    """A worker: say ready, then answer each request on ``conn`` until an empty one."""
    _init_worker(entity_keys, policy, niceness)
    try:
        conn.send(_READY)
    except (EOFError, OSError):
        return  # the server stopped while this worker started
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            return  # the server went away
        if not data:
            return
        try:
            answer: tuple[bool, Any] = (True, _prepare_in_worker(data))
        except Exception as exc:  # sent back and raised in the server, as Pool did
            answer = (False, exc)
        try:
            conn.send(answer)
        except (EOFError, OSError):
            return
        except Exception as exc:  # an exception that does not pickle
            conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


_READY: Final = "ready"
#: Seconds to wait for a worker's answer when the caller sets no bound.
_ANSWER_TIMEOUT: Final = 120.0


def _start_forkserver() -> None:
    """Start the fork server deaf to Ctrl-C and blind to the working directory.

    Ctrl-C: the fork server imports its preload (pyarrow, numpy: about a second) before it
    starts ignoring SIGINT itself, and Ctrl-C reaches the whole process group: a Ctrl-C
    while ``seqtrace serve`` starts printed a KeyboardInterrupt traceback from it. The
    launch runs with SIGINT *blocked* in this thread: the fork server inherits the blocked
    mask and discards the pending signal when it starts ignoring SIGINT, while this
    process still gets it (another thread takes it, or this one once unblocked). Ignoring
    SIGINT here instead lost a Ctrl-C that came during the launch: the server started
    and ran on (a test waited for it in vain, once in ~60 starts).

    Working directory: the fork server is ``python -c ...``, which puts the working
    directory first on ``sys.path`` (Python 3.11 drops the parent's path it is given), so
    a ``spanstore/`` folder there (another checkout) would be imported by every decoder
    instead of this one. ``PYTHONSAFEPATH`` keeps it off.
    """
    from multiprocessing import forkserver, resource_tracker

    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    safe_path = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        # The fork server starts the resource tracker first, whose own start (bpo-33613,
        # the same mask) unblocks SIGINT when done: start it here, then block again.
        resource_tracker.ensure_running()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        forkserver.ensure_running()
    finally:
        if safe_path is None:
            del os.environ["PYTHONSAFEPATH"]
        else:
            os.environ["PYTHONSAFEPATH"] = safe_path
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


class _Worker:
    def __init__(
        self,
        context: Any,
        entity_keys: frozenset[str],
        policy: IngestPolicy | None,
        niceness: int = 0,
    ):
        self.conn, child = context.Pipe(duplex=True)
        self.process = context.Process(
            target=_worker_main, args=(child, entity_keys, policy, niceness), daemon=True
        )
        self.process.start()
        child.close()

    def wait_ready(self, deadline: float) -> None:
        """Block until the worker has started, or raise StoreUnavailable."""
        try:
            if self.conn.poll(max(0.0, deadline - time.monotonic())) and self.conn.recv() == _READY:
                return
        except (EOFError, OSError):
            pass
        self.stop(0.0)
        code = self.process.exitcode
        raise StoreUnavailable(
            f"the decoder processes did not start within {_START_TIMEOUT:.0f} s"
            if code is None
            else f"the decoder processes did not start (a worker exited with code {code})"
        )

    def stop(self, grace: float) -> None:
        with contextlib.suppress(OSError, EOFError, ValueError):
            self.conn.send_bytes(b"")
        self.process.join(grace)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5.0)
        with contextlib.suppress(OSError, EOFError, ValueError):
            self.conn.close()


class DecoderPool:
    """Worker processes that turn serialized requests into prepared batches."""

    def __init__(
        self,
        workers: int | None = None,
        entity_keys: frozenset[str] = frozenset(),
        policy: IngestPolicy | None = None,
        niceness: int = 0,
    ):
        self.workers = workers or min(4, os.cpu_count() or 1)
        self._niceness = niceness
        self._context = multiprocessing.get_context(_START_METHOD)
        if _START_METHOD == "forkserver":
            self._context.set_forkserver_preload(["spanstore.decode.pool"])
            _start_forkserver()
        self._entity_keys = entity_keys
        self._policy = policy
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        # Start every worker now (imports take a second or two), not on the first export;
        # a worker that cannot start is an error, not a hang.
        deadline = time.monotonic() + _START_TIMEOUT
        try:
            for _ in range(self.workers):
                self._all.append(_Worker(self._context, entity_keys, policy, niceness))
            for worker in self._all:
                worker.wait_ready(deadline)
        except BaseException:
            for worker in self._all:
                worker.stop(0.0)
            raise
        for worker in self._all:
            self._idle.put(worker)

    def _replace(self, worker: _Worker) -> None:
        """Stop a worker whose state is unknown (timed out, died) and start another."""
        worker.stop(0.0)
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
            if self._closed:
                return
        try:
            fresh = _Worker(self._context, self._entity_keys, self._policy, self._niceness)
            fresh.wait_ready(time.monotonic() + _START_TIMEOUT)
        except StoreUnavailable:
            return  # one worker fewer; the others go on
        with self._lock:
            self._all.append(fresh)
        self._idle.put(fresh)

    def prepare_logs(self, data: bytes, timeout: float | None = None) -> LogBatch:
        """The batch of one serialized ExportLogsServiceRequest (as :meth:`prepare`)."""
        record, rejected, messages, counts = self._answer(LOGS_TAG + data, timeout)
        batch = decode_log_batch(record)
        batch.rejected, batch.messages, batch.counts, batch.wire = (
            rejected,
            messages,
            counts,
            record,
        )
        return batch

    def prepare(self, data: bytes, timeout: float | None = None) -> PreparedBatch:
        """The prepared batch of one serialized request. Raises InvalidRequest for a
        malformed one, and ``multiprocessing.TimeoutError`` when no answer came within
        ``timeout`` seconds."""
        parts = self._answer(data, timeout)
        wire, resources, scopes, keys, lo, hi, rejected, dups, messages, counts = parts
        spans, entities, links = decode_tables(wire, 3)
        return PreparedBatch(
            spans=spans,
            entities=entities,
            links=links,
            resources=resources,
            scopes=scopes,
            span_keys=keys,
            min_start=lo,
            max_start=hi,
            rejected=rejected,
            duplicates=dups,
            messages=messages,
            counts=counts,
            wire=wire,
        )

    def _answer(self, data: bytes, timeout: float | None) -> tuple[Any, ...]:
        """A worker's answer to one request's bytes (see :meth:`prepare`)."""
        if self._closed:
            raise RuntimeError("the decoder pool is closed")
        if timeout is None:
            timeout = _ANSWER_TIMEOUT  # never wait forever (every worker may have died)
        deadline = time.monotonic() + timeout
        try:
            worker = self._idle.get(timeout=timeout)
        except queue.Empty:
            raise multiprocessing.TimeoutError from None
        try:
            worker.conn.send_bytes(data)
            if not worker.conn.poll(max(0.0, deadline - time.monotonic())):
                # Its answer would reach the next borrower: replace it.
                self._replace(worker)
                raise multiprocessing.TimeoutError
            ok, parts = worker.conn.recv()
        except (EOFError, OSError):
            self._replace(worker)
            raise StoreUnavailable("a decoder process stopped; retry") from None
        self._idle.put(worker)
        if not ok:
            raise parts
        answer: tuple[Any, ...] = parts
        return answer

    def close(self, grace: float = 10.0) -> None:
        """Stop the workers, letting the requests they are preparing finish first."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers = list(self._all)
        deadline = time.monotonic() + grace
        idle: list[_Worker] = []
        while len(idle) < len(workers):
            try:
                idle.append(self._idle.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
        for worker in workers:
            worker.stop(1.0 if worker in idle else 0.0)
