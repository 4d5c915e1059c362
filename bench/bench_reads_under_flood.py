"""Reads while ingest is saturated (issue 20): does the UI stay fast and fresh?

A real `seqtrace serve` (every port 0) on a fresh database holding the shop's spans
(``sample_traces/`` loaded, or a copy of ``--base-db``). Then, per round:

  1. ``flood``: four gRPC client threads (``bench_ingest.py client``: distinct 510-span
     requests, fresh trace ids per send, sent as fast as they are acknowledged) for
     ``--flood`` seconds; the ingest rate alone.
  2. ``flood+reads``: the same flood while this process reads through the query API:
     ``GET /api/v1/diagram?entity=order.id=ORD-1002`` every 0.3 s; the last hour's
     failure report and the overview's stats (one after the other, then a pause:
     ``--report-pause``, 1 s unless told; 5 s is the UI's live mode on the Failures page);
     ``/healthz`` every 0.5 s; and a visibility probe: every 2 s one distinct span sent
     over gRPC, then ``GET /api/v1/traces/{id}`` polled right after its acknowledgement
     until the span is there (the delay from the ack).

``--alternate S`` measures the ingest ratio a second way: in the flood with reads, the
readers run for S seconds, pause for S seconds, and so on, and the client's acknowledgement
timeline gives the rate in the slices with reads and in those without (each slice's first
second left out). Two separate floods drift apart on this machine by more than the reads
cost; alternating slices of one flood see the same drift on both sides.

Each round also reports where the CPU went (``cpu_cores``, sampled every 0.5 s from
``/proc``): cores used by the server (with its fork server and decoder processes), by the
flood client and by this process (the readers), and the machine's busy share, for the
flood alone and with reads (with ``--alternate``: the slices with reads and those
without). On a machine the flood keeps busy, what the reads cost in CPU is what ingest
loses to them.

``--live`` floods as traffic does (``bench_ingest.py client --live``): each trace's spans
start within a second of its root, the roots just before the send, and every send takes
random trace ids. Without it (issue 20's flood, and every figure before session 15) a
request's spans start anywhere in the hour before the client started and its trace ids
carry a per-send counter: DuckDB then skips row groups by trace id, as it cannot with
real, random ids, and not by time, as it can with real traffic.

``--without-reports`` leaves the failure report and the stats out (idle and under the
flood): the report over a flooded hour is CPU-heavy Python work of its own, and without
it the diagram, visibility, /healthz and ingest figures show the read path alone.

Idle figures (no flood) are taken first. ``--seqtrace`` picks the tree under test (its
``seqtrace`` executable), so the current design and a clone of main can be measured in
one sitting; the clients always come from this tree.

    .venv/bin/python bench/bench_reads_under_flood.py --label new
    .venv/bin/python bench/bench_reads_under_flood.py --label base \\
        --seqtrace /tmp/h7-base/.venv/bin/seqtrace --json /tmp/h7/base.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TARGETS = {
    "diagram_p95_ms": 300.0,
    "failures_p95_ms": 1000.0,
    "stats_p95_ms": 1000.0,
    "visible_within_s": 1.0,
    "ingest_ratio": 0.90,
}


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 1)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "n": len(values),
        "p50": pct(values, 0.50),
        "p95": pct(values, 0.95),
        "max": round(max(values), 1) if values else None,
        "mean": round(statistics.fmean(values), 1) if values else None,
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ------------------------------------------------------------------------------ CPU


_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _processes() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of all its threads so far)."""
    found: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:  # it ended
            continue
        fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS)
    return found


def _tree(root: int, processes: dict[int, tuple[int, float]]) -> set[int]:
    tree, todo = {root}, [root]
    while todo:
        parent = todo.pop()
        for pid, (ppid, _) in processes.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                todo.append(pid)
    return tree & processes.keys()


class CpuMeter:
    """Where the machine's CPU goes, sampled every 0.5 s: the server process, its fork
    server and decoder processes, the flood client, this process (the readers), and the
    machine's busy share. The reads' cost under the flood is then measured in CPU, which
    on this 2-core machine is what ingest loses to them (the ingest ratio's bound)."""

    PARTS = ("server", "decoders", "client", "readers")

    def __init__(self, server_pid: int) -> None:
        # "decoders": the server's child processes (the fork server and its decoders).
        self.roots = {
            "server": server_pid,
            "decoders": server_pid,
            "client": 0,
            "readers": os.getpid(),
        }
        #: Per part, each pid's latest CPU seconds: a process that ended keeps its total.
        self._seen: dict[str, dict[int, float]] = {part: {} for part in self.PARTS}
        self.samples: list[tuple[float, dict[str, float]]] = []
        #: (when, the server process's resident memory in MiB): its peak per phase.
        self.rss: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def follow_client(self, pid: int) -> None:
        self.roots["client"] = pid

    def _machine(self) -> tuple[float, float]:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = ticks[3] + ticks[4]  # idle, iowait
        return (sum(ticks) - idle) / _TICKS, sum(ticks) / _TICKS

    def _run(self) -> None:
        while not self._stop.is_set():
            processes = _processes()
            busy, total = self._machine()
            sample = {"machine_busy": busy, "machine_all": total}
            for part, root in self.roots.items():
                if root:
                    if part in ("server", "readers"):
                        pids = {root} & processes.keys()
                    elif part == "decoders":
                        pids = _tree(root, processes) - {root}
                    else:
                        pids = _tree(root, processes)
                    for pid in pids:
                        self._seen[part][pid] = processes[pid][1]
                sample[part] = sum(self._seen[part].values())
            self.samples.append((time.time(), sample))
            try:
                pages = int(Path(f"/proc/{self.roots['server']}/statm").read_text().split()[1])
                self.rss.append((time.time(), pages * _PAGE / 2**20))
            except (OSError, IndexError, ValueError):  # it ended
                pass
            self._stop.wait(0.5)

    def use(self, spans: list[tuple[float, float]]) -> dict[str, Any] | None:
        """Cores used by each part over these [start, end) wall-clock spans, and the
        machine's busy share (None when no span holds two samples)."""
        totals: dict[str, float] = {}
        seconds = 0.0
        for began, ended in spans:
            inside = [(t, s) for t, s in self.samples if began <= t <= ended]
            if len(inside) < 2:
                continue
            (t0, first), (t1, last) = inside[0], inside[-1]
            seconds += t1 - t0
            for key in last:
                totals[key] = totals.get(key, 0.0) + last[key] - first[key]
        if not seconds:
            return None
        out: dict[str, Any] = {part: round(totals[part] / seconds, 2) for part in self.PARTS}
        out["machine_busy"] = round(totals["machine_busy"] / max(1e-9, totals["machine_all"]), 3)
        out["seconds"] = round(seconds, 1)
        rss = [mib for t, mib in self.rss if any(b <= t <= e for b, e in spans)]
        out["server_rss_peak_mib"] = round(max(rss)) if rss else None
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


# ------------------------------------------------------------------------------ server


_ANY_PORTS = ("--grpc-port", "0", "--http-port", "0", "--api-port", "0")


class Server:
    """`seqtrace serve` of the tree under test, on ports it picks itself."""

    def __init__(self, seqtrace: str, db: Path) -> None:
        self.log_path = db.with_suffix(".server.log")
        self.process = subprocess.Popen(
            [seqtrace, "serve", "--db", str(db), *_ANY_PORTS],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Not this tree: a server of another tree started here would decode with this
            # tree's spanstore (its fork server put the working directory on its path).
            cwd=db.parent,
        )
        self.grpc = ""
        self.api = ""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "listening otlp-grpc=" in line:
                self.grpc = line.rsplit("=", 1)[1].strip()
            if "listening api=" in line:
                self.api = "http://" + line.rsplit("=", 1)[1].strip()
            if "Ctrl-C stops" in line:
                break
        if not self.grpc or not self.api:
            raise SystemExit("the server did not start")
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        # Kept, not discarded: a 5xx under the flood is a defect whose cause is in this log.
        assert self.process.stdout is not None
        with self.log_path.open("w") as log:
            for line in self.process.stdout:
                log.write(line)
                log.flush()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(120)


def get(url: str, timeout: float = 60.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


FIRST_ERROR_BODIES: dict[str, str] = {}


def timed_get(url: str) -> tuple[int, float]:
    started = time.monotonic()
    status, body = get(url)
    if status != 200:
        where = f"{url.split('?')[0]}:{status}"
        FIRST_ERROR_BODIES.setdefault(where, body[:500].decode(errors="replace"))
    return status, 1000 * (time.monotonic() - started)


# ------------------------------------------------------------------------------ readers


class Readers:
    """The reader threads of one phase; each records its latencies (ms)."""

    def __init__(
        self,
        api: str,
        grpc_target: str,
        entity: str,
        reports: bool = True,
        report_pause: float = 1.0,
    ) -> None:
        self.api = api
        self.report_pause = report_pause
        self.grpc_target = grpc_target
        self.entity = entity
        self.stop = threading.Event()
        #: Cleared: each reader finishes the request it has in flight, then pauses
        #: (--alternate) until it is set again.
        self.active = threading.Event()
        self.active.set()
        self.lat: dict[str, list[float]] = {
            "diagram": [],
            "failures": [],
            "stats": [],
            "healthz": [],
        }
        self.visible_s: list[float] = []
        self.errors: dict[str, int] = {}
        self.threads = [
            threading.Thread(target=self._diagram, daemon=True),
            threading.Thread(target=self._healthz, daemon=True),
            threading.Thread(target=self._visibility, daemon=True),
        ]
        if reports:
            self.threads.append(threading.Thread(target=self._reports, daemon=True))

    def _go(self) -> bool:
        """Wait while paused; False once stopped."""
        while not self.active.wait(0.05):
            if self.stop.is_set():
                return False
        return not self.stop.is_set()

    def _record(self, name: str, status: int, ms: float) -> None:
        if status == 200:
            self.lat[name].append(ms)
        else:
            self.errors[f"{name}:{status}"] = self.errors.get(f"{name}:{status}", 0) + 1

    def _diagram(self) -> None:
        url = f"{self.api}/api/v1/diagram?entity={urllib.parse.quote(self.entity)}"
        while self._go():
            self._record("diagram", *timed_get(url))
            self.stop.wait(0.3)

    def _reports(self) -> None:
        while self._go():
            frm = time.time_ns() - 3600 * 10**9
            self._record("failures", *timed_get(f"{self.api}/api/v1/failures?from={frm}"))
            self._record("stats", *timed_get(f"{self.api}/api/v1/stats"))
            self.stop.wait(self.report_pause)

    def _healthz(self) -> None:
        while self._go():
            self._record("healthz", *timed_get(f"{self.api}/healthz"))
            self.stop.wait(0.5)

    def _visibility(self) -> None:
        import grpc
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        channel = grpc.insecure_channel(self.grpc_target)
        call = channel.unary_unary(EXPORT)
        self.stop.wait(2.0)  # let the flood fill the queue first
        while self._go():
            request = ExportTraceServiceRequest()
            resource_spans = request.resource_spans.add()
            attr = resource_spans.resource.attributes.add(key="service.name")
            attr.value.string_value = "visibility-probe"
            span = resource_spans.scope_spans.add().spans.add()
            trace_id = os.urandom(16)
            span.trace_id, span.span_id, span.name = trace_id, os.urandom(8), "probe"
            span.start_time_unix_nano = time.time_ns() - 10**6
            span.end_time_unix_nano = time.time_ns()
            try:
                call(request.SerializeToString(), timeout=30)
            except grpc.RpcError:
                self.errors["probe:refused"] = self.errors.get("probe:refused", 0) + 1
                self.stop.wait(0.5)
                continue
            acked = time.monotonic()
            while True:
                status, _ = get(f"{self.api}/api/v1/traces/{trace_id.hex()}")
                if status == 200:
                    self.visible_s.append(time.monotonic() - acked)
                    break
                if time.monotonic() - acked > 60:
                    self.errors["probe:never"] = self.errors.get("probe:never", 0) + 1
                    break
                time.sleep(0.02)
            self.stop.wait(2.0)
        channel.close()

    def start(self, which: tuple[str, ...] = ()) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> dict[str, Any]:
        self.stop.set()
        self.active.set()
        for thread in self.threads:
            thread.join(120)
        out: dict[str, Any] = {name: summary(values) for name, values in self.lat.items()}
        out["visible_s"] = {
            "n": len(self.visible_s),
            "p50": pct(self.visible_s, 0.5),
            "max": round(max(self.visible_s), 2) if self.visible_s else None,
        }
        out["errors"] = self.errors
        return out


def idle_reads(api: str, entity: str, rounds: int, reports: bool = True) -> dict[str, Any]:
    lat: dict[str, list[float]] = {"diagram": [], "failures": [], "stats": [], "healthz": []}
    quoted = urllib.parse.quote(entity)
    for _ in range(rounds):
        frm = time.time_ns() - 3600 * 10**9
        for name, url in (
            ("diagram", f"{api}/api/v1/diagram?entity={quoted}"),
            ("failures", f"{api}/api/v1/failures?from={frm}"),
            ("stats", f"{api}/api/v1/stats"),
            ("healthz", f"{api}/healthz"),
        ):
            if not reports and name in ("failures", "stats"):
                continue
            status, ms = timed_get(url)
            if status == 200:
                lat[name].append(ms)
    return {name: summary(values) for name, values in lat.items()}


# ------------------------------------------------------------------------------ flood


def flood(target: str, seconds: float, streams: int, live: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_ingest.py"),
            "client",
            "--target",
            target,
            "--phase",
            "sustained",
            "--duration",
            str(seconds),
            "--streams",
            str(streams),
            "--spans",
            "510",
            "--warmup",
            "3",
            *(["--live"] if live else []),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def flood_result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"flood client failed: {err[-2000:]}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def alternate(readers: Readers, process: subprocess.Popen[str], seconds: float) -> list[Any]:
    """Readers on for ``seconds``, off for ``seconds``, ... while the flood runs: the
    slices as [wall start, wall end, reads on]."""
    slices: list[Any] = []
    on = True
    readers.start()
    while process.poll() is None:
        began = time.time()
        (readers.active.set if on else readers.active.clear)()
        deadline = time.monotonic() + seconds
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        slices.append([began, time.time(), on])
        on = not on
    return slices


#: Each alternating slice's first seconds are left out of its rate and its CPU.
SLICE_SETTLE_S = 1.0


def alternating_ratio(
    timeline: dict[str, Any], slices: list[Any], settle: float = SLICE_SETTLE_S
) -> dict[str, Any]:
    """The flood's ack rate in the slices with reads over the rate in those without,
    each slice's first ``settle`` seconds left out (a report in flight when the readers
    paused, the queue taking up the change). Alternating slices of one flood cancel the
    drift between two separate floods (this machine's rate moves by half from one minute
    to the next), which the phases' ratio does not."""
    start, step, spans = timeline["start"], timeline["step_s"], timeline["spans"]
    sums = {True: [0, 0.0], False: [0, 0.0]}
    for began, ended, on in slices:
        first = int((began + settle - start) / step + 0.999)
        last = min(int((ended - start) / step), len(spans) - 1)  # the last slice's end
        if last - first < 5:
            continue
        sums[on][0] += sum(spans[first:last])
        sums[on][1] += (last - first) * step
    rate = {on: (n / seconds if seconds else 0.0) for on, (n, seconds) in sums.items()}
    return {
        "with_reads_spans_per_s": round(rate[True]),
        "without_reads_spans_per_s": round(rate[False]),
        "ratio": round(rate[True] / rate[False], 3) if rate[False] else None,
        "seconds": [round(sums[True][1], 1), round(sums[False][1], 1)],
    }


def reads_cpu(
    cpu: dict[str, Any],
    alone: dict[str, Any],
    with_reads: dict[str, Any],
    sliced: dict[str, Any] | None,
) -> float | None:
    """The server's CPU spent on reads (cores): its CPU with reads less what ingest cost
    at the rate it kept then, ingest's CPU per span taken without reads (the slices
    without them, ``sliced`` being their ``alternating_ratio``, or the flood alone)."""
    if sliced:
        without, with_ = cpu["slices_without_reads"], cpu["slices_with_reads"]
        rate_without = sliced["without_reads_spans_per_s"]
        rate_with = sliced["with_reads_spans_per_s"]
    else:
        without, with_ = cpu["alone"], cpu["with_reads"]
        rate_without, rate_with = alone["spans_per_s"], with_reads["spans_per_s"]
    if not (without and with_ and rate_without):
        return None
    per_span = (without["server"] + without["decoders"]) / rate_without
    return float(round(with_["server"] + with_["decoders"] - per_span * rate_with, 2))


def wait_idle(api: str, limit: float = 120.0) -> float:
    """Seconds until the store's queue is empty (the flood's backlog is written)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        status, body = get(f"{api}/api/v1/ingest-stats")
        if status == 200 and json.loads(body)["queue"]["spans"] == 0:
            break
        time.sleep(0.5)
    return round(time.monotonic() - started, 1)


# ------------------------------------------------------------------------------ main


def prepare_db(seqtrace: str, db: Path, base: str | None) -> None:
    for leftover in (db, Path(f"{db}.wal")):
        leftover.unlink(missing_ok=True)
    shutil.rmtree(f"{db}.journal", ignore_errors=True)
    if base:
        shutil.copyfile(base, db)
        return
    files = sorted(str(p) for p in (ROOT / "sample_traces").glob("*.json"))
    subprocess.run(
        [seqtrace, "load", "--db", str(db), *files],
        check=True,
        capture_output=True,
        cwd=db.parent,
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seqtrace", default=str(ROOT / ".venv" / "bin" / "seqtrace"))
    parser.add_argument("--label", default="this tree")
    parser.add_argument("--workdir", default="/tmp/h7")
    parser.add_argument("--base-db", default=None, help="start from a copy of this store")
    parser.add_argument("--entity", default="order.id=ORD-1002")
    parser.add_argument("--flood", type=float, default=30.0, help="seconds per flood phase")
    parser.add_argument("--rounds", type=int, default=1, help="(flood, flood+reads) pairs")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--idle-rounds", type=int, default=15)
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--alternate",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="in the flood with reads, readers on for SECONDS then off for SECONDS, and so"
        " on: the ingest ratio of those slices of one flood (drift cancels out)",
    )
    parser.add_argument(
        "--keep-log", action="store_true", help="keep the server's log (an instrumented tree's)"
    )
    parser.add_argument(
        "--py-spy",
        default=None,
        metavar="PATH",
        help="py-spy record the server during the reads (collapsed stacks, every thread, "
        "idle ones too) into PATH.ROUND.txt",
    )
    parser.add_argument(
        "--without-reports",
        action="store_true",
        help="no failure report and no stats: the diagram, visibility and ingest alone",
    )
    parser.add_argument(
        "--report-pause",
        type=float,
        default=1.0,
        help="seconds between one (failure report, stats) pair and the next: 1 (default) asks"
        " them nearly back to back; 5 is one person with the Failures page in live mode",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="the flood as traffic sends it (bench_ingest.py client --live): spans start"
        " now, a trace's within a second, random trace ids; without it, the spans of a"
        " request start anywhere in an hour and its ids carry a counter (issue 20's flood)",
    )
    args = parser.parse_args()
    reports = not args.without_reports
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")

    work = Path(args.workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"reads-{os.getpid()}.duckdb"
    prepare_db(args.seqtrace, db, args.base_db)
    server = Server(args.seqtrace, db)
    meter = CpuMeter(server.process.pid)
    report: dict[str, Any] = {
        "label": args.label,
        "seqtrace": args.seqtrace,
        "machine": {"cpus": os.cpu_count()},
        "targets": TARGETS,
        "reports": reports,
        "report_pause_s": args.report_pause,
        "load_before": load_average(),
        "rounds": [],
    }
    try:
        report["idle"] = idle_reads(server.api, args.entity, args.idle_rounds, reports)
        for _ in range(args.rounds):
            process = flood(server.grpc, args.flood, args.streams, args.live)
            meter.follow_client(process.pid)
            time.sleep(4.0)  # the client's template build and warm-up
            began = time.time()
            alone = flood_result(process)
            cpu_alone = meter.use([(began, time.time())])
            settle_alone = wait_idle(server.api)
            readers = Readers(server.api, server.grpc, args.entity, reports, args.report_pause)
            process = flood(server.grpc, args.flood, args.streams, args.live)
            meter.follow_client(process.pid)
            time.sleep(4.0)  # the client's template build and warm-up: read at full flood
            began = time.time()
            slices = None
            if args.alternate:
                slices = alternate(readers, process, args.alternate)
            else:
                readers.start()
            spy = None
            if args.py_spy:
                spy = subprocess.Popen(
                    [
                        *(py_spy, "record", "--pid", str(server.process.pid)),
                        *("--duration", str(max(1, int(args.flood) - 6)), "--rate", "50"),
                        *("--threads", "--idle", "--nonblocking", "--format", "raw"),
                        *("-o", f"{args.py_spy}.{len(report['rounds'])}.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            with_reads = flood_result(process)
            sliced = alternating_ratio(with_reads["timeline"], slices) if slices else None
            if slices:
                on_off = {
                    on: [(a + SLICE_SETTLE_S, b) for a, b, o in slices if o == on]
                    for on in (True, False)
                }
                cpu = {"alone": cpu_alone, "slices_with_reads": meter.use(on_off[True])}
                cpu["slices_without_reads"] = meter.use(on_off[False])
            else:
                cpu = {"alone": cpu_alone, "with_reads": meter.use([(began, time.time())])}
            if spy is not None:
                spy.wait(60)
            reads = readers.finish()
            settle_reads = wait_idle(server.api)
            report["rounds"].append(
                {
                    "flood_alone_spans_per_s": alone["spans_per_s"],
                    "flood_with_reads_spans_per_s": with_reads["spans_per_s"],
                    "ingest_ratio": round(
                        with_reads["spans_per_s"] / max(1, alone["spans_per_s"]), 3
                    ),
                    "ingest_ratio_alternating": sliced,
                    "flood_errors": [alone["errors"], with_reads["errors"]],
                    "settle_s": [settle_alone, settle_reads],
                    "reads": reads,
                    "cpu_cores": cpu,
                    "reads_cpu_cores": reads_cpu(cpu, alone, with_reads, sliced),
                    "load": load_average(),
                }
            )
        report["idle_after"] = idle_reads(server.api, args.entity, args.idle_rounds, reports)
    finally:
        meter.stop()
        server.stop()
    report["load_after"] = load_average()
    report["first_error_bodies"] = FIRST_ERROR_BODIES
    if FIRST_ERROR_BODIES:
        print(f"errors (first body of each; server log kept at {server.log_path}):")
        for where, body in FIRST_ERROR_BODIES.items():
            print(f"  {where}: {body}")
    elif args.keep_log:
        print(f"server log kept at {server.log_path}")
    else:
        server.log_path.unlink(missing_ok=True)
    for path in (db, Path(f"{db}.wal")):
        path.unlink(missing_ok=True)
    shutil.rmtree(f"{db}.journal", ignore_errors=True)
    what = (
        f", reports every {args.report_pause:g} s after the last"
        if reports
        else ", without the failure report and stats"
    )
    print(f"== {args.label} ({args.seqtrace}{what}); load {report['load_before']}")
    print(
        "idle: "
        + ", ".join(f"{k} p50 {v['p50']} p95 {v['p95']} ms" for k, v in report["idle"].items())
    )
    for row in report["rounds"]:
        reads = row["reads"]
        print(
            f"ingest alone {row['flood_alone_spans_per_s']} spans/s, with reads "
            f"{row['flood_with_reads_spans_per_s']} ({row['ingest_ratio']:.0%}); load {row['load']}"
        )
        sliced = row["ingest_ratio_alternating"]
        if sliced:
            print(
                f"  alternating slices: with reads {sliced['with_reads_spans_per_s']} spans/s, "
                f"without {sliced['without_reads_spans_per_s']} ({sliced['ratio']:.0%}); "
                f"seconds {sliced['seconds']}"
            )
        for name in ("diagram", "failures", "stats", "healthz"):
            r = reads[name]
            print(
                f"  {name:9} n={r['n']:3} p50 {r['p50']} ms  p95 {r['p95']} ms  max {r['max']} ms"
            )
        print(f"  visible after ack: {reads['visible_s']}; errors {reads['errors']}")
        for phase, use in row["cpu_cores"].items():
            if use:
                print(
                    f"  cpu {phase}: server {use['server']} + decoders {use['decoders']} "
                    f"cores, flood client {use['client']}, readers {use['readers']}; machine "
                    f"busy {use['machine_busy']:.0%} of {os.cpu_count()} cores "
                    f"({use['seconds']} s); server peak RSS {use['server_rss_peak_mib']} MiB"
                )
        if row["reads_cpu_cores"] is not None:
            print(f"  the reads' CPU in the server, estimated: {row['reads_cpu_cores']} cores")
    print(json.dumps(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
