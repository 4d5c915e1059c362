"""The threads that take spans in run nicer than the rest of the server (Linux).

``limits.ingest_niceness``: under a flood the reads' threads (the UI, the query API) get the
CPU before the receivers' request threads and the store's writer; each of those threads is
niced on its own, and no other thread of the process changes."""

from __future__ import annotations

import http.client
import os
import threading
from pathlib import Path

import grpc
from test_collector_support import EXPORT, make_request, running_collector

from spanstore.duckdb_store import DuckDBStore
from spanstore.niceness import lower_thread_priority
from tests.conftest import wait_until


def niceness_of(thread: threading.Thread) -> int:
    assert thread.native_id is not None
    return os.getpriority(os.PRIO_PROCESS, thread.native_id)


def threads_named(part: str, started_after: frozenset[int]) -> list[threading.Thread]:
    """Live threads with ``part`` in their name, less those in ``started_after`` (the
    threads alive before: an earlier test's receiver pool may linger until collected)."""
    return [
        thread
        for thread in threading.enumerate()
        if part in thread.name and thread.ident not in started_after
    ]


def test_request_threads_and_the_writer_run_nicer_and_nothing_else(tmp_path: Path) -> None:
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    before = frozenset(t.ident for t in threading.enumerate() if t.ident is not None)
    store = DuckDBStore(tmp_path / "nice.duckdb", writer_niceness=4)
    try:
        with running_collector(store, thread_niceness=6) as collector:
            addresses = collector.addresses
            with grpc.insecure_channel(addresses["otlp-grpc"]) as channel:
                channel.unary_unary(EXPORT)(make_request(spans=3).SerializeToString(), timeout=30)
            # An OTLP/HTTP connection kept open: its thread is alive while we look.
            connection = http.client.HTTPConnection(addresses["otlp-http"], timeout=30)
            try:
                body = make_request(spans=2, first=10).SerializeToString()
                headers = {"Content-Type": "application/x-protobuf"}
                connection.request("POST", "/v1/traces", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                assert response.status == 200
                http_threads = threads_named("process_request_thread", before)
                assert http_threads, "the HTTP connection has a thread of its own"
                assert {niceness_of(t) for t in http_threads} == {min(19, mine + 6)}
            finally:
                connection.close()
            assert threads_named("otlp-grpc_", before), (
                "the gRPC request ran on the receiver's pool"
            )
            # The pool may have just started another thread that is still in its
            # initializer (which nices it before it takes any request): give it a moment.
            assert wait_until(
                lambda: (
                    {niceness_of(t) for t in threads_named("otlp-grpc_", before)}
                    == {min(19, mine + 6)}
                ),
                5,
            ), {t.name: niceness_of(t) for t in threads_named("otlp-grpc_", before)}
            (writer,) = threads_named("seqtrace-writer", before)
            assert niceness_of(writer) == min(19, mine + 4)
            # Every span was written (a nicer writer is no slower when nothing competes).
            store.flush()
            assert store.stats().spans == 5
        assert os.getpriority(os.PRIO_PROCESS, 0) == mine  # this (reading) thread as it was
        others = [
            t
            for t in threading.enumerate()
            if t.name == "MainThread" or t.name.startswith("seqtrace-read")
        ]
        assert {niceness_of(t) for t in others} == {mine}
    finally:
        store.close()


def test_a_thread_made_nicer_leaves_its_neighbours_alone() -> None:
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    seen: dict[str, int] = {}
    done = threading.Event()

    def nice_one() -> None:
        assert lower_thread_priority(3)
        assert lower_thread_priority(0)  # nothing to do: still fine
        seen["nice"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        done.wait(10)

    thread = threading.Thread(target=nice_one)
    thread.start()
    try:
        while "nice" not in seen and thread.is_alive():
            threading.Event().wait(0.01)
        assert seen["nice"] == min(19, mine + 3)
        assert os.getpriority(os.PRIO_PROCESS, 0) == mine
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
    finally:
        done.set()
        thread.join()
