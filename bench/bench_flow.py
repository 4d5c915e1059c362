"""Flows at incident volume (#16): `flow --root` over the busiest hour, through the query API.

Starts `seqtrace serve` on a COPY of the store (`--db`, copied to `--work` first: the server
opens its file read-write), finds the busiest hour (most spans) and its root operations,
then asks `/api/v1/flow?root=...` for the busiest root operations of that hour: one cold
call, then `--runs` warm ones each. Reports wall time per call (median and max of the warm
runs), the server's resident memory before the first flow and its peak (VmHWM) after, and
the variant count. With `--entity KEY=VALUE`, also the entity's diagram (folded past the
message cap) through the API.

    .venv/bin/python bench/bench_flow.py --db /tmp/bench/s10m.duckdb --work /tmp/flow-bench
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_queries import load_average, serve


def _get(api: str, path: str, params: dict[str, Any]) -> tuple[float, Any]:
    import urllib.request

    url = f"{api}{path}?{urllib.parse.urlencode(params)}"
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as response:
        body = response.read()
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(body) if body[:1] in (b"{", b"[") else body


def busiest_hour(db: str) -> tuple[int, int]:
    import duckdb

    con = duckdb.connect(db, read_only=True)
    hour = 3_600_000_000_000
    row = con.sql(
        "SELECT start_unix_nano // 3600000000000 AS h, count(*) AS n FROM spans "
        "GROUP BY h ORDER BY n DESC LIMIT 1"
    ).fetchall()[0]
    con.close()
    return int(row[0]) * hour, int(row[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the store (read-only; copied first)")
    parser.add_argument("--work", default="/tmp/seqtrace-flow-bench", help="where the copy goes")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--roots", type=int, default=3, help="busiest root operations asked")
    parser.add_argument("--entity", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    copy = work / "store.duckdb"
    shutil.copyfile(args.db, copy)
    start, spans = busiest_hour(str(copy))
    end = start + 3_600_000_000_000
    report: dict[str, Any] = {
        "store": args.db,
        "hour_start_unix_nano": start,
        "hour_spans": spans,
        "load_average_start": load_average(),
        "flows": [],
        "diagrams": [],
    }
    with serve(str(copy)) as server:
        report["rss_mb_at_start"] = server.rss_mb()
        _, roots = _get(server.api, "/api/v1/flow/roots", {"from": start, "to": end})
        rss_before = server.rss_mb()
        report["rss_mb_before_flows"] = rss_before
        for root in roots["roots"][: args.roots]:
            name = f"{root['service']}: {root['operation']}"
            params = {"root": name, "from": start, "to": end}
            cold, body = _get(server.api, "/api/v1/flow", params)
            warm = [_get(server.api, "/api/v1/flow", params)[0] for _ in range(args.runs)]
            row = {
                "root": name,
                "traces": body["traces"],
                "variants": len(body["variants"]),
                "cold_s": round(cold, 3),
                "warm_median_s": round(statistics.median(warm), 3),
                "warm_max_s": round(max(warm), 3),
                "rss_mb": server.rss_mb(),
            }
            report["flows"].append(row)
            print(json.dumps(row))
        for entity in args.entity:
            params = {"entity": entity, "from": 0, "to": 1 << 62}
            cold, body = _get(server.api, "/api/v1/diagram", params)
            warm = [_get(server.api, "/api/v1/diagram", params)[0] for _ in range(args.runs)]
            row = {
                "entity": entity,
                "traces": len(body["traces"]),
                "messages": len(body["messages"]),
                "omitted_messages": body["omitted_messages"],
                "failed_messages": sum(1 for m in body["messages"] if m["status"] == "error"),
                "cold_s": round(cold, 3),
                "warm_median_s": round(statistics.median(warm), 3),
                "warm_max_s": round(max(warm), 3),
            }
            report["diagrams"].append(row)
            print(json.dumps(row))
        report["rss_mb_after"] = server.rss_mb()
    peak = report["rss_mb_after"].get("VmHWM", 0.0)
    report["rss_growth_mb"] = round(peak - rss_before.get("VmRSS", 0.0), 1)
    report["load_average_end"] = load_average()
    print(
        f"rss before flows {rss_before}, after {report['rss_mb_after']}, "
        f"peak growth {report['rss_growth_mb']} MiB; load average {report['load_average_start']}"
        f" -> {report['load_average_end']}"
    )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    copy.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
