"""Sustained OTLP/gRPC ingest benchmark (issue 2).

Three processes on this machine: this orchestrator, a server (the real ``Collector``
either over a writer that stores nothing — the receivers' ceiling — or over the real
``DuckDBStore``) and a client that sends pre-serialised 512-span requests over several
concurrent gRPC channels as raw bytes, so the client spends little CPU per span.

Phases per mode:
  1. sustained: every client stream sends back-to-back for ``--duration`` seconds; the
     rate is acked spans per second after a warm-up (acks come after the journal's fsync).
  (then ``--settle`` seconds, 5 by default, for the store to take the backlog the
  sustained phase left: acknowledged batches its writer has not appended yet)
  2. latency: an open-loop schedule at half the sustained rate for ``--latency-duration``
     seconds; latency is measured from each request's scheduled send time, so a stalled
     server cannot hide its delay (no coordinated omission).
Then the server stops (drain, close, checkpoint) and reports its peak RSS (VmHWM); the
orchestrator counts the spans in the database and measures bytes per span on disk.

    .venv/bin/python bench/bench_ingest.py                 # both modes, table + JSON
    .venv/bin/python bench/bench_ingest.py --modes store --duration 30 --json out.json
    .venv/bin/python bench/bench_ingest.py --modes store --keep-db /tmp/b.duckdb

The store server takes `seqtrace serve`'s defaults; the environment can change them:
SEQTRACE_DECODERS (decoder processes), SEQTRACE_DECODER_NICENESS (their niceness, default
10 as `limits.decoder_niceness`), SEQTRACE_INGEST_NICENESS (the writer's and the request
threads', default 10 as `limits.ingest_niceness`), SEQTRACE_DB_MEMORY_MIB (DuckDB's memory
limit), SEQTRACE_MAX_QUEUE_MIB (the store's queue budget), SEQTRACE_MAX_INFLIGHT_MIB (the
receivers' budget for request bodies).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#: The sustained client's timeline: spans acknowledged per slice of this many seconds.
TIMELINE_STEP_S = 0.1
TARGETS = {"spans_per_s": 50_000, "p99_ms": 150.0, "bytes_per_span": 100.0, "peak_rss_mib": 300.0}


# ---------------------------------------------------------------------------- workload


class Template(NamedTuple):
    """A serialised request and where to stamp it: the byte offsets of every trace id
    and, for a live flood, of every span's start and end time (fixed64, little-endian)."""

    payload: bytes
    id_offsets: list[int]
    time_offsets: list[int]
    built_unix_nano: int


def build_templates(
    count: int, spans: int, attrs: int, seed: int = 7, live: bool = False
) -> list[Template]:
    """``count`` serialised requests of ``spans`` spans, with the byte offsets of every
    trace id so each send can stamp fresh ids in place (the store drops duplicates).

    By default every span starts at a random moment of the hour before the templates were
    built, and the ids differ by a per-send counter (what issue 2's ingest figures used).
    ``live``: as traffic looks: a trace's spans start within a second of its root, the
    roots 1-3 s before the send (each send moves its times to now), and
    each send's ids are random, so neither the ids nor the times of what is written
    follow an order the other does not."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.trace.v1 import trace_pb2

    rng = random.Random(seed)
    services = [
        ("frontend", "GET /api/cart", "http"),
        ("checkout", "POST /api/checkout", "http"),
        ("payments", "charge", "grpc"),
        ("inventory", "SELECT stock", "db"),
    ]
    routes = ["/api/cart", "/api/checkout", "/api/orders/{id}", "/api/products", "/healthz"]
    agents = [
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
        "okhttp/4.12.0",
        "python-requests/2.32.3",
    ]
    spans_per_trace = 32
    templates = []
    base_ns = time.time_ns() - 3600 * 10**9
    for _ in range(count):
        request = ExportTraceServiceRequest()
        per_service = spans // len(services)
        trace_ids = [os.urandom(16) for _ in range(max(1, spans // spans_per_trace))]
        built = time.time_ns()
        trace_starts = [built - rng.randint(1_000_000_000, 3_000_000_000) for _ in trace_ids]
        times: list[int] = []
        span_no = 0
        for service, operation, flavour in services:
            resource_spans = request.resource_spans.add()
            resource = resource_spans.resource
            for key, value in (
                ("service.name", service),
                ("service.version", "1.8.3"),
                ("deployment.environment", "prod"),
                ("host.name", f"{service}-7d9f8-{rng.randint(0, 3)}"),
                ("telemetry.sdk.language", "python"),
            ):
                resource.attributes.add(key=key).value.string_value = value
            scope_spans = resource_spans.scope_spans.add()
            scope_spans.scope.name = f"opentelemetry.instrumentation.{flavour}"
            scope_spans.scope.version = "0.48b0"
            for _ in range(per_service if service != services[-1][0] else spans - span_no):
                trace_index = span_no // spans_per_trace % len(trace_ids)
                span = scope_spans.spans.add()
                span.trace_id = trace_ids[trace_index]
                span.span_id = os.urandom(8)
                if span_no % spans_per_trace:
                    span.parent_span_id = os.urandom(8)
                span.name = operation
                span.kind = (
                    trace_pb2.Span.SPAN_KIND_SERVER
                    if flavour == "http"
                    else (trace_pb2.Span.SPAN_KIND_CLIENT)
                )
                if live:
                    trace_start = trace_starts[trace_index]
                    later = rng.randint(1_000_000, 1_000_000_000) if span.parent_span_id else 0
                    span.start_time_unix_nano = trace_start + later
                else:
                    span.start_time_unix_nano = base_ns + rng.randint(0, 3_600_000_000_000)
                span.end_time_unix_nano = span.start_time_unix_nano + rng.randint(
                    50_000, 90_000_000
                )
                times += (span.start_time_unix_nano, span.end_time_unix_nano)
                status = 200 if rng.random() > 0.03 else rng.choice([500, 503, 404])
                values: list[tuple[str, Any]] = [
                    ("http.request.method", rng.choice(["GET", "POST"])),
                    ("http.route", rng.choice(routes)),
                    ("http.response.status_code", status),
                    ("server.address", f"{service}.shop.svc.cluster.local"),
                    ("server.port", 8080),
                    ("user_agent.original", rng.choice(agents)),
                    ("customer.id", f"cust-{rng.randint(1, 5000)}"),
                    ("thread.id", rng.randint(1, 64)),
                    ("net.sock.peer.addr", f"10.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}"),
                    ("app.cart.items", rng.randint(1, 12)),
                    ("db.system", "postgresql"),
                    ("messaging.system", "kafka"),
                ]
                if rng.random() < 0.3:
                    values.insert(0, ("order.id", f"ord-{rng.randint(10**6, 10**7)}"))
                for key, value in values[:attrs]:
                    target = span.attributes.add(key=key).value
                    if isinstance(value, int):
                        target.int_value = value
                    else:
                        target.string_value = value
                if status >= 500:
                    span.status.code = trace_pb2.Status.STATUS_CODE_ERROR
                    span.status.message = "upstream failed"
                span_no += 1
        payload = request.SerializeToString()
        offsets = []
        for trace_id in trace_ids:
            at = payload.find(trace_id)
            while at >= 0:
                offsets.append(at)
                at = payload.find(trace_id, at + 1)
        time_offsets = []
        if live:  # start (field 7) and end (field 8) of every span, as fixed64, in order
            at = -1  # (two spans may share a time: each is found after the one before)
            for tag, value in zip(b"\x39\x41" * (len(times) // 2), times, strict=True):
                at = payload.find(bytes([tag]) + value.to_bytes(8, "little"), at + 1)
                assert at >= 0, "a span time not found in its request"
                time_offsets.append(at + 1)
        templates.append(Template(payload, offsets, time_offsets, built))
    return templates


class Stamper:
    """Fresh trace ids per send: overwrite the first 8 bytes of every trace id with a
    per-request counter (live templates: random bytes, and every span time moved by the
    time since the template was built). numpy does the small writes in one call each."""

    def __init__(self, templates: list[Template], stream: int) -> None:
        import numpy as np

        self.np = np
        self.items = [
            (
                np.frombuffer(t.payload, dtype=np.uint8),
                (np.array(t.id_offsets)[:, None] + np.arange(8)).ravel(),
                (np.array(t.time_offsets, dtype=np.int64)[:, None] + np.arange(8)).ravel(),
                t.built_unix_nano,
            )
            for t in templates
        ]
        self.stream = stream
        self.n = 0

    def next(self) -> bytes:
        np = self.np
        template, index, times, built = self.items[self.n % len(self.items)]
        buffer = template.copy()
        if times.size:  # live: random ids, times moved to now
            nonce = np.frombuffer(os.urandom(8), dtype=np.uint8)
            moved = buffer[times].view("<u8") + np.uint64(time.time_ns() - built)
            buffer[times] = moved.view(np.uint8)
        else:
            counter = (self.stream << 40) | self.n | (os.getpid() << 48)
            nonce = np.frombuffer(counter.to_bytes(8, "big"), dtype=np.uint8)
        buffer[index] = np.tile(nonce, len(index) // 8)
        self.n += 1
        return buffer.tobytes()


# ------------------------------------------------------------------------------ server


def vm_hwm_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def serve(args: argparse.Namespace) -> None:
    from collector import Collector, ReceiverConfig
    from spanstore.base import WriteResult

    store: Any
    # As the server: the writer and the request threads at limits.ingest_niceness.
    ingest_niceness = int(os.environ.get("SEQTRACE_INGEST_NICENESS", "10"))
    if args.mode == "parse":

        class NullWriter:
            def write(self, request: Any, timeout: float | None = None) -> WriteResult:
                # Receivers hand over raw bytes; the ceiling still pays for parsing them.
                if isinstance(request, bytes):
                    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                        ExportTraceServiceRequest,
                    )

                    request = ExportTraceServiceRequest.FromString(request)
                return WriteResult(accepted=0)

            def close(self) -> None:
                pass

        store = NullWriter()
    else:
        import gc

        from spanstore.duckdb_store import DuckDBStore
        from spanstore.malloc import release_memory_promptly
        from spanstore.nopandas import keep_pandas_out

        # As `seqtrace serve` sets itself up (seqtrace/server.py).
        keep_pandas_out()
        release_memory_promptly()
        decoders = int(os.environ.get("SEQTRACE_DECODERS", str(min(4, os.cpu_count() or 1))))
        # As the server does: DuckDB's memory limit is `db_memory_mib` (default 384).
        memory = os.environ.get("SEQTRACE_DB_MEMORY_MIB", "384")
        # and the store's queue budget is --max-queue-mib (default 64)
        queue_mib = int(os.environ.get("SEQTRACE_MAX_QUEUE_MIB", "64"))
        # and the decoders run at the server's default niceness (limits.decoder_niceness).
        niceness = int(os.environ.get("SEQTRACE_DECODER_NICENESS", "10"))
        store = DuckDBStore(
            args.db,
            decoder_processes=decoders,
            decoder_niceness=niceness,
            writer_niceness=ingest_niceness,
            memory_limit=f"{memory}MB",
            max_queue_bytes=queue_mib * 1024 * 1024,
        )
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
    # and the receivers' budget for request bodies is --max-inflight-mib (default 64)
    inflight_mib = int(os.environ.get("SEQTRACE_MAX_INFLIGHT_MIB", "64"))
    collector = Collector(
        ReceiverConfig(
            grpc_port=0,
            http_port=None,
            grpc_workers=args.workers,
            max_inflight_bytes=inflight_mib * 1024 * 1024,
            thread_niceness=ingest_niceness,
        ),
        store,
    )
    address = collector.start()["otlp-grpc"]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(json.dumps({"address": address}), flush=True)
    stop.wait()
    collector.stop(10.0)
    started = time.monotonic()
    store.close()
    print(
        json.dumps(
            {
                "peak_rss_mib": round(vm_hwm_mib(), 1),
                "close_s": round(time.monotonic() - started, 2),
                "counters": dataclasses.asdict(collector.counters()),
            }
        ),
        flush=True,
    )


# ------------------------------------------------------------------------------ client


def client(args: argparse.Namespace) -> None:
    import grpc

    templates = build_templates(args.templates, args.spans, args.attrs, live=args.live)
    stamper_lock = threading.Lock()
    stampers = [Stamper(templates, i) for i in range(max(args.streams, args.threads))]
    channels = [
        grpc.insecure_channel(args.target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(max(args.streams, args.threads))
    ]
    calls = [ch.unary_unary(EXPORT) for ch in channels]
    for call in calls:  # connect before timing
        call(b"", timeout=10)
    result: dict[str, Any] = {}
    errors: list[str] = []

    if args.phase == "sustained":
        acks: list[tuple[float, int]] = []
        deadline = time.monotonic() + args.duration
        start = time.monotonic()
        wall_start = time.time()  # the timeline's clock: another process can align to it

        def run(i: int) -> None:
            call, stamper = calls[i], stampers[i]
            local = []
            while time.monotonic() < deadline:
                payload = stamper.next()
                try:
                    call(payload, timeout=30)
                except grpc.RpcError as exc:
                    errors.append(str(exc.code()))
                    continue
                local.append((time.monotonic(), args.spans))
            with stamper_lock:
                acks.extend(local)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(args.streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        window = [a for a in acks if a[0] - start >= args.warmup]
        span_time = max(1e-9, (max(a[0] for a in acks) - start - args.warmup)) if window else 1
        # Spans acknowledged per TIMELINE_STEP_S, from wall_start (Unix seconds), so the
        # reads-under-flood bench can compare the rate with and without its readers in
        # alternating slices of one flood (bench_reads_under_flood.py --alternate).
        timeline = [0] * (int(args.duration / TIMELINE_STEP_S) + 2)
        for at, spans in acks:
            timeline[min(len(timeline) - 1, int((at - start) / TIMELINE_STEP_S))] += spans
        result = {
            "acked_spans": sum(a[1] for a in acks),
            "spans_per_s": round(sum(a[1] for a in window) / span_time),
            "requests": len(acks),
            "timeline": {"start": wall_start, "step_s": TIMELINE_STEP_S, "spans": timeline},
        }
    else:
        interval = args.spans / args.rate  # seconds between requests overall
        total = int(args.duration / interval)
        latencies: list[float] = []
        acked = 0
        start = time.monotonic() + 0.2

        def run(i: int) -> None:
            nonlocal acked
            call, stamper = calls[i], stampers[i]
            local = []
            for k in range(i, total, args.threads):
                scheduled = start + k * interval
                delay = scheduled - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                payload = stamper.next()
                try:
                    call(payload, timeout=30)
                except grpc.RpcError as exc:
                    errors.append(str(exc.code()))
                    continue
                local.append(time.monotonic() - scheduled)
            with stamper_lock:
                latencies.extend(local)
                acked += len(local) * args.spans

        threads = [threading.Thread(target=run, args=(i,)) for i in range(args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        latencies.sort()

        def pct(p: float) -> float:
            return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2)

        result = {
            "acked_spans": acked,
            "rate_spans_per_s": args.rate,
            "requests": len(latencies),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": round(1000 * latencies[-1], 2),
        }
    result["errors"] = len(errors)
    result["error_codes"] = sorted(set(errors))
    for ch in channels:
        ch.close()
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------------ orchestrator


def run_mode(mode: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    db = workdir / f"bench-{mode}.duckdb"
    me = [sys.executable, str(Path(__file__).resolve())]
    server = subprocess.Popen(
        [*me, "serve", "--mode", mode, "--db", str(db), "--workers", str(args.workers)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert server.stdout is not None
    address = json.loads(server.stdout.readline())["address"]
    common = ["--target", address, "--spans", str(args.spans), "--attrs", str(args.attrs)]
    common += ["--templates", str(args.templates)]

    def client_phase(*extra: str) -> dict[str, Any]:
        done = subprocess.run(
            [*me, "client", *common, *extra], capture_output=True, text=True, cwd=ROOT
        )
        if done.returncode != 0:
            raise SystemExit(f"client failed: {done.stderr[-2000:]}")
        out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return out

    sustained = client_phase(
        "--phase",
        "sustained",
        "--duration",
        str(args.duration),
        "--streams",
        str(args.streams),
        "--warmup",
        str(args.warmup),
    )
    rss_after_sustained = vm_hwm_mib(server.pid)
    half = max(args.spans, sustained["spans_per_s"] // 2)
    # The sustained phase leaves the store a backlog (acknowledged batches the writer has
    # not appended yet); the latency target is about steady ingest at half the rate, so
    # let the store settle first instead of timing the end of the overload.
    time.sleep(args.settle)
    latency = client_phase(
        "--phase",
        "latency",
        "--duration",
        str(args.latency_duration),
        "--rate",
        str(half),
        "--threads",
        str(args.latency_threads),
    )
    server.send_signal(signal.SIGTERM)
    final = json.loads(server.stdout.read().strip().splitlines()[-1])
    server.wait(60)
    row: dict[str, Any] = {
        "mode": mode,
        "spans_per_s": sustained["spans_per_s"],
        "sustained": sustained,
        "latency": latency,
        "peak_rss_mib": max(final["peak_rss_mib"], rss_after_sustained),
        "server_close_s": final["close_s"],
    }
    acked = sustained["acked_spans"] + latency["acked_spans"]
    row["acked_spans"] = acked
    if mode == "store":
        import duckdb

        from spanstore.duckdb_store import DuckDBStore

        con = duckdb.connect(str(db))
        con.execute("CHECKPOINT")
        con.close()
        reader = DuckDBStore(db, read_only=True)
        stored = reader.stats().spans
        reader.close()
        size = db.stat().st_size + (
            Path(f"{db}.wal").stat().st_size if Path(f"{db}.wal").exists() else 0
        )
        row.update(
            stored_spans=stored, db_bytes=size, bytes_per_span=round(size / max(stored, 1), 1)
        )
        row["stored_equals_acked"] = stored == acked
        if args.keep_db:  # for looking into the file afterwards (storage_info, sizes)
            import shutil

            shutil.copyfile(db, args.keep_db)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="role")
    parser.add_argument("--modes", default="parse,store")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--latency-duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between the two phases")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--latency-threads", type=int, default=16)
    parser.add_argument("--spans", type=int, default=512)
    parser.add_argument("--attrs", type=int, default=10)
    parser.add_argument("--templates", type=int, default=8)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json", default=None, help="also write the results here")
    parser.add_argument("--keep-db", default=None, help="copy the store's file here after the run")

    s = sub.add_parser("serve")
    s.add_argument("--mode", choices=["parse", "store"], required=True)
    s.add_argument("--db", required=True)
    s.add_argument("--workers", type=int, default=8)

    c = sub.add_parser("client")
    c.add_argument("--target", required=True)
    c.add_argument("--phase", choices=["sustained", "latency"], required=True)
    c.add_argument("--duration", type=float, default=20.0)
    c.add_argument("--warmup", type=float, default=3.0)
    c.add_argument("--streams", type=int, default=4)
    c.add_argument("--threads", type=int, default=16)
    c.add_argument("--rate", type=float, default=10_000)
    c.add_argument("--spans", type=int, default=512)
    c.add_argument("--attrs", type=int, default=10)
    c.add_argument("--templates", type=int, default=8)
    c.add_argument(
        "--live", action="store_true", help="traces as traffic sends them: now, random ids"
    )

    args = parser.parse_args()
    if args.role == "serve":
        serve(args)
        return
    if args.role == "client":
        client(args)
        return

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        rows = [run_mode(mode, args, Path(tmp)) for mode in args.modes.split(",")]
    header = (
        f"{'mode':6} {'spans/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'@ spans/s':>10} "
        f"{'B/span':>7} {'peak RSS MiB':>12} {'stored=acked':>12}"
    )
    print(header)
    for row in rows:
        print(
            f"{row['mode']:6} {row['spans_per_s']:>9} {row['latency']['p50_ms']:>8} "
            f"{row['latency']['p99_ms']:>8} {row['latency']['rate_spans_per_s']:>10} "
            f"{row.get('bytes_per_span', '-'):>7} {row['peak_rss_mib']:>12} "
            f"{row.get('stored_equals_acked', '-')!s:>12}"
        )
    report = {
        "machine": {"cpus": os.cpu_count()},
        "targets": TARGETS,
        "args": vars(args),
        "results": rows,
    }
    print(json.dumps(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
