"""The service map over a big store: time and peak memory of one call.

Each measurement runs in a fresh process (``--one``) on the store opened read-only, so
its peak RSS (``ru_maxrss``) is the map's own and not an earlier call's. Ranges: the last
24 h of data (the UI's default range on a store covering more than 7 days) and, with
``--whole``, everything stored. ``--seqtrace-root`` measures another checkout (its
``.venv``), so the session's base and this tree can be compared in one sitting:

    .venv/bin/python bench/bench_service_map.py --db /tmp/bench/s10m.duckdb
    .venv/bin/python bench/bench_service_map.py --db /tmp/bench/s10m.duckdb \\
        --seqtrace-root /tmp/base --runs 2 --whole
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOUR_NS = 3_600_000_000_000


def one(db: str, hours: float | None) -> dict[str, object]:
    """One service map in this process (``--one``): wall time, peak RSS, size."""
    sys.path.insert(0, os.getcwd())
    from analyzer.source import LocalSource
    from spanstore.duckdb_store import DuckDBStore

    with DuckDBStore(db, read_only=True) as store:
        last = store.stats().last_unix_nano or 0
        start = 0 if hours is None else last - int(hours * HOUR_NS)  # None: the last 24 h
        started = time.perf_counter()
        answer = LocalSource(store).service_map(start, None)
        elapsed = time.perf_counter() - started
    return {
        "seconds": round(elapsed, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "edges": len(answer.get("edges", [])),
        "calls": sum(int(edge.get("calls", 0)) for edge in answer.get("edges", [])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a DuckDB store (opened read-only)")
    parser.add_argument("--runs", type=int, default=2, help="fresh processes per range")
    parser.add_argument("--whole", action="store_true", help="also the whole store")
    parser.add_argument("--seqtrace-root", default=str(ROOT), help="the checkout measured")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hours", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.db, args.hours)))
        return
    checkout = Path(args.seqtrace_root).resolve()
    python = checkout / ".venv" / "bin" / "python"
    ranges: list[tuple[str, float | None]] = [("last 24 h", 24.0)]
    if args.whole:
        ranges.append(("whole store", None))
    print(f"== {checkout}; load {os.getloadavg()[0]:.2f}")
    for label, hours in ranges:
        for _ in range(args.runs):
            command = [str(python), str(Path(__file__).resolve()), "--db", args.db, "--one"]
            if hours is not None:
                command += ["--hours", str(hours)]
            done = subprocess.run(command, cwd=checkout, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{label}: {done.stderr.strip().splitlines()[-1]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{label}: {result} load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
