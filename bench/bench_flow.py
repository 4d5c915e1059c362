"""Flows at incident volume (#16): `flow --root` over the busiest hour, through the query API.

Starts `seqtrace serve` on a COPY of the store (`--db`, copied to `--work` first: the server
opens its file read-write), finds the busiest hour (most spans) and its root operations,
then asks `/api/v1/flow?root=...` for the busiest root operations of that hour: one cold
call, then `--runs` warm ones each. Reports wall time per call (median and max of the warm
runs), the server's resident memory before the first flow and its peak (VmHWM) after, and
the variant count. With `--entity KEY=VALUE`, also the entity's diagram (folded past the
message cap) through the API, and the server's memory after it; with `--fresh N`, N more
first computations of it, each after one unrelated span was written through OTLP/gRPC into
the hour of the entity's first message (the server keeps a diagram only while nothing was
written in its traces' hours); with `--elsewhere N`, N calls each after a span written now.
The calls begin once the server's writer has given every settled trace of the copy its
kept shape (`trace_shapes.hours_to_do` 0 in `/api/v1/ingest-stats`; a tree without kept
shapes begins at once), and the wait is reported; `--during-backfill` begins at once.
`--seqtrace` serves with another tree's executable (the before side of an A/B),
`--config` with a config file (e.g. DuckDB's memory limit). With `--ab-diagrams N`,
in-process on the file read-only: N order diagrams (unfolded: small entities) with the old
one-scan `spans_of_traces` query and the new rowid one, interleaved, so the unfolded
diagram's figures can be compared.

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


def write_one_span(grpc_address: str, number: int, start_unix_nano: int | None = None) -> None:
    """One span of an unrelated trace, through OTLP/gRPC (acknowledged: the store's data
    version has moved when this returns), starting now or at ``start_unix_nano``."""
    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    now = time.time_ns() if start_unix_nano is None else start_unix_nano
    span = Span(
        trace_id=(0xB5C0 << 112 | number).to_bytes(16, "big"),
        span_id=(number + 1).to_bytes(8, "big"),
        name="bench write",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=now,
        end_time_unix_nano=now + 1_000_000,
    )
    service = KeyValue(key="service.name", value=AnyValue(string_value="bench-writer"))
    request = trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[service]), scope_spans=[ScopeSpans(spans=[span])]
            )
        ]
    )
    with grpc.insecure_channel(grpc_address) as channel:
        trace_service_pb2_grpc.TraceServiceStub(channel).Export(request, timeout=30)


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


#: spans_of_traces.sql before #16: one scan reads the raw column with the trace ids.
OLD_SPANS_OF_TRACES = """
SELECT s.trace_id, s.span_id, s.parent_span_id, s.resource_id, s.scope_id, s.service_name, s.raw
FROM spans AS s
WHERE s.trace_id IN (SELECT unnest($trace_ids::BLOB[]))
  AND s.start_unix_nano BETWEEN $lo AND $hi
ORDER BY s.start_unix_nano, s.span_id
"""


def ab_diagrams(db: str, count: int, seed: int = 1) -> dict[str, Any]:
    """Unfolded order diagrams with the old and the new spans_of_traces, interleaved."""
    import random

    import spanstore.duckdb_store as duckdb_store
    from analyzer.source import LocalSource

    new_sql = duckdb_store.sql
    use_old = {"on": False}

    def patched(name: str) -> str:
        if name == "spans_of_traces" and use_old["on"]:
            return OLD_SPANS_OF_TRACES
        return new_sql(name)

    duckdb_store.sql = patched  # type: ignore[assignment]
    store = duckdb_store.DuckDBStore(db, read_only=True)
    source = LocalSource(store)
    values = [v.value for v in store.entity_values("order.id", 100_000)]
    rng = random.Random(seed)
    chosen = rng.sample(values, min(count, len(values)))
    times: dict[str, list[float]] = {"old": [], "new": []}
    for index, value in enumerate(chosen):
        order = ("old", "new") if index % 2 == 0 else ("new", "old")
        for which in order:
            use_old["on"] = which == "old"
            started = time.perf_counter()
            source.diagram(entity=f"order.id={value}", start=None, end=None)
            times[which].append(time.perf_counter() - started)
    store.close()
    duckdb_store.sql = new_sql  # type: ignore[assignment]

    def summary(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        p95 = ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)]
        return {
            "p50_ms": round(1000 * statistics.median(ordered), 1),
            "p95_ms": round(1000 * p95, 1),
        }

    return {"diagrams": len(chosen), "old": summary(times["old"]), "new": summary(times["new"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the store (read-only; copied first)")
    parser.add_argument("--work", default="/tmp/seqtrace-flow-bench", help="where the copy goes")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--roots", type=int, default=3, help="busiest root operations asked")
    parser.add_argument("--entity", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--ab-diagrams", type=int, default=0, metavar="N")
    parser.add_argument(
        "--fresh", type=int, default=0, metavar="N", help="first computations per --entity"
    )
    parser.add_argument(
        "--elsewhere",
        type=int,
        default=0,
        metavar="N",
        help="calls per --entity, each after a span written now (not in its hours)",
    )
    parser.add_argument(
        "--during-backfill",
        action="store_true",
        help="begin at once, not once the server has kept every settled trace's shape",
    )
    parser.add_argument("--seqtrace", help="the seqtrace executable to serve with")
    parser.add_argument("--config", help="a config file for the server (e.g. limits.db_memory_mib)")
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
    extra = ["--config", args.config] if args.config else []
    with serve(
        str(copy), 120.0, args.seqtrace, *extra, wait_kept=not args.during_backfill
    ) as server:
        report["rss_mb_at_start"] = server.rss_mb()
        report["kept_shapes"] = server.kept_shapes
        print(json.dumps({"kept_shapes": server.kept_shapes}))
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
            rss_cold = server.rss_mb()
            warm = [_get(server.api, "/api/v1/diagram", params)[0] for _ in range(args.runs)]
            # Written into the hour of the entity's first message: the kept diagram is
            # stale, so each call is a first computation.
            inside = min(int(m["start_unix_nano"]) for m in body["messages"])
            fresh, fresh_cpu = [], []
            for number in range(args.fresh):
                write_one_span(server.grpc, len(report["diagrams"]) * 1000 + number, inside)
                time.sleep(0.5)  # the write's commit, so that it does not run beside the call
                cpu = server.cpu_s()
                fresh.append(_get(server.api, "/api/v1/diagram", params)[0])
                # The server's CPU seconds for the call (all its threads): steadier than
                # wall time on a machine others use.
                fresh_cpu.append(server.cpu_s() - cpu)
            row = {
                "entity": entity,
                "traces": len(body["traces"]),
                "messages": len(body["messages"]),
                "omitted_messages": body["omitted_messages"],
                "failed_messages": sum(1 for m in body["messages"] if m["status"] == "error"),
                "cold_s": round(cold, 3),
                "warm_median_s": round(statistics.median(warm), 3),
                "warm_max_s": round(max(warm), 3),
                "rss_mb_after_cold": rss_cold,
            }
            if fresh:
                row["fresh_s"] = [round(t, 3) for t in fresh]
                row["fresh_median_s"] = round(statistics.median(fresh), 3)
                row["fresh_cpu_median_s"] = round(statistics.median(fresh_cpu), 3)
                row["rss_mb_after_fresh"] = server.rss_mb()
            elsewhere = []
            for number in range(args.elsewhere):
                write_one_span(server.grpc, len(report["diagrams"]) * 1000 + 500 + number)
                time.sleep(0.5)
                elsewhere.append(_get(server.api, "/api/v1/diagram", params)[0])
            if elsewhere:
                row["after_write_elsewhere_s"] = [round(t, 3) for t in elsewhere]
            row["load_average"] = load_average()
            report["diagrams"].append(row)
            print(json.dumps(row))
        report["rss_mb_after"] = server.rss_mb()
    if args.ab_diagrams:
        report["ab_diagrams"] = ab_diagrams(str(copy), args.ab_diagrams)
        print(json.dumps(report["ab_diagrams"]))
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
