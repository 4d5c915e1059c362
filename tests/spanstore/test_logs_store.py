"""Log records in the DuckDB store: the durable path (journal, kill -9, replay between
span batches), the schema migration from version 2, retention and redaction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import grpc
import pytest
from conftest import start_server, wait_until
from logs_support import LOGS_METHOD, SPAN, TRACE, make_logs
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from test_collector_support import make_request

from spanstore.duckdb_store import SCHEMA_VERSION, DuckDBStore
from spanstore.journal import journal_dir
from spanstore.logs import prepare_logs
from spanstore.policy import IngestPolicy, RedactionRule
from spanstore.retention import RetentionPolicy

ROOT = Path(__file__).resolve().parents[2]
#: What a child process needs on sys.path to import these tests' helpers.
IMPORT_PATHS = [str(ROOT), *(str(ROOT / "tests" / d) for d in ("", "spanstore", "collector"))]


def numbered_logs(first: int, count: int, trace: bytes = TRACE) -> ExportLogsServiceRequest:
    request = make_logs(records=count)
    for n, record in enumerate(request.resource_logs[0].scope_logs[0].log_records):
        record.trace_id = trace
        record.attributes.add(key="n").value.int_value = first + n
    return request


def stored_numbers(store: DuckDBStore, trace: bytes = TRACE) -> list[int]:
    return sorted(int(log.attributes["n"]) for log in store.logs_of_traces([trace.hex()]))  # type: ignore[call-overload]


def test_logs_acknowledged_by_a_server_killed_with_sigkill_are_kept(tmp_path: Path) -> None:
    db = tmp_path / "killed.duckdb"
    server = start_server(db)
    try:
        with grpc.insecure_channel(server.addresses["otlp-grpc"]) as channel:
            export = channel.unary_unary(LOGS_METHOD)
            for n in range(10):  # each answered only once it is in the journal
                export(numbered_logs(n * 50, 50).SerializeToString(), timeout=30)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(30)
    finally:
        server.stop()
    assert journal_dir(db).exists()
    with DuckDBStore(db, read_only=True) as store:
        assert stored_numbers(store) == list(range(500))


_CRASHING_WRITER = """
import os, sys
sys.path[:0] = {paths!r}
from spanstore.duckdb_store import DuckDBStore
from tests.conftest import wait_until
from test_collector_support import make_request
from test_logs_store import numbered_logs
store = DuckDBStore({db!r}, rows_per_commit=250, max_commit_delay=3600)
# spans 100, logs 100, spans 100 (the row group of 250 ends inside it), logs 100
assert store.write(make_request(spans=100, first=1)).accepted == 100
assert store.write_logs(numbered_logs(0, 100)).accepted == 100
assert store.write(make_request(spans=100, first=1001)).accepted == 100
assert store.write_logs(numbered_logs(100, 100)).accepted == 100
assert wait_until(lambda: store._loaded_seq == 2, 30), store._loaded_seq
print("acknowledged", flush=True)
os._exit(0)  # no close: the journal has what the commit did not take
"""


def test_logs_between_span_batches_survive_a_crash_once(tmp_path: Path) -> None:
    """A commit that ends inside a span request names the last whole record (the logs
    before it); after the crash the rest is loaded: every span and record, once."""
    db = tmp_path / "mixed.duckdb"
    script = _CRASHING_WRITER.format(paths=IMPORT_PATHS, db=str(db))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "acknowledged" in done.stdout, done.stderr
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM logs").fetchall()[0][0] == 100
    assert con.execute("SELECT count(*) FROM spans").fetchall()[0][0] == 150
    con.close()
    with DuckDBStore(db) as store:
        assert stored_numbers(store) == list(range(200))
        assert store.stats().spans == 200


def test_reads_see_logs_acknowledged_before_them(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "r.duckdb", max_commit_delay=3600) as store:
        store.write_logs(numbered_logs(0, 7))
        assert stored_numbers(store) == list(range(7))  # uncommitted: read beside the table


def _v2_file(path: Path) -> None:
    """A version-2 file: what seqtrace wrote before logs (no ``logs`` table)."""
    with DuckDBStore(path) as store:
        store.write(make_request(spans=4))
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE logs")
    con.execute("UPDATE seqtrace_meta SET value = '2' WHERE key = 'schema_version'")
    con.close()


def test_a_version_2_file_reads_without_logs_and_migrates_on_a_write_open(
    tmp_path: Path,
) -> None:
    db = tmp_path / "v2.duckdb"
    _v2_file(db)
    with DuckDBStore(db, read_only=True) as store:
        assert store.stats().spans == 4
        assert store.logs_of_traces([TRACE.hex()]) == []
        assert store.logs_in_range(0, 1 << 62) == []
        assert store.log_counts() == (0, 0)
    version = duckdb.connect(str(db), read_only=True)
    assert version.execute("SELECT value FROM seqtrace_meta").fetchall()[0][0] == "2"
    version.close()
    with DuckDBStore(db) as store:
        assert store.write_logs(make_logs(3)).accepted == 3
        assert store.log_counts() == (3, 0)
        assert store.stats().spans == 4
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT value FROM seqtrace_meta WHERE key = 'schema_version'")
    assert rows.fetchall()[0][0] == str(SCHEMA_VERSION) == "4"
    con.close()


def test_retention_deletes_old_logs_too(tmp_path: Path) -> None:
    old = make_logs(4)  # 2023
    fresh = make_logs(2)
    for record in fresh.resource_logs[0].scope_logs[0].log_records:
        record.time_unix_nano = time.time_ns()
        record.trace_id = b""
        record.span_id = b""
    policy = RetentionPolicy(max_age_seconds=3600, interval_seconds=0.05)
    with DuckDBStore(tmp_path / "ret.duckdb", retention=policy) as store:
        store.write_logs(old)
        store.write_logs(fresh)
        assert wait_until(lambda: store.log_counts() == (2, 2), 30), store.log_counts()


def test_redaction_rules_apply_to_log_attributes_and_resources(tmp_path: Path) -> None:
    policy = IngestPolicy(
        rules=(
            RedactionRule("cards", ("card.*",), "mask"),
            RedactionRule("hosts", ("host.name",), "drop"),
        )
    )
    request = make_logs(2)
    resource = request.resource_logs[0].resource
    resource.attributes.add(key="host.name").value.string_value = "db-7.internal"
    with DuckDBStore(tmp_path / "red.duckdb", policy=policy) as store:
        store.write_logs(request)
        logs = store.logs_of_traces([TRACE.hex()])
        assert [log.attributes["card.brand"] for log in logs] == ["****", "****"]
        assert all("host.name" not in log.resource_attributes for log in logs)
        assert store.ingest_stats()["policy"]["redacted"] == {"cards": 2, "hosts": 1}
        raw = store._db.cursor().execute("SELECT raw FROM logs").fetchall()
    assert all(b"visa" not in row[0] for row in raw)


def test_prepare_keeps_the_untraced_and_time_less_records() -> None:
    request = make_logs(1)
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    record.time_unix_nano = 0
    record.trace_id = b""
    record.span_id = b""
    observed = record.observed_time_unix_nano
    batch = prepare_logs(request)
    row = batch.logs.to_pylist()[0]
    assert row["trace_id"] is None and row["span_id"] is None
    assert row["time_unix_nano"] == observed and row["observed_unix_nano"] == observed
    assert row["time_unset"]
    assert SPAN not in row["raw"] and TRACE not in row["raw"]


def test_log_records_left_in_a_journal_are_loaded_by_a_read_only_open(tmp_path: Path) -> None:
    db = tmp_path / "left.duckdb"
    script = (
        f"import os, sys; sys.path[:0] = {IMPORT_PATHS!r}\n"
        "from spanstore.duckdb_store import DuckDBStore\n"
        "from test_logs_store import numbered_logs\n"
        f"s = DuckDBStore({str(db)!r}, max_commit_delay=3600)\n"
        "assert s.write_logs(numbered_logs(0, 30)).accepted == 30\n"
        "os._exit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with DuckDBStore(db, read_only=True) as store:
        assert stored_numbers(store) == list(range(30))
    assert not os.path.exists(journal_dir(db))


def test_logs_decoded_in_a_decoder_process_are_the_same(tmp_path: Path) -> None:
    """With decoder processes (the server's default), a logs request is decoded in one of
    them, and the journal keeps the worker's own record bytes."""
    from spanstore.base import InvalidRequest

    request = make_logs(4)
    with DuckDBStore(tmp_path / "dec.duckdb", decoder_processes=1) as store:
        result = store.write_logs(request.SerializeToString())
        assert result.accepted == 4
        assert store.logs_request(TRACE.hex()) == request
        with pytest.raises(InvalidRequest, match="ExportLogsServiceRequest"):
            store.write_logs(b"\xff\xff\xff\xff")
        assert store.write(make_request(spans=3)).accepted == 3  # spans still go through
        assert store.stats().spans == 3
