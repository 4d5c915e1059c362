"""The query language on a span store (#17): find and compare, warm, through the API.

    .venv/bin/python bench/bench_query.py --db /tmp/bench/s10m.duckdb --copy-to /tmp/q.duckdb

``seqtrace serve`` owns a DuckDB file while it runs, and the shared bench store is
read-only, so the file is first copied (``--copy-to``; deleted afterwards) and the server
started on the copy. Each query runs once to warm up, then ``--repeat`` times; the figure
is the median wall time of the whole API call as a client sees it (HTTP and JSON
included). Targets (issue #17): a single-spanset filter over the whole store <= 1 s; a
structural query (>>, !<) over one hour <= 1.5 s; compare over one hour <= 2 s.
``--in-process`` measures the same calls with LocalSource on the file opened read-only
instead (no copy, no server). ``--chdb DIR`` adds the same calls on a chdb store already
loaded there (see bench_clickhouse.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Final

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_queries import HOUR_NS, finish, load_average, serve

from analyzer.source import HttpSource, LocalSource

#: (label, kind, query, range, target seconds)
CASES: Final = [
    ("filter, whole store: errors of one service", "find",
     '{ status = error && resource.service.name = "payment" }', "all", 1.0),
    ("filter, whole store: 5xx answers", "find",
     "{ span.http.response.status_code >= 500 }", "all", 1.0),
    ("filter, whole store: slow spans", "find", "{ duration > 2s }", "all", 1.0),
    ("structural, 1 h: errors beneath frontend servers (>>)", "find",
     '{ kind = server && resource.service.name = "frontend" } >> { status = error }', "hour", 1.5),
    ("structural, 1 h: a cascade's last error (!<)", "find",
     "{ status = error } !< { status = error }", "hour", 1.5),
    ("compare, 1 h: errors against the rest", "compare", "{ status = error }", "hour", 2.0),
    ("compare, 1 h: slow payment spans", "compare",
     '{ resource.service.name = "payment" && duration > 200ms }', "hour", 2.0),
]  # fmt: skip


def measure(call: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = call()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def run_cases(source: Any, last: int, repeat: int, label: str) -> list[dict[str, Any]]:
    out = []
    for name, kind, query, span, target in CASES:
        start, end = (0, last + 1) if span == "all" else (last + 1 - HOUR_NS, last + 1)
        if kind == "find":
            seconds, result = measure(partial(source.find, query, start, end, 100), repeat)
            size = f"{result['total']} traces"
        else:
            seconds, result = measure(partial(source.compare, query, None, start, end), repeat)
            size = f"{result['selection']['spans']} vs {result['baseline']['spans']} spans"
        row = {
            "via": label,
            "case": name,
            "query": query,
            "seconds": round(seconds, 3),
            "target_s": target,
            "ok": seconds <= target,
            "result": size,
            "load_average": load_average(),
        }
        print(
            f"{label:8} {seconds:7.3f} s  (target {target} s)  {name}: {size}  "
            f"[load {row['load_average']}]"
        )
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", required=True)
    parser.add_argument("--copy-to", help="copy the store here and serve the copy (deleted after)")
    parser.add_argument(
        "--in-process", action="store_true", help="LocalSource, read-only, no server"
    )
    parser.add_argument("--chdb", metavar="DIR", help="also run on a chdb store in DIR")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    report: dict[str, Any] = {"db": args.db, "load_average_start": load_average(), "rows": []}
    from spanstore.duckdb_store import DuckDBStore

    with DuckDBStore(args.db, read_only=True) as store:
        last = store.last_unix_nano() or 0
    if args.in_process:
        with DuckDBStore(args.db, read_only=True) as store:
            report["rows"] += run_cases(LocalSource(store), last, args.repeat, "local")
    else:
        if not args.copy_to:
            parser.error("--copy-to is needed to serve (the bench store is read-only)")
        shutil.copyfile(args.db, args.copy_to)
        try:
            with serve(args.copy_to) as server:
                report["rows"] += run_cases(HttpSource(server.api), last, args.repeat, "api")
        finally:
            for path in (args.copy_to, args.copy_to + ".wal"):
                if os.path.exists(path):
                    os.remove(path)
            shutil.rmtree(args.copy_to + ".journal", ignore_errors=True)
    if args.chdb:
        from spanstore.clickhouse_store import ClickHouseStore

        store = ClickHouseStore.chdb(args.chdb, read_only=True)
        try:
            report["rows"] += run_cases(LocalSource(store), last, args.repeat, "chdb")
        finally:
            store.close()
    finish(report, args.json_out)
    print(
        json.dumps([r for r in report["rows"] if not r["ok"]], indent=1) if report["rows"] else ""
    )


if __name__ == "__main__":
    main()
