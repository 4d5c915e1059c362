"""The SLO report over a whole store, as a one-shot CLI call and as the server answers it.

    .venv/bin/python bench/bench_slo.py --db /tmp/bench/s10m.duckdb --runs 5 --json-out slo.json

The spec is bench_queries.py's (3 SLOs: 30d, 7d and 30d windows over two services). Three
passes, one process, each call timed as wall and CPU seconds of the whole call:

1. ``one-shot``: ``LocalSource(store)`` on the file opened read-only, as ``seqtrace slo
   --db`` runs: every call reads the whole range (at = newest span end + 1).
2. ``kept``: ``LocalSource(store, keep_slo_events=True)``, the server's source, on the
   same read-only file: the first call reads every UTC day of the range; the next ones
   reuse the days, since nothing can write a file held read-only.
3. ``edited``: the ``kept`` source again, asked for the spec as a user edits it in the
   UI: every objective changed (the events are the same: nothing is read), then the
   latency SLO's threshold changed (that SLO's events alone are read again).
4. ``live``: a copy of the file opened for writing (the copy is migrated first if its
   schema is older). Before each call ``--batch`` spans (frontend ``POST /api/checkout``
   events, a tenth of them failing) are written just after the newest span, as ingest
   would, so the newest day changes every time; the report is at the newest span's time
   (the SPEC default). The copy is deleted afterwards.

Every ``kept``, ``edited`` and ``live`` report is compared with a one-shot report at the same ``at``
(the whole JSON, entities included); ``identical`` records the result. Run it on an idle
machine: on 2 cores anything else moves every figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_queries import SLO_SPEC, finish, load_average
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from analyzer.source import LocalSource
from spanstore.duckdb_store import DuckDBStore

#: DuckDB's memory limit, as the server's `db_memory_mib` (env SEQTRACE_DB_MEMORY_MIB).
MEMORY = f"{os.environ.get('SEQTRACE_DB_MEMORY_MIB', '384')}MB"

TARGET_S = 2.0
#: The bench spec as a user edits it: (what changed, the spec).
EDITS: list[tuple[str, str]] = [
    (
        "objectives",
        SLO_SPEC.replace("objective: 99.5", "objective: 99.0")
        .replace("objective: 99\n", "objective: 98\n")
        .replace("objective: 99.9", "objective: 99.5"),
    ),
    ("latency threshold", SLO_SPEC.replace("threshold_ms: 300", "threshold_ms: 250")),
]


def timed(call: Any) -> tuple[Any, float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    result = call()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def summary(name: str, samples: list[tuple[float, float]], **notes: Any) -> dict[str, Any]:
    walls = [w for w, _ in samples]
    return {
        "pass": name,
        "calls": len(samples),
        "wall_s": [round(w, 3) for w in walls],
        "cpu_s": [round(c, 3) for _, c in samples],
        "wall_median_s": round(statistics.median(walls), 3) if walls else None,
        "wall_max_s": round(max(walls), 3) if walls else None,
        **notes,
    }


def checkout_batch(first_start: int, size: int, serial: int) -> ExportTraceServiceRequest:
    """``size`` one-span traces of the frontend's checkout, a tenth failing."""
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add()
    spans.resource.attributes.add(key="service.name").value.string_value = "frontend"
    scope = spans.scope_spans.add()
    for i in range(size):
        span = scope.spans.add()
        span.trace_id = (0xB5 << 120 | serial << 32 | i).to_bytes(16, "big")
        span.span_id = (serial << 32 | i | 1 << 63).to_bytes(8, "big")
        span.name = "POST /api/checkout"
        span.kind = 2  # type: ignore[assignment]  # SERVER
        span.start_time_unix_nano = first_start + i * 1_000
        span.end_time_unix_nano = span.start_time_unix_nano + 40_000_000
        if i % 10 == 0:
            span.status.code = 2  # type: ignore[assignment]  # ERROR
            span.status.message = "payment declined"
    return request


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a store built by bench/make_store.py")
    parser.add_argument("--runs", type=int, default=5, help="calls per pass (default 5)")
    parser.add_argument("--batch", type=int, default=512, help="spans written per live call")
    parser.add_argument(
        "--workdir", default=None, help="where the live copy goes (default: beside --db)"
    )
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args()

    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "db": args.db,
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load_average_start": load_average(),
        "target_s": TARGET_S,
        "passes": [],
    }
    with DuckDBStore(args.db, read_only=True, memory_limit=MEMORY) as store:
        newest = store.last_unix_nano()
        if newest is None:
            print(f"{args.db} holds no spans", file=sys.stderr)
            return 2
        at = newest + 1
        one_shot = LocalSource(store)
        samples, reference = [], None
        for _ in range(args.runs):
            reference, wall, cpu = timed(lambda: one_shot.slo(SLO_SPEC, at, "bench-slo.yaml"))
            samples.append((wall, cpu))
            print(f"one-shot: {wall:.3f} s (cpu {cpu:.3f} s)", flush=True)
        report["passes"].append(summary("one-shot", samples))

        kept = LocalSource(store, keep_slo_events=True)
        samples, identical = [], True
        for _ in range(args.runs):
            result, wall, cpu = timed(lambda: kept.slo(SLO_SPEC, at, "bench-slo.yaml"))
            samples.append((wall, cpu))
            identical &= result == reference
            print(f"kept: {wall:.3f} s (cpu {cpu:.3f} s)", flush=True)
        report["passes"].append(
            summary("kept", samples, first_s=round(samples[0][0], 3), identical=identical)
        )

        samples, identical = [], True
        for name, spec in EDITS:
            result, wall, cpu = timed(lambda spec=spec: kept.slo(spec, at, "bench-slo.yaml"))
            samples.append((wall, cpu))
            identical &= result == one_shot.slo(spec, at, "bench-slo.yaml")
            print(f"edited ({name}): {wall:.3f} s (cpu {cpu:.3f} s)", flush=True)
        report["passes"].append(
            summary("edited", samples, edits=[name for name, _ in EDITS], identical=identical)
        )

    workdir = Path(args.workdir) if args.workdir else Path(args.db).parent
    copy = workdir / (Path(args.db).name + ".slo-live")
    shutil.copyfile(args.db, copy)
    try:
        _, opened, _ = timed(lambda: DuckDBStore(copy).close())  # migrates an older schema
        with DuckDBStore(copy, memory_limit=MEMORY) as live:
            kept = LocalSource(live, keep_slo_events=True)
            one_shot = LocalSource(live)
            kept.slo(SLO_SPEC, None, "bench-slo.yaml")  # every day read once
            samples, identical = [], True
            for serial in range(1, args.runs + 1):
                newest = live.last_unix_nano() or 0
                live.write(checkout_batch(newest + 1_000_000, args.batch, serial))
                result, wall, cpu = timed(lambda: kept.slo(SLO_SPEC, None, "bench-slo.yaml"))
                samples.append((wall, cpu))
                identical &= result == one_shot.slo(
                    SLO_SPEC, result["at_unix_nano"], "bench-slo.yaml"
                )
                print(f"live: {wall:.3f} s (cpu {cpu:.3f} s)", flush=True)
            report["passes"].append(
                summary("live", samples, identical=identical, copy_open_s=round(opened, 2))
            )
    finally:
        for path in (copy, Path(f"{copy}.wal")):
            path.unlink(missing_ok=True)
        shutil.rmtree(f"{copy}.journal", ignore_errors=True)

    print(f"{'pass':<10} {'calls':>5} {'median s':>9} {'max s':>7}  identical")
    for row in report["passes"]:
        same = row.get("identical", "")
        median, longest = row["wall_median_s"], row["wall_max_s"]
        print(f"{row['pass']:<10} {row['calls']:>5} {median:>9} {longest:>7}  {same}")
    finish(report, args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
