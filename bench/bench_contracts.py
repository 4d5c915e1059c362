"""`seqtrace contract check --key order.id` over one hour of traffic in a big store.

    .venv/bin/python bench/bench_contracts.py --db /tmp/bench/s10m.duckdb --json-out c.json
    .venv/bin/python bench/bench_contracts.py --spans 1000000 --out /tmp/bench/s1m.duckdb

Opens the store read-only in this process (LocalSource, as the CLI does without a server),
picks the busiest hour, drafts a contract (`contract init`) from the entity whose sequence
is most common in that hour, and times `contract_check(key=order.id)` over that hour
(target: under 5 s on the 10M-span store), plus 15- and 30-minute windows to show how it
scales with the number of entities. `--verify N` re-checks N random entities one by one
(the per-entity path builds every diagram) and counts findings that differ from the bulk
path, which builds one diagram per entity shape. The load average is printed with every
figure: other work on a 2-core box moves these numbers.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analyzer.contracts import contract_check, contract_init, parse_contract  # noqa: E402
from analyzer.contracts.fetch import entity_rows  # noqa: E402
from analyzer.source import open_database  # noqa: E402

HOUR_NS: Final = 3_600_000_000_000
TARGET_S: Final = 5.0


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", help="an existing store (built by bench/make_store.py)")
    parser.add_argument("--spans", type=int, help="build a store of this many spans first")
    parser.add_argument("--out", help="where --spans builds the store")
    parser.add_argument("--key", default="order.id")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--verify", type=int, default=0, metavar="N")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    db = args.db
    if args.spans:
        db = args.out or f"/tmp/bench/contracts-{args.spans}.duckdb"
        if not Path(db).exists():
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "bench" / "make_store.py"),
                    "--spans",
                    str(args.spans),
                    "--out",
                    db,
                ],
                check=True,
            )
    if not db:
        parser.error("give --db PATH or --spans N")
    source = open_database(db)
    reader = source.reader
    stats = reader.stats()
    assert stats.first_unix_nano is not None and stats.last_unix_nano is not None
    frame = reader.throughput(stats.first_unix_nano, stats.last_unix_nano + 1, HOUR_NS)
    busiest = frame.sort("spans", descending=True).row(0, named=True)
    start = int(busiest["bucket_unix_nano"])
    end = start + HOUR_NS

    rows = entity_rows(reader, args.key, start, end)
    shapes = collections.Counter(tuple(r.shape for r in v) for v in rows.values())
    common = shapes.most_common(1)[0][0]
    model = next(v for v in sorted(rows) if tuple(r.shape for r in rows[v]) == common)
    contract = contract_init(source, f"{args.key}={model}", start, end)
    files = [("bench.mmd", contract)]
    print(f"store {db}: {stats.spans:,} spans; busiest hour {busiest['spans']:,} spans")
    arrows = len(parse_contract(contract, "bench.mmd").messages)
    print(f"contract drafted from {args.key}={model} ({arrows} calls)")

    figures: list[dict[str, Any]] = []
    for minutes in (15, 30, 60):
        window_end = start + minutes * 60_000_000_000
        times = []
        result: dict[str, Any] = {}
        for _ in range(args.repeat):
            began = time.perf_counter()
            result = contract_check(source, files, key=args.key, start=start, end=window_end)
            times.append(time.perf_counter() - began)
        report = result["contracts"][0]
        figure = {
            "window_min": minutes,
            "entities": result["entities"],
            "conforming": report["conforming"],
            "violations": len(report["violations"]),
            "seconds_min": round(min(times), 3),
            "seconds_median": round(sorted(times)[len(times) // 2], 3),
            "load": load(),
        }
        figures.append(figure)
        print(
            f"{minutes:>3} min: {figure['entities']:>6,} entities  "
            f"{figure['conforming']:>6,} conform  min {figure['seconds_min']:.2f} s  "
            f"median {figure['seconds_median']:.2f} s  load {figure['load']}"
        )
    hour = figures[-1]
    verdict = "PASS" if hour["seconds_median"] < TARGET_S else "FAIL"
    print(
        f"{verdict}: one hour ({hour['entities']:,} entities) in "
        f"{hour['seconds_median']:.2f} s (target {TARGET_S} s)"
    )

    mismatches = 0
    if args.verify:
        bulk = contract_check(source, files, key=args.key, start=start, end=end)
        found: dict[str, list[tuple[Any, ...]]] = collections.defaultdict(list)
        for v in bulk["contracts"][0]["violations"]:
            found[v["entity"]["value"]].append(
                (v["kind"], v["expected"], v["observed"], v["trace_id"], v["span_id"])
            )
        picks = random.Random(1).sample(sorted(rows), min(args.verify, len(rows)))
        for value in picks:
            one = contract_check(source, files, entity=f"{args.key}={value}", start=start, end=end)
            mine = [
                (v["kind"], v["expected"], v["observed"], v["trace_id"], v["span_id"])
                for v in one["contracts"][0]["violations"]
            ]
            if mine != found.get(value, []):
                mismatches += 1
        print(f"verify: {len(picks)} entities re-checked one by one, {mismatches} differ")

    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {
                    "db": db,
                    "spans": stats.spans,
                    "busiest_hour_spans": busiest["spans"],
                    "contract_from": f"{args.key}={model}",
                    "figures": figures,
                    "target_s": TARGET_S,
                    "verdict": verdict,
                    "verify_mismatches": mismatches,
                    "nproc": os.cpu_count(),
                },
                indent=2,
            )
            + "\n"
        )
    return 0 if verdict == "PASS" and not mismatches else 1


if __name__ == "__main__":
    raise SystemExit(main())
