"""Run every benchmark in sequence (``make bench``); figures go to docs/performance.md.

    .venv/bin/python bench/run_all.py              # ingest, 10M-span store, queries
    .venv/bin/python bench/run_all.py --quick      # 1M spans, fewer samples (~3 min)

Order matters on a 2-core machine: each step runs alone. Steps:

1. ``bench/bench_ingest.py`` (if present): sustained OTLP/gRPC ingest.
2. ``bench/make_store.py``: builds the store through ``DuckDBStore.write``, unless the
   file exists already (``--rebuild`` forces it; the generator is deterministic per seed,
   so an existing store built with the same ``--spans``/``--seed`` is the same data).
3. ``bench/bench_queries.py``: diagrams, entity listings, failure and SLO reports through
   the query API and in-process, then diagrams under a write load (on a copy of the store).

Every step writes JSON into ``--out`` (default ``/tmp/seqtrace-bench``). Exit status is 0
when every step ran (a missed target is a finding, not a failure), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(name: str, command: list[str]) -> bool:
    print(f"\n=== {name}: {' '.join(command)}", flush=True)
    started = time.perf_counter()
    result = subprocess.run(command, check=False)
    elapsed = time.perf_counter() - started
    print(f"=== {name}: exit {result.returncode} after {elapsed:.0f} s", flush=True)
    return result.returncode == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1M spans, 30 diagrams, 2 repeats")
    parser.add_argument("--spans", type=int, help="store size (default 10M, --quick 1M)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="/tmp/seqtrace-bench", help="JSON results and stores")
    parser.add_argument("--store", help="store path (default OUT/store-SPANS-sSEED.duckdb)")
    parser.add_argument("--rebuild", action="store_true", help="build the store even if present")
    parser.add_argument("--skip-ingest", action="store_true", help="skip bench_ingest.py")
    parser.add_argument("--load-rate", type=float, default=10_000, help="(e) spans/s; 0 skips")
    parser.add_argument(
        "--skip-clickhouse", action="store_true", help="skip bench_clickhouse.py (needs chdb)"
    )
    args = parser.parse_args(argv)

    spans = args.spans or (1_000_000 if args.quick else 10_000_000)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = Path(args.store) if args.store else out / f"store-{spans}-s{args.seed}.duckdb"
    python = sys.executable
    ok: dict[str, bool] = {}

    ingest = HERE / "bench_ingest.py"
    if ingest.exists() and not args.skip_ingest:
        command = [python, str(ingest), "--json", str(out / "ingest.json")]
        if args.quick:
            command += ["--duration", "10", "--latency-duration", "8"]
        ok["ingest"] = run("bench_ingest", command)

    if args.rebuild or not store.exists():
        ok["make_store"] = run(
            "make_store",
            [
                python,
                str(HERE / "make_store.py"),
                "--spans",
                str(spans),
                "--seed",
                str(args.seed),
                "--out",
                str(store),
                "--force",
                "--json-out",
                str(out / "make_store.json"),
            ],
        )
    else:
        print(f"\n=== make_store: using the existing {store} (--rebuild to build it anew)")

    if store.exists():
        command = [
            python,
            str(HERE / "bench_queries.py"),
            "--db",
            str(store),
            "--seed",
            str(args.seed),
            "--json-out",
            str(out / "queries.json"),
            "--load-rate",
            str(args.load_rate),
        ]
        if args.quick:
            command += ["--samples", "30", "--repeat", "2", "--hours", "3"]
        ok["queries"] = run("bench_queries", command)
    else:
        ok["queries"] = False

    if not args.skip_clickhouse and store.exists():
        try:
            import chdb  # noqa: F401  (the optional extra: pip install seqtrace[clickhouse])
        except ImportError:
            print("\n=== bench_clickhouse: skipped, chdb is not installed (.[clickhouse])")
        else:
            command = [
                python,
                str(HERE / "bench_clickhouse.py"),
                "--spans",
                str(spans),
                "--duckdb",
                str(store),
                "--json-out",
                str(out / "clickhouse.json"),
            ]
            if args.quick:
                command += ["--entities", "10", "--repeat", "2"]
            ok["clickhouse"] = run("bench_clickhouse", command)

    print("\n=== summary: " + json.dumps(ok) + f"; JSON in {out}")
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
