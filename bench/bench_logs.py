"""OTLP log ingest and the entity log query (issue 18).

Ingest: a real `seqtrace serve` (its defaults) in one process, a client in another that
sends pre-serialised 512-record ``ExportLogsServiceRequest`` messages (six attributes and
a 100-byte body per record, records spread over traces) as raw bytes over several gRPC
channels for ``--duration`` seconds. The rate is records acknowledged per second after a
warm-up (an acknowledgement means the records are in the fsynced journal). Then the
server stops (it commits and checkpoints) and the database file's size divided by the
records in it is the bytes per record on disk.

Query: the same server is started again on that database with an entity of 100 traces
(spans with ``order.id=ORD-LOGS``) whose spans carry ``--entity-records`` log records
among the others; ``GET /api/v1/logs?entity=order.id=ORD-LOGS`` is timed (median of
``--runs``, after one warm-up call).

    .venv/bin/python bench/bench_logs.py                      # 30 s ingest, then the query
    .venv/bin/python bench/bench_logs.py --duration 60 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOGS_EXPORT = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
TRACES_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TARGETS = {"records_per_s": 50_000, "bytes_per_record": 120.0, "entity_query_ms": 300.0}
BASE_NS = 1_795_600_000_000_000_000  # 2026-11-25


def build_requests(count: int, records: int, seed: int = 7) -> list[bytes]:
    """``count`` distinct serialised requests of ``records`` records each."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
    )

    rng = random.Random(seed)
    services = [f"svc-{n}" for n in range(8)]
    words = [
        "charge",
        "order",
        "cart",
        "stock",
        "payment",
        "retry",
        "timeout",
        "user",
        "session",
        "cache",
    ]
    out = []
    for n in range(count):
        request = ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        service = services[n % len(services)]
        resource_logs.resource.attributes.add(key="service.name").value.string_value = service
        resource_logs.resource.attributes.add(key="host.name").value.string_value = "node-3"
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = f"shop.{service}"
        t = BASE_NS + n * 1_000_000_000
        for r in range(records):
            record = scope_logs.log_records.add()
            record.time_unix_nano = t + r * 1_000_000
            record.observed_time_unix_nano = record.time_unix_nano + 150_000
            number = rng.choice((9, 9, 9, 9, 13, 17))
            record.severity_number = number
            record.severity_text = {9: "INFO", 13: "WARN", 17: "ERROR"}[number]
            body = " ".join(rng.choice(words) for _ in range(16))
            record.body.string_value = (body + " " + "x" * 100)[:100]
            record.trace_id = rng.getrandbits(128).to_bytes(16, "big")
            record.span_id = rng.getrandbits(64).to_bytes(8, "big")
            record.flags = 1
            attrs = record.attributes
            attrs.add(key="code.function").value.string_value = rng.choice(words) + "_handler"
            attrs.add(key="code.lineno").value.int_value = rng.randrange(1, 900)
            attrs.add(key="thread.name").value.string_value = f"worker-{rng.randrange(8)}"
            attrs.add(key="user.id").value.string_value = f"U{rng.randrange(100_000):06d}"
            attrs.add(key="http.route").value.string_value = "/api/" + rng.choice(words)
            attrs.add(key="duration_ms").value.double_value = round(rng.random() * 300, 3)
        out.append(request.SerializeToString())
    return out


def entity_requests(records: int) -> tuple[bytes, list[bytes]]:
    """An entity's spans (100 traces of 5 spans, order.id=ORD-LOGS) and ``records`` log
    records spread over those spans, as serialised requests."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    rng = random.Random(11)
    spans_request = ExportTraceServiceRequest()
    resource_spans = spans_request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "orders"
    scope = resource_spans.scope_spans.add()
    owners: list[tuple[bytes, bytes, int]] = []
    for t in range(100):
        trace_id = rng.getrandbits(128).to_bytes(16, "big")
        start = BASE_NS + t * 60_000_000_000
        parent = b""
        for s in range(5):
            span = scope.spans.add()
            span.trace_id = trace_id
            span.span_id = rng.getrandbits(64).to_bytes(8, "big")
            span.parent_span_id = parent
            span.name = f"step {s}"
            span.kind = 2 if s == 0 else 3
            span.start_time_unix_nano = start + s * 10_000_000
            span.end_time_unix_nano = start + 500_000_000 - s * 10_000_000
            span.attributes.add(key="order.id").value.string_value = "ORD-LOGS"
            owners.append((trace_id, span.span_id, span.start_time_unix_nano))
            parent = span.span_id
    logs: list[bytes] = []
    per_request = 500
    for first in range(0, records, per_request):
        request = ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.add(key="service.name").value.string_value = "orders"
        scope_logs = resource_logs.scope_logs.add()
        for n in range(first, min(records, first + per_request)):
            trace_id, span_id, start = owners[n % len(owners)]
            record = scope_logs.log_records.add()
            record.time_unix_nano = start + 1_000 * (n // len(owners))
            record.severity_number = 9
            record.severity_text = "INFO"
            record.body.string_value = f"entity record {n}"
            record.trace_id = trace_id
            record.span_id = span_id
            record.attributes.add(key="n").value.int_value = n
        logs.append(request.SerializeToString())
    return spans_request.SerializeToString(), logs


# ---------------------------------------------------------------------------- processes


def start_server(db: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    command = [sys.executable, "-m", "seqtrace.cli", "serve", "--db", str(db)]
    command += ["--grpc-port", "0", "--http-port", "0", "--api-port", "0"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    addresses: dict[str, str] = {}
    assert process.stdout is not None
    while len(addresses) < 3:
        line = process.stdout.readline()
        if not line:
            raise SystemExit("seqtrace serve exited")
        match = re.match(r"seqtrace: listening (\S+)=(\S+)", line)
        if match:
            addresses[match.group(1)] = match.group(2)
    return process, addresses


def stop_server(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(300)


def send(address: str, requests: list[bytes], duration: float, streams: int) -> dict[str, Any]:
    import grpc

    records_per_request = 512
    done = [0] * streams
    failed = [0] * streams
    stop = time.monotonic() + duration
    warm = time.monotonic() + min(5.0, duration / 5)
    counted_from = [0] * streams

    def run(i: int) -> None:
        with grpc.insecure_channel(address) as channel:
            export = channel.unary_unary(LOGS_EXPORT)
            n = i
            while time.monotonic() < stop:
                try:
                    export(requests[n % len(requests)], timeout=30)
                    done[i] += records_per_request
                except grpc.RpcError:
                    failed[i] += 1
                if not counted_from[i] and time.monotonic() >= warm:
                    counted_from[i] = done[i]
                n += streams

    threads = [threading.Thread(target=run, args=(i,)) for i in range(streams)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - max(started, warm)
    counted = sum(done) - sum(counted_from)
    return {
        "records_acked": sum(done),
        "records_per_s": round(counted / elapsed),
        "refused_requests": sum(failed),
        "seconds": round(elapsed, 1),
    }


def timed_get(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    json.loads(body)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--templates", type=int, default=200)
    parser.add_argument("--entity-records", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep-db", type=Path)
    args = parser.parse_args()

    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
    db = args.keep_db or workdir / "logs.duckdb"
    requests = build_requests(args.templates, 512)
    process, addresses = start_server(db)
    try:
        ingest = send(addresses["otlp-grpc"], requests, args.duration, args.streams)
    finally:
        stop_server(process)
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    stored = con.execute("SELECT count(*) FROM logs").fetchall()[0][0]
    con.close()
    size = db.stat().st_size + sum(
        p.stat().st_size for p in db.parent.glob(db.name + ".wal") if p.exists()
    )
    ingest["records_stored"] = stored
    ingest["bytes_per_record"] = round(size / max(stored, 1), 1)
    ingest["file_mib"] = round(size / 2**20, 1)

    import grpc

    spans, entity_logs = entity_requests(args.entity_records)
    process, addresses = start_server(db)
    try:
        with grpc.insecure_channel(addresses["otlp-grpc"]) as channel:
            channel.unary_unary(TRACES_EXPORT)(spans, timeout=60)
            for request in entity_logs:
                channel.unary_unary(LOGS_EXPORT)(request, timeout=60)
        url = f"http://{addresses['api']}/api/v1/logs?entity=order.id%3DORD-LOGS"
        with urllib.request.urlopen(url, timeout=120) as response:
            got = len(json.loads(response.read())["logs"])
        times = [timed_get(url) for _ in range(args.runs)]
    finally:
        stop_server(process)
    query = {
        "entity_records": got,
        "entity_query_ms_median": round(statistics.median(times), 1),
        "entity_query_ms_min": round(min(times), 1),
        "entity_query_ms_max": round(max(times), 1),
    }
    report = {
        "ingest": ingest,
        "query": query,
        "targets": TARGETS,
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "cores": os.cpu_count(),
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
