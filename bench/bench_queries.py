"""Read-side benchmarks against a span store (build one with bench/make_store.py).

    .venv/bin/python bench/bench_queries.py --db /tmp/bench/s10m.duckdb --json-out q.json

Starts ``seqtrace serve`` on the database (all ports 0) and measures through the query API
with ``HttpSource``, then stops it and measures the same calls in-process with
``LocalSource`` on the file opened read-only (DuckDB lets one process hold the file, so the
two cannot run at once). Measured, with the targets from the performance brief:

(a) entity diagram (``--format json``) for ``--samples`` random ``order.id`` values:
    p50/p95/max; target p95 < 250 ms through the API
(b) entity listing: ``entities()`` and ``entities(key="order.id")``; target < 1 s
(c) the failure report for one hour of traffic (several different hours); target < 2 s
(d) an SLO report over the whole store (3 SLOs, windows 7d/30d); target < 2 s
(e) with ``--load-rate N`` (spans/s): (a) again while a separate process sends OTLP/gRPC
    to the server at that rate (timestamps after the newest span, order ids the store does
    not have). It runs on a copy of the file, which is deleted afterwards.

Each figure is wall time of the whole call as a client sees it (HTTP, JSON decoding
included). Output: a table on stdout and, with ``--json-out``, JSON. The machine's load
average is recorded with every phase: other work on a 2-core box moves these numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final, Protocol

HOUR_NS: Final = 3_600_000_000_000
DAY_NS: Final = 24 * HOUR_NS
EXPORT_METHOD: Final = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

SLO_SPEC: Final = """\
slos:
  - name: checkout-availability
    service: frontend
    operation: "POST /api/checkout"
    sli: availability
    objective: 99.5
    window: 30d
  - name: order-status-latency
    service: frontend
    operation: "GET /api/orders/{orderId}"
    sli: latency
    threshold_ms: 300
    objective: 99
    window: 7d
  - name: payments-availability
    service: payment
    operation: "POST /api/payments"
    sli: availability
    objective: 99.9
    window: 30d
"""

TARGETS: Final = {
    "diagram": ("p95", 0.250),
    "entities_keys": ("max", 1.0),
    "entities_order_id": ("max", 1.0),
    "failures_1h": ("max", 2.0),
    "slo_whole_store": ("max", 2.0),
    "diagram_under_load": ("p95", 0.250),
}


class Source(Protocol):
    def stats(self) -> dict[str, Any]: ...

    def entities(
        self,
        key: str | None = None,
        limit: int = 100,
        prefix: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> dict[str, Any]: ...

    def diagram(
        self,
        entity: str | None = None,
        trace_id: str | None = None,
        start: int | None = None,
        end: int | None = None,
        show_internal: bool = False,
        fmt: str = "json",
    ) -> dict[str, Any] | str: ...

    def failures(
        self, start: int | None = None, end: int | None = None, service: str | None = None
    ) -> dict[str, Any]: ...

    def slo(
        self, spec_text: str, at: int | None = None, source_name: str = "spec"
    ) -> dict[str, Any]: ...


# --------------------------------------------------------------------------- measuring


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def finish(report: dict[str, Any], json_out: str | None) -> None:
    """Record and print the closing load average; write ``report`` as JSON if asked."""
    report["load_average_end"] = load_average()
    print(f"load average: start {report['load_average_start']}, end {report['load_average_end']}")
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=2) + "\n")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Series:
    name: str
    source: str
    samples: list[float] = field(default_factory=list)  # seconds, successful calls only
    errors: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    load: list[str] = field(default_factory=list)
    #: CPU seconds used so far by the process that answers (the server, or this one)
    cpu_clock: Callable[[], float] | None = None
    cpu: list[float] = field(default_factory=list)

    def time(self, call: Callable[[], Any]) -> Any:
        cpu_before = self.cpu_clock() if self.cpu_clock else 0.0
        started = time.perf_counter()
        try:
            result = call()
        except Exception as exc:  # a failing call is a result too
            self.errors.append(f"{type(exc).__name__}: {str(exc)[:300]}")
            return None
        self.samples.append(time.perf_counter() - started)
        if self.cpu_clock:
            self.cpu.append(self.cpu_clock() - cpu_before)
        return result

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "source": self.source,
            "n": len(self.samples),
            "errors": len(self.errors),
        }
        if self.samples:
            out.update(
                p50_ms=round(statistics.median(self.samples) * 1000, 1),
                p95_ms=round(percentile(self.samples, 95) * 1000, 1),
                max_ms=round(max(self.samples) * 1000, 1),
                mean_ms=round(statistics.fmean(self.samples) * 1000, 1),
            )
        if self.cpu:
            # CPU time of the answering process per call: less sensitive than wall time
            # to other work on the machine (it still includes DuckDB's worker threads).
            out["cpu_p50_ms"] = round(statistics.median(self.cpu) * 1000, 1)
            out["cpu_p95_ms"] = round(percentile(self.cpu, 95) * 1000, 1)
        target = TARGETS.get(self.name)
        if target and self.samples:
            stat, limit = target
            value = out[f"{stat}_ms"] / 1000
            out["target"] = f"{stat} < {limit * 1000:.0f} ms"
            out["meets_target"] = value < limit and not self.errors
        if self.errors:
            out["first_errors"] = sorted(set(self.errors))[:3]
        if self.notes:
            out["notes"] = self.notes
        if self.load:
            out["load_average"] = self.load
        return out


# --------------------------------------------------------------------------- the server


@dataclass
class Server:
    process: subprocess.Popen[str]
    api: str
    grpc: str
    started_s: float
    #: The backfill of kept trace shapes the server did before it was handed over.
    kept_shapes: dict[str, Any] | None = None

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server process has used so far."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> dict[str, float]:
        """Current and peak resident memory of the server process, MiB."""
        out: dict[str, float] = {}
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith(("VmRSS:", "VmHWM:")):
                    name, value = line.split(":")
                    out[name] = round(int(value.split()[0]) / 1024, 1)
        except OSError:
            pass
        return out


def seqtrace_command() -> list[str]:
    exe = Path(sys.executable).parent / "seqtrace"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "seqtrace.cli"]


def wait_for_kept_shapes(api: str, timeout: float = 1800.0) -> dict[str, Any] | None:
    """Waits until the server's writer has kept the shape of every settled trace (the
    backfill after opening an older or bigger store, docs/flows.md); returns its
    ``trace_shapes`` figures and the wait (None: a tree that keeps no shapes)."""
    started = time.perf_counter()
    while True:
        with urllib.request.urlopen(f"{api}/api/v1/ingest-stats", timeout=60) as response:
            stats = json.loads(response.read()).get("trace_shapes")
        if stats is None:
            return None
        if stats["hours_to_do"] == 0 or time.perf_counter() - started > timeout:
            return {**stats, "waited_s": round(time.perf_counter() - started, 1)}
        time.sleep(1.0)


@contextmanager
def serve(
    db: str,
    timeout: float = 120.0,
    seqtrace: str | None = None,
    *extra: str,
    wait_kept: bool = True,
) -> Iterator[Server]:
    """`seqtrace serve` on ``db`` (``seqtrace``: another tree's executable; ``extra``:
    more options). With ``wait_kept`` (the default) it is handed over once its writer has
    kept every settled trace's shape, so that benchmarks measure the steady state and not
    the backfill beside them (the wait is in ``Server.kept_shapes``)."""
    command = [
        *([seqtrace] if seqtrace else seqtrace_command()),
        "serve",
        *extra,
        "--db",
        db,
        "--grpc-port",
        "0",
        "--http-port",
        "0",
        "--api-port",
        "0",
    ]
    started = time.perf_counter()
    # Started in the store's folder, never inside a checkout: a child Python (the decoder
    # processes) would import that checkout's packages first.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        cwd=os.path.dirname(os.path.abspath(db)),
    )
    lines: list[str] = []
    found: dict[str, str] = {}

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            match = re.search(r"listening (\S+)=(\S+)", line)
            if match:
                found[match.group(1)] = match.group(2)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while "api" not in found:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(lines[-10:])
                raise RuntimeError(f"seqtrace serve did not start:\n{tail}")
            time.sleep(0.05)
        api = f"http://{found['api']}"
        while True:
            try:
                with urllib.request.urlopen(f"{api}/healthz", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        kept = wait_for_kept_shapes(api) if wait_kept else None
        if kept is not None:
            print(f"seqtrace serve kept the trace shapes of {db} in {kept['waited_s']} s")
        server = Server(process, api, found.get("otlp-grpc", ""), time.perf_counter() - started)
        server.kept_shapes = kept
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(5)


# --------------------------------------------------------------------------- workload


def sample_values(src: Source, key: str, n: int, rng: random.Random) -> list[str]:
    """``n`` distinct values of ``key`` spread over the whole store, not just the newest.

    ``entities(key)`` lists the most recent values first, so for numbered values
    (``ORD-1234567``) random numeric prefixes are looked up instead.
    """
    first = src.entities(key=key, limit=1000)["values"]
    if not first:
        return []
    match = re.fullmatch(r"(\D*)(\d{5,})", first[0]["value"])
    if match is None:
        pool = [v["value"] for v in src.entities(key=key, limit=10_000)["values"]]
        return rng.sample(pool, min(n, len(pool)))
    head, digits = match.group(1), len(match.group(2))
    width = digits - 3  # each prefix covers 1000 numbers
    picked: dict[str, None] = {}
    for _ in range(n * 50):
        if len(picked) >= n:
            break
        number = rng.randrange(10 ** (width - 1), 10**width)
        values = src.entities(key=key, prefix=f"{head}{number}", limit=10_000)["values"]
        if values:
            picked[rng.choice(values)["value"]] = None
    return list(picked)


def pick_hours(first_ns: int, last_ns: int, rng: random.Random, count: int) -> list[int]:
    """Start times of ``count`` whole hours: the last full day's 14:00 UTC (near the peak),
    its 03:00 (the trough), and random hours of the stored range."""
    day = (last_ns // DAY_NS - 1) * DAY_NS
    hours = [day + 14 * HOUR_NS, day + 3 * HOUR_NS]
    lo = (first_ns // HOUR_NS + 1) * HOUR_NS
    hi = (last_ns // HOUR_NS - 1) * HOUR_NS
    while len(hours) < count and hi > lo:
        hours.append(lo + rng.randrange((hi - lo) // HOUR_NS) * HOUR_NS)
    return [h for h in hours if lo <= h <= hi][:count] or [lo]


def run_suite(
    src: Source,
    label: str,
    values: list[str],
    warmup: list[str],
    hours: list[int],
    at: int,
    repeat: int,
    key: str,
    cpu_clock: Callable[[], float] | None = None,
) -> list[Series]:
    out: list[Series] = []

    def new(name: str) -> Series:
        return Series(name, label, cpu_clock=cpu_clock)

    # (a) diagrams
    cold = new("diagram_first_call")
    if warmup:
        cold.time(partial(src.diagram, entity=f"{key}={warmup[0]}"))
        for value in warmup[1:]:
            src_call_quiet(partial(src.diagram, entity=f"{key}={value}"))
    out.append(cold)
    diagrams = new("diagram")
    messages: list[int] = []
    traces: list[int] = []
    diagrams.load.append(load_average())
    for value in values:
        result = diagrams.time(partial(src.diagram, entity=f"{key}={value}"))
        if isinstance(result, dict):
            messages.append(len(result.get("messages", [])))
            traces.append(len(result.get("traces", [])))
    diagrams.load.append(load_average())
    if messages:
        diagrams.notes = {
            "messages_median": statistics.median(messages),
            "messages_max": max(messages),
            "traces_median": statistics.median(traces),
            "traces_max": max(traces),
        }
    out.append(diagrams)

    # (b) entity listings
    for name, call in (
        ("entities_keys", lambda: src.entities()),
        ("entities_order_id", lambda: src.entities(key=key)),
        ("entities_customer_id", lambda: src.entities(key="customer.id")),
    ):
        series = new(name)
        series.load.append(load_average())
        result = repeated(series, call, repeat)
        if isinstance(result, dict):
            listed = result.get("keys") or result.get("values") or []
            series.notes["rows"] = len(listed)
        out.append(series)

    # (c) failure report, one hour each
    failures = new("failures_1h")
    failures.load.append(load_average())
    per_hour: list[dict[str, Any]] = []
    for hour in hours:
        result = failures.time(partial(src.failures, start=hour, end=hour + HOUR_NS))
        if isinstance(result, dict):
            per_hour.append(
                {
                    "from_unix_nano": hour,
                    "seconds": round(failures.samples[-1], 3),
                    **result.get("summary", {}),
                }
            )
    failures.notes["hours"] = per_hour
    out.append(failures)

    # (d) SLO report over the whole store
    slo = new("slo_whole_store")
    slo.load.append(load_average())
    result = repeated(slo, partial(src.slo, SLO_SPEC, at=at, source_name="bench-slo.yaml"), repeat)
    if isinstance(result, dict):
        slo.notes["slos"] = [
            {k: s.get(k) for k in ("name", "total", "bad", "sli", "error_budget_remaining")}
            for s in result.get("slos", [])
        ]
    out.append(slo)
    return out


#: Stop repeating a call after one run took this long: more runs would not change the verdict.
SLOW_S: Final = 20.0


def repeated(series: Series, call: Callable[[], Any], repeat: int) -> Any:
    result = None
    for i in range(repeat):
        result = series.time(call)
        if series.samples and series.samples[-1] > SLOW_S and i + 1 < repeat:
            series.notes["stopped_repeating"] = f"one run took {series.samples[-1]:.1f} s"
            break
    return result


def src_call_quiet(call: Callable[[], Any]) -> None:
    try:
        call()
    except Exception:  # warm-up only
        return


# --------------------------------------------------------------------------- write load


def load_worker(args: argparse.Namespace) -> int:
    """Send OTLP/gRPC to ``--grpc`` at ``--load-rate`` spans/s until stopped or timed out.

    Requests come from make_store's generator (same shop) with timestamps after
    ``--after-ns`` and order ids above any the store holds. Prints a JSON summary.
    """
    import grpc

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import make_store

    duration = args.max_seconds
    spans = int(args.load_rate * duration * 1.1) + 1024
    templates, by_kind = make_store.build_templates(args.seed)
    end = args.after_ns + int(duration * 1e9) + 60_000_000_000
    plan = make_store.make_plan(
        spans, args.seed + 1000, end, (duration + 60) / 86400, templates, by_kind
    )
    plan.order[plan.order >= 0] += 4_000_000  # ids the store does not have
    gen = make_store.Generator(args.seed + 1000, templates, plan)
    n_requests = len(plan.request_bounds) - 1
    channel = grpc.insecure_channel(args.grpc)
    export = channel.unary_unary(EXPORT_METHOD)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lock = threading.Lock()
    sent = {"spans": 0, "requests": 0, "errors": 0}
    latencies: list[float] = []
    next_request = [0]
    started = time.perf_counter()
    deadline = started + duration

    def sender() -> None:
        while not stop.is_set():
            with lock:
                r = next_request[0]
                next_request[0] += 1
            if r >= n_requests:
                return
            n, blob = gen.request(r)
            due = started + r * make_store.REQUEST_SPANS / args.load_rate
            delay = due - time.perf_counter()
            if delay > 0:
                stop.wait(delay)
            if stop.is_set() or time.perf_counter() > deadline:
                return
            t0 = time.perf_counter()
            try:
                export(blob, timeout=30)
            except grpc.RpcError:
                with lock:
                    sent["errors"] += 1
                continue
            with lock:
                latencies.append(time.perf_counter() - t0)
                sent["spans"] += n
                sent["requests"] += 1

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    print("load-worker: started", flush=True)
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    channel.close()
    print(
        json.dumps(
            {
                "target_spans_per_s": args.load_rate,
                "achieved_spans_per_s": round(sent["spans"] / elapsed),
                "seconds": round(elapsed, 1),
                **sent,
                "export_p50_ms": round(statistics.median(latencies) * 1000, 1)
                if latencies
                else None,
                "export_p95_ms": round(percentile(latencies, 95) * 1000, 1) if latencies else None,
            }
        ),
        flush=True,
    )
    return 0


def under_load(
    server: Server, args: argparse.Namespace, values: list[str], last_ns: int
) -> tuple[Series, dict[str, Any]]:
    from analyzer.source import HttpSource

    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--load-worker",
        "--grpc",
        server.grpc,
        "--load-rate",
        str(args.load_rate),
        "--after-ns",
        str(last_ns),
        "--seed",
        str(args.seed),
        "--max-seconds",
        str(args.load_max_seconds),
    ]
    worker = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    worker.stdout.readline()  # "started"
    time.sleep(3)  # let the load settle
    src = HttpSource(server.api, timeout=300)
    series = Series("diagram_under_load", "http")
    series.load.append(load_average())
    for value in values:
        series.time(partial(src.diagram, entity=f"{args.key}={value}"))
    series.load.append(load_average())
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=120)
    try:
        report: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        report = {"error": output[-500:]}
    series.notes["writer"] = report
    series.notes["server_memory_mb"] = server.rss_mb()
    return series, report


# --------------------------------------------------------------------------- reporting


def machine() -> dict[str, Any]:
    import duckdb

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "nproc": os.cpu_count(),
        "memory": mem,
        "cpu": cpu,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "platform": platform.platform(),
    }


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'benchmark':24} {'via':6} {'n':>4} {'err':>4} {'p50 ms':>9} {'p95 ms':>9} "
        f"{'max ms':>9} {'cpu p50':>8}  target"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        verdict = ""
        if "target" in row:
            verdict = f"{row['target']} {'ok' if row.get('meets_target') else 'MISSED'}"
        lines.append(
            f"{row['name']:24} {row['source']:6} {row['n']:>4} {row['errors']:>4} "
            f"{row.get('p50_ms', '-'):>9} {row.get('p95_ms', '-'):>9} {row.get('max_ms', '-'):>9}"
            f" {row.get('cpu_p50_ms', '-'):>8}  {verdict}"
        )
    return "\n".join(lines)


def git_state() -> str:
    """The commit measured, with "+dirty" when the work tree has changes (read-only git)."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}+dirty" if dirty else head


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", help="the DuckDB store to measure")
    parser.add_argument("--samples", type=int, default=100, help="entity diagrams (default 100)")
    parser.add_argument("--key", default="order.id", help="entity key (default order.id)")
    parser.add_argument("--hours", type=int, default=5, help="one-hour failure reports (5)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of (b) and (d) (default 5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-local", action="store_true", help="skip the LocalSource pass")
    parser.add_argument("--no-http", action="store_true", help="skip the query-API pass")
    parser.add_argument(
        "--load-rate", type=float, default=0.0, help="(e): spans/s sent while diagrams run"
    )
    parser.add_argument("--load-max-seconds", type=float, default=300.0)
    parser.add_argument("--json-out", help="write the results as JSON here")
    # internal: the write-load process of (e)
    parser.add_argument("--load-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--grpc", help=argparse.SUPPRESS)
    parser.add_argument("--after-ns", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--max-seconds", type=float, default=300.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_worker:
        return load_worker(args)
    if not args.db or not Path(args.db).exists():
        parser.error("--db must name an existing store (bench/make_store.py builds one)")

    from analyzer.source import HttpSource, LocalSource
    from spanstore.duckdb_store import DuckDBStore

    rng = random.Random(args.seed)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "db": args.db,
        "db_bytes": Path(args.db).stat().st_size,
        "machine": machine(),
        "git": git_state(),
        "load_average_start": load_average(),
    }
    rows: list[Series] = []

    def say(text: str) -> None:
        print(f"bench_queries: {text}", flush=True)

    with serve(args.db) as server:
        say(f"server up in {server.started_s:.1f} s at {server.api}; load {load_average()}")
        report["server_start_s"] = round(server.started_s, 2)
        http = HttpSource(server.api, timeout=300)
        stats = Series("stats", "http")
        store_stats = stats.time(http.stats)
        rows.append(stats)
        if not isinstance(store_stats, dict) or not store_stats.get("spans"):
            say(f"no data in {args.db}: {stats.errors}")
            return 2
        report["store"] = {k: store_stats[k] for k in ("spans", "traces")} | {
            "services": len(store_stats["services"]),
            "first_unix_nano": store_stats["first_unix_nano"],
            "last_unix_nano": store_stats["last_unix_nano"],
        }
        first, last = store_stats["first_unix_nano"], store_stats["last_unix_nano"]
        sampling = Series("entities_prefix", "http")
        values = sampling.time(lambda: sample_values(http, args.key, args.samples + 5, rng)) or []
        sampling.notes["values"] = len(values)
        rows.append(sampling)
        say(f"{len(values)} {args.key} values sampled in {sampling.samples[-1]:.1f} s")
        warmup, values = values[:5], values[5:]
        hours = pick_hours(first, last, rng, args.hours)
        at = last + 1
        report["values"] = values
        report["hours"] = hours
        if not args.no_http:
            rows.extend(
                run_suite(
                    http, "http", values, warmup, hours, at, args.repeat, args.key, server.cpu_s
                )
            )
            report["server_memory_mb"] = server.rss_mb()
            say(f"query API pass done; server memory {report['server_memory_mb']}")

    if not args.no_local:
        started = time.perf_counter()
        store = DuckDBStore(args.db, read_only=True)
        report["local_open_s"] = round(time.perf_counter() - started, 2)
        try:
            local = LocalSource(store)
            rows.extend(
                run_suite(
                    local,
                    "local",
                    values,
                    warmup,
                    hours,
                    at,
                    args.repeat,
                    args.key,
                    time.process_time,
                )
            )
        finally:
            store.close()
        say("in-process pass done")

    if args.load_rate > 0:
        # The writer appends spans: work on a copy so the store stays as built.
        copy = f"{args.db}.load-copy"
        shutil.copyfile(args.db, copy)
        try:
            with serve(copy) as server:
                series, writer = under_load(server, args, values, last)
                rows.append(series)
                say(f"under load: writer {writer}")
        finally:
            for path in (copy, f"{copy}.wal"):
                Path(path).unlink(missing_ok=True)

    summaries = [s.summary() for s in rows]
    report["results"] = summaries
    print(table(summaries))
    finish(report, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
