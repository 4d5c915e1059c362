"""`seqtrace serve`: the query API, ingest through it, tokens, shutdown, durability."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from analyzer.source import HttpSource, SourceError
from spanstore.duckdb_store import DuckDBStore
from tests.conftest import SEQTRACE, Server, sample_files, start_server


def get(url: str, token: str | None = None, method: str = "GET") -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def load_through(server: Server, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SEQTRACE, "load", "--api", server.api, *extra, *map(str, sample_files())],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_answers_the_query_api(server: Server) -> None:
    assert load_through(server).returncode == 0
    source = HttpSource(server.api)
    assert source.stats()["spans"] == 500
    assert source.healthz()["status"] == "ok"
    values = source.entities("order.id")["values"]
    assert "ORD-1002" in {v["value"] for v in values}
    recent = source.recent_traces(5)["traces"]
    assert len(recent) == 5 and all(len(t["trace_id"]) == 32 for t in recent)
    otlp = source.trace_otlp(recent[0]["trace_id"])
    assert otlp["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] == recent[0]["trace_id"]
    flat = source.trace(recent[0]["trace_id"])
    assert len(flat["spans"]) == recent[0]["spans"]
    # `limit` lists fewer failing traces (the overview asks 0: the counts alone).
    report = source.failures(0, 1 << 62)
    failing = report["summary"]["partial"] + report["summary"]["failed"]
    assert failing >= 2 and len(report["traces"]) == failing
    counts = source.failures(0, 1 << 62, limit=0)
    assert counts["summary"]["traces"] == report["summary"]["traces"]
    assert counts["traces"] == [] and counts["omitted_traces"] == failing
    assert len(source.failures(0, 1 << 62, limit=1)["traces"]) == 1


def test_api_errors_are_json(server: Server) -> None:
    assert get(f"{server.api}/api/v1/nope") == (404, {"error": "no such endpoint: /api/v1/nope"})
    status, body = get(f"{server.api}/api/v1/stats", method="DELETE")
    assert status == 405 and "not allowed" in str(body["error"])
    status, body = get(f"{server.api}/api/v1/traces/not-hex")
    assert status == 400 and "32 hex digits" in str(body["error"])
    status, body = get(f"{server.api}/api/v1/traces/{'ab' * 16}")
    assert status == 404
    status, body = get(f"{server.api}/api/v1/failures?from=yesterday")
    assert status == 400 and "from" in str(body["error"])
    status, body = get(f"{server.api}/api/v1/failures?limit=many")
    assert status == 400 and "limit" in str(body["error"])


def test_tokens_guard_reads_and_writes(tmp_path: Path) -> None:
    srv = start_server(
        tmp_path / "t.duckdb", "--ingest-token", "in-secret", "--read-token", "rd-secret"
    )
    try:
        assert load_through(srv).returncode == 2  # no ingest token
        assert load_through(srv, "--ingest-token", "wrong").returncode == 2
        assert load_through(srv, "--ingest-token", "in-secret").returncode == 0
        assert get(f"{srv.api}/api/v1/stats")[0] == 401
        assert get(f"{srv.api}/api/v1/stats", "in-secret")[0] == 401  # ingest cannot read
        status, body = get(f"{srv.api}/api/v1/stats", "rd-secret")
        assert status == 200 and body["spans"] == 500
        with pytest.raises(SourceError, match="read token"):
            HttpSource(srv.api, "wrong").stats()
    finally:
        srv.stop()


def test_sigterm_drains_and_exits_0(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    srv = start_server(db)
    assert load_through(srv).returncode == 0
    assert srv.stop(signal.SIGTERM) == 0
    with DuckDBStore(db, read_only=True) as store:
        assert store.stats().spans == 500


def test_acknowledged_spans_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "k.duckdb"
    srv = start_server(db)
    assert load_through(srv).returncode == 0  # every request acknowledged
    srv.stop(signal.SIGKILL)
    with DuckDBStore(db, read_only=True) as store:
        assert store.stats().spans == 500


def test_cli_reads_through_a_running_server_while_it_holds_the_file(tmp_path: Path) -> None:
    db = tmp_path / "held.duckdb"
    srv = start_server(db)
    try:
        load_through(srv)
        env = {**os.environ, "SEQTRACE_API": srv.api}
        out = subprocess.run(
            [*SEQTRACE, "stats", "--json"], capture_output=True, text=True, env=env
        )
        assert out.returncode == 0 and json.loads(out.stdout)["spans"] == 500
        # the file itself is locked by the server: a direct open says what to do instead
        direct = subprocess.run(
            [*SEQTRACE, "stats", "--db", str(db)], capture_output=True, text=True
        )
        assert direct.returncode == 2 and "query API" in direct.stderr
        # so does the UI, at once, instead of starting pages that can only show the error
        ui = subprocess.run(
            [*SEQTRACE, "ui", "--db", str(db), "--ui-port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ui.returncode == 2 and "query API" in ui.stderr, ui.stderr
        assert len(ui.stderr.strip().splitlines()) == 1
    finally:
        srv.stop()


def test_reads_stay_fast_while_a_writer_floods(tmp_path: Path) -> None:
    """Reads through the API keep answering, without lock errors, under heavy ingest."""
    srv = start_server(tmp_path / "f.duckdb")
    try:
        http = srv.addresses["otlp-http"]
        stop_at = time.monotonic() + 6
        writer = subprocess.Popen(
            [*SEQTRACE[:1], "-c", FLOOD.format(http=http, seconds=6)],
            stdout=subprocess.PIPE,
            text=True,
        )
        latencies = []
        source = HttpSource(srv.api)
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            source.stats()
            source.recent_traces(20)
            latencies.append(time.perf_counter() - t0)
        sent = int((writer.communicate(timeout=60)[0] or "0").strip())
        assert sent > 10_000
        assert source.stats()["spans"] == sent
        latencies.sort()
        assert len(latencies) > 10
        assert latencies[len(latencies) // 2] < 1.0, latencies
    finally:
        srv.stop()


FLOOD = """
import os, time, urllib.request
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
deadline = time.monotonic() + {seconds}
sent = 0
while time.monotonic() < deadline:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "flood"
    ss = rs.scope_spans.add()
    for i in range(500):
        s = ss.spans.add(trace_id=os.urandom(16), span_id=os.urandom(8), name="GET /x", kind=2)
        s.start_time_unix_nano = time.time_ns()
        s.end_time_unix_nano = s.start_time_unix_nano + 1000
        s.attributes.add(key="order.id").value.string_value = "ORD-%d" % i
    r = urllib.request.Request("http://{http}/v1/traces", data=req.SerializeToString(),
                               headers={{"Content-Type": "application/x-protobuf"}})
    urllib.request.urlopen(r, timeout=30).read()
    sent += 500
print(sent)
"""
