"""The partial-failure report: on one busy hour held in memory (issue 4), and on a store's
hours, read from the store against the whole-frame analysis it replaced (issue 20).

    .venv/bin/python bench/bench_failures.py            # 500k spans, 2 / 30 / 100 % failing
    .venv/bin/python bench/bench_failures.py --db /tmp/bench/s10m.duckdb --hours 5

In memory: the frame is ``tests/analyzer/test_failures_perf.py``'s ``synthetic_frame``: 50k
traces of 10 spans (two services behind a frontend, a retried database read, a cache call,
a publish), a share of them failing in three ways. Prints the median of 3 runs of
``failure_report`` per share, with the load average: on 2 shared cores other work moves
these numbers. The report through the query API is measured by ``bench_queries.py``
(``failures_1h``).

With ``--db`` (opened read-only): the one-hour reports of the ``--hours`` busiest hours
(and the last hour of the store), each taken ``--repeat`` times both ways, interleaved in
this one process: ``store`` is ``LocalSource.failures`` (``analyzer.failures_store``: counted
in SQL, only the listed traces read), ``frame`` reads every span of the range into the
span frame and runs ``failure_report`` on it (the design before #20). Prints each hour's
medians and whether the two reports agree (they must, unless traces were omitted).

With ``--db --server``: each of those hours, then the whole store, asked ``--repeat`` times
in a row through a server's source (``LocalSource(keep_failure_counts=True)``), as the
Failures page in live mode asks: the first report counts, the next ones follow it.

    .venv/bin/python bench/bench_failures.py --db /tmp/bench/s10m.duckdb --server --hours 3

With ``--flood DIR``: the last hour's report as the server makes it while a flood writes,
in one process and measured by CPU as well as time: a new store in DIR is given
``--base`` requests of bench_ingest.py's flood (510 spans, fresh trace ids, starts spread
over the hour before), then each of ``--repeat`` rounds writes ``--per-round`` more
(``--per-round 100``: about a second of this VM's saturated collector), waits for the
writer, and asks the report and the overview's stats; with ``--writing`` a thread writes
all the time instead (as fast as the store takes it, the writer busy) and the report is
asked every ``--pause`` seconds. DuckDB runs at one thread, so the report's CPU is its
own thread's (``time.thread_time``; ``--profile FILE``: cProfile on that clock). Prints
per round the report's wall and CPU time, and the medians.

    .venv/bin/python bench/bench_failures.py --flood /tmp/ff --base 3000 --repeat 20
    .venv/bin/python bench/bench_failures.py --flood /tmp/ff --writing --pause 5 --repeat 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analyzer.failures import failing_trace_ids, failure_report  # noqa: E402
from tests.analyzer.test_failures_perf import HOUR_NS, T0, synthetic_frame  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def in_memory() -> int:
    for share in (0.02, 0.3, 1.0):
        frame = synthetic_frame(traces=50_000, error_share=share)
        times = []
        summary: object = None
        for _ in range(3):
            began = time.perf_counter()
            summary = failure_report(frame, {}, T0, T0 + HOUR_NS)["summary"]
            times.append(time.perf_counter() - began)
        print(
            f"{frame.height} spans, {share:.0%} failing: median {sorted(times)[1]:.3f} s "
            f"(load {load()}) {summary}"
        )
    return 0


def whole_frame_report(store: Any, start: int, end: int) -> dict[str, Any]:
    """The report as LocalSource made it before #20: every span of the range read."""
    frame = store.span_frame(start, end, None)
    entities = store.trace_entities(failing_trace_ids(frame, start, end, None))
    return failure_report(frame, entities, start, end, None)


def counts(report: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in report["summary"].items() if k != "patterns"}


def busiest_hours(store: Any, hours: int) -> list[int]:
    """The starts of the store's ``hours`` busiest hours, busiest first."""
    busiest = store.throughput(-(2**62), 2**62, HOUR_NS)
    starts: list[int] = (
        busiest.sort("spans", descending=True)["bucket_unix_nano"].head(hours).to_list()
    )
    return starts


def from_store(db: str, hours: int, repeat: int) -> int:
    from analyzer.source import LocalSource
    from spanstore.duckdb_store import DuckDBStore

    store = DuckDBStore(db, read_only=True)
    source = LocalSource(store)
    starts = busiest_hours(store, hours)
    last = store.last_unix_nano()
    if last is not None:
        starts.append(last + 1 - HOUR_NS)
    print(f"{db}: {store.stats().spans} spans; load {load()}")
    for start in starts:
        timings: dict[str, list[float]] = {"store": [], "frame": []}
        reports: dict[str, dict[str, Any]] = {}
        for _ in range(repeat):
            for name in ("store", "frame"):  # interleaved: the machine's noise hits both
                began = time.perf_counter()
                if name == "store":
                    reports[name] = source.failures(start, start + HOUR_NS)
                else:
                    reports[name] = whole_frame_report(store, start, start + HOUR_NS)
                timings[name].append(time.perf_counter() - began)
        new, old = reports["store"], reports["frame"]
        omitted = new["omitted_traces"]
        # Omitted traces: the counts must agree (patterns then count the listed traces).
        agree = counts(new) == counts(old) if omitted else new == old
        print(
            f"hour {start}: store {statistics.median(timings['store']):.3f} s, frame "
            f"{statistics.median(timings['frame']):.3f} s (medians of {repeat}; load {load()}); "
            f"{new['summary']['traces']} traces, {new['summary']['partial']} partial, "
            f"{new['summary']['failed']} failed, {len(new['traces'])} listed, {omitted} "
            f"omitted; {'agree' if agree else 'DIFFER'}"
        )
    store.close()
    return 0


def as_server(db: str, hours: int, repeat: int) -> int:
    """The reports as the server makes them (``keep_failure_counts``: the counting pass kept
    between reports, analyzer.failures_store.KeptCounts), each range asked ``repeat`` times
    in a row: the busiest hours, then the whole store (too many traces to keep: counted
    with ``failure_candidates`` every time). The first time of each is cold for the kept
    counts, not for DuckDB's buffers."""
    from analyzer.source import LocalSource
    from spanstore.duckdb_store import DuckDBStore

    store = DuckDBStore(db, read_only=True, memory_limit="384MB")  # the server's default
    starts = busiest_hours(store, hours)
    ranges = [(start, start + HOUR_NS) for start in starts] + [(0, 2**62)]
    print(f"{db}: {store.stats().spans} spans; load {load()}")
    for start, end in ranges:
        source = LocalSource(store, keep_failure_counts=True)
        times = []
        for _ in range(repeat):
            began = time.perf_counter()
            report = source.failures(start, end)
            times.append(time.perf_counter() - began)
        what = "whole store" if start == 0 else f"hour {start}"
        print(
            f"{what}: " + " / ".join(f"{t:.3f}" for t in times) + f" s (load {load()}); "
            f"{report['summary']['traces']} traces"
        )
    store.close()
    return 0


def under_flood(
    workdir: str,
    base: int,
    rounds: int,
    per_round: int,
    profile: str | None,
    writing: bool,
    pause: float,
) -> int:
    import shutil
    import threading

    from analyzer.source import LocalSource
    from bench.bench_ingest import Stamper, build_templates
    from spanstore.base import StoreUnavailable
    from spanstore.duckdb_store import DuckDBStore

    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(workdir)
    # One DuckDB thread: all of a report's work is on the thread that asks it, and that
    # thread's CPU time is the report's (session 13: the ratio is the same at 1 and 2).
    store = DuckDBStore(Path(workdir) / "flood.duckdb", memory_limit="384MB", threads=1)
    stamper = Stamper(build_templates(16, 510, 12), stream=1)

    def write(request: Any) -> None:
        while True:
            try:
                store.write(request)
                return
            except StoreUnavailable:  # the queue is full: a client would retry
                time.sleep(0.01)

    began = time.perf_counter()
    for _ in range(base):
        write(stamper.next())
    store.flush()
    print(f"{base * 510} spans written in {time.perf_counter() - began:.1f} s; load {load()}")
    source = LocalSource(store, keep_failure_counts=True)
    now = time.time_ns()
    source.failures(now - HOUR_NS, now)  # the first report counts from scratch
    walls, cpus, stats_walls = [], [], []
    stop = threading.Event()
    written = [0]

    def write_on() -> None:  # --writing: a flood as fast as the writer takes it meanwhile
        request = stamper.next()
        while not stop.is_set():
            try:
                store.write(request)
            except StoreUnavailable:  # the queue is full: a client would retry
                time.sleep(0.01)
                continue
            written[0] += 1
            request = stamper.next()

    writer = threading.Thread(target=write_on, daemon=True)
    if writing:
        writer.start()
    profiler: Any = None
    if profile:
        import cProfile

        profiler = cProfile.Profile(time.thread_time)  # CPU time: what the report costs
    for n in range(rounds):
        if writing:
            time.sleep(pause)
        else:
            for _ in range(per_round):
                write(stamper.next())
            store.flush()
        now = time.time_ns()
        cpu, wall = time.thread_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        report = source.failures(now - HOUR_NS, now)
        if profiler is not None:
            profiler.disable()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.thread_time() - cpu)
        wall = time.perf_counter()
        source.stats()
        stats_walls.append(time.perf_counter() - wall)
        summary = report["summary"]
        print(
            f"round {n}: report {walls[-1]:.3f} s, cpu {cpus[-1]:.3f} s; stats "
            f"{stats_walls[-1]:.3f} s; {summary['traces']} traces, {summary['partial']}"
            f"+{summary['failed']} failing, {len(report['traces'])} listed"
            + (f"; queue {store.ingest_stats()['queue']}" if writing else "")
        )
    print(
        f"median of {rounds}: report {statistics.median(walls):.3f} s, cpu "
        f"{statistics.median(cpus):.3f} s; stats {statistics.median(stats_walls):.3f} s;"
        f" load {load()}"
    )
    stop.set()
    if writing:
        writer.join()
        print(f"written meanwhile: {written[0] * 510} spans")
    if profiler is not None:
        profiler.dump_stats(profile)
    store.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", help="a DuckDB store: its one-hour reports, both ways")
    parser.add_argument("--hours", type=int, default=5, help="the busiest hours (default 5)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--server",
        action="store_true",
        help="with --db: the server's reports (counts kept), each range asked --repeat times,"
        " the busiest hours and the whole store",
    )
    parser.add_argument("--flood", metavar="DIR", help="the last hour's report during a flood")
    parser.add_argument("--base", type=int, default=3000, help="with --flood: requests first")
    parser.add_argument("--per-round", type=int, default=100, help="with --flood: per round")
    parser.add_argument("--profile", help="with --flood: cProfile the reports into this file")
    parser.add_argument(
        "--writing",
        action="store_true",
        help="with --flood: write all the time (as fast as the store takes it), report every"
        " --pause seconds",
    )
    parser.add_argument("--pause", type=float, default=1.0, help="with --writing (default 1 s)")
    args = parser.parse_args()
    if args.flood:
        return under_flood(
            args.flood,
            args.base,
            args.repeat,
            args.per_round,
            args.profile,
            args.writing,
            args.pause,
        )
    if args.db and args.server:
        return as_server(args.db, args.hours, args.repeat)
    if args.db:
        return from_store(args.db, args.hours, args.repeat)
    return in_memory()


if __name__ == "__main__":
    sys.exit(main())
