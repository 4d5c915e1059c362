"""Entity diagrams and the partial-failure report on N spans: DuckDB and ClickHouse (chdb)
side by side, in one run, on the same spans (issue 7).

    .venv/bin/python bench/bench_clickhouse.py                    # 10M spans
    .venv/bin/python bench/bench_clickhouse.py --spans 1000000    # smaller
    .venv/bin/python bench/bench_clickhouse.py --duckdb /tmp/bench/s10m.duckdb  # reuse a store

1. The DuckDB store is built by ``bench/make_store.py`` (the web-shop week, through
   ``DuckDBStore.write``), or an existing one is copied (``--duckdb``).
2. Its tables are copied into a chdb database with seqtrace's ClickHouse schema, in Arrow
   batches through the store's own insert path, then merged (``OPTIMIZE ... FINAL``), so
   both engines hold exactly the same rows. Disk bytes per span are measured for both.
3. Ingest through ``write()``: the same generated OTLP requests (512 spans each) go to a
   fresh DuckDB file and a fresh chdb database from ``--threads`` threads.
4. Queries through ``analyzer.source.LocalSource`` (what the CLI, API and UI run), timed
   on both stores after a warm-up: the entity diagram (SPEC JSON) of busy and random
   ``order.id`` values, and the failure report over the default range (the 24 hours
   that end at the newest span) and over one hour. Results are compared: both stores
   must give the same answers.

Figures go to stdout, ``--json-out``, and with ``--write-docs`` into a section of
``docs/performance.md`` (or ``docs/scale-out.md`` when that file does not exist),
between ``<!-- bench_clickhouse:begin -->`` and ``<!-- bench_clickhouse:end -->``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

BEGIN = "<!-- bench_clickhouse:begin -->"
END = "<!-- bench_clickhouse:end -->"
TABLES = {
    "resources": "seqtrace_resources",
    "scopes": "seqtrace_scopes",
    "span_links": "seqtrace_links",
    "span_entities": "seqtrace_entities",
    "spans": "seqtrace_spans",
}


def log(message: str) -> None:
    print(f"bench_clickhouse: {message}", flush=True)


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


class Times(list[float]):
    """Wall-clock seconds per run, with the process CPU seconds of each run in ``cpu``
    (every thread, the engines' included: a fairer figure on a shared, busy machine)."""

    cpu: list[float]


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Times, Any]:
    """Seconds per run after one warm-up run; the warm-up's result is returned."""
    result = fn()
    times = Times()
    times.cpu = []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        times.cpu.append(time.process_time() - c0)
    return times, result


def ms(values: list[float], cpu: list[float] | None = None) -> dict[str, float]:
    cpu = cpu if cpu is not None else getattr(values, "cpu", None)
    out = {
        "median_ms": round(statistics.median(values) * 1000, 1),
        "min_ms": round(min(values) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }
    if cpu:
        out["cpu_median_ms"] = round(statistics.median(cpu) * 1000, 1)
    return out


# --------------------------------------------------------------------------- building


def build_duckdb(args: argparse.Namespace, work: Path) -> Path:
    target = work / "bench.duckdb"
    if args.duckdb:
        log(f"copying {args.duckdb} -> {target}")
        shutil.copyfile(args.duckdb, target)
        wal = Path(f"{args.duckdb}.wal")
        if wal.exists():
            shutil.copyfile(wal, f"{target}.wal")
        return target
    log(f"building {args.spans:,} spans with bench/make_store.py (minutes)")
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "make_store.py"),
            "--spans",
            str(args.spans),
            "--out",
            str(target),
            "--force",
            "--json-out",
            str(work / "make_store.json"),
        ],
        check=True,
    )
    return target


def copy_into_chdb(duck_path: Path, store: Any) -> dict[str, Any]:
    """Every row of the DuckDB store into the ClickHouse schema, through the store's own
    Arrow insert path; then merged."""
    import duckdb
    import pyarrow as pa

    from spanstore.clickhouse_store import arrow_stream

    con = duckdb.connect(str(duck_path), read_only=True)
    figures: dict[str, Any] = {}
    try:
        for source, target in TABLES.items():
            t0 = time.perf_counter()
            rows = 0
            reader = con.sql(f"SELECT * FROM {source}").to_arrow_reader(500_000)
            for batch in reader:
                table = pa.Table.from_batches([batch])
                # plain Arrow types only (DuckDB may hand out views)
                table = table.cast(
                    pa.schema(
                        [
                            pa.field(
                                f.name,
                                pa.string() if pa.types.is_string_view(f.type) else f.type,
                            )
                            for f in table.schema
                        ]
                    )
                )
                store.transport.insert(target, table.column_names, arrow_stream(table))
                rows += table.num_rows
            seconds = time.perf_counter() - t0
            figures[target] = {"rows": rows, "seconds": round(seconds, 1)}
            log(f"copied {rows:,} rows into {target} in {seconds:.1f} s")
    finally:
        con.close()
    t0 = time.perf_counter()
    for target in TABLES.values():
        store.transport.command(f"OPTIMIZE TABLE {target} FINAL")
    figures["optimize_final_seconds"] = round(time.perf_counter() - t0, 1)
    log(f"OPTIMIZE FINAL: {figures['optimize_final_seconds']} s")
    return figures


def generated_requests(spans: int, seed: int) -> list[tuple[int, bytes]]:
    """OTLP requests of ~512 spans from make_store's generator (a different seed than
    the stored week, so every span is new to both stores)."""
    import make_store as ms_

    templates, by_kind = ms_.build_templates(seed)
    plan = ms_.make_plan(spans, seed, ms_.DEFAULT_END, 1.0, templates, by_kind)
    gen = ms_.Generator(seed, templates, plan)
    return [gen.request(r) for r in range(len(plan.request_bounds) - 1)]


def ingest(write: Callable[[Any], Any], requests: list[tuple[int, bytes]], threads: int) -> float:
    """Spans per second acknowledged by ``write`` from ``threads`` threads."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    parsed = [ExportTraceServiceRequest.FromString(blob) for _, blob in requests]
    total = sum(n for n, _ in requests)
    lock = threading.Lock()
    position = [0]
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                index = position[0]
                position[0] += 1
            if index >= len(parsed):
                return
            try:
                write(parsed[index])
            except BaseException as exc:
                errors.append(exc)
                return

    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return total / seconds


# --------------------------------------------------------------------------- queries


def pick_entities(duck_path: Path, count: int, seed: int) -> list[str]:
    """The busiest order ids and a seeded random sample of the others."""
    import duckdb

    con = duckdb.connect(str(duck_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT value, count(DISTINCT trace_id) AS n FROM span_entities "
            "WHERE key = 'order.id' GROUP BY value ORDER BY n DESC, value"
        ).fetchall()
    finally:
        con.close()
    busiest = [r[0] for r in rows[: max(1, count // 4)]]
    rest = [r[0] for r in rows[len(busiest) :]]
    sample = random.Random(seed).sample(rest, min(len(rest), count - len(busiest)))
    return [f"order.id={v}" for v in busiest + sample]


def same(name: str, a: Any, b: Any) -> bool:
    """Equal answers; for entity keys, whose distinct counts are estimates in both
    engines, the same keys, span and service counts, and distinct counts within 10 %
    (at 10M spans DuckDB's HyperLogLog was up to 7 % off the exact count, ClickHouse's
    uniq 0.2 %)."""
    if name != "entity keys":
        return bool(a == b)
    mine = {k["key"]: k for k in a["keys"]}
    theirs = {k["key"]: k for k in b["keys"]}
    if sorted(mine) != sorted(theirs):
        return False
    for key, x in mine.items():
        y = theirs[key]
        if (x["spans"], x["services"]) != (y["spans"], y["services"]):
            return False
        if any(abs(x[f] - y[f]) > max(2, 0.10 * x[f]) for f in ("values", "traces")):
            return False
    return True


def query_figures(
    sources: dict[str, Any], entities: list[str], repeat: int
) -> tuple[dict[str, Any], list[str]]:
    figures: dict[str, Any] = {}
    mismatches: list[str] = []
    newest = sources["duckdb"].stats()["last_unix_nano"]
    hour = 3_600_000_000_000
    cases: dict[str, Callable[[Any], Any]] = {
        "stats": lambda s: s.stats(),
        "entity keys": lambda s: s.entities(limit=100),
        "order.id values (top 100)": lambda s: s.entities("order.id", limit=100),
        "failures, default 24 h": lambda s: s.failures(),
        "failures, last 1 h": lambda s: s.failures(newest + 1 - hour, newest + 1),
    }
    for name, fn in cases.items():
        row: dict[str, Any] = {}
        results = {}
        for engine, source in sources.items():
            times, results[engine] = timed(lambda fn=fn, source=source: fn(source), repeat)
            row[engine] = ms(times)
        if not same(name, results["duckdb"], results["chdb"]):
            mismatches.append(name)
        figures[name] = row
        log(f"{name}: duckdb {row['duckdb']['median_ms']} ms, chdb {row['chdb']['median_ms']} ms")
    diagram: dict[str, list[float]] = {engine: [] for engine in sources}
    diagram_cpu: dict[str, list[float]] = {engine: [] for engine in sources}
    messages = []
    for entity in entities:
        results = {}
        for engine, source in sources.items():
            times, results[engine] = timed(
                lambda source=source, entity=entity: source.diagram(entity=entity, fmt="json"),
                repeat,
            )
            diagram[engine].append(statistics.median(times))
            diagram_cpu[engine].append(statistics.median(times.cpu))
        if results["duckdb"] != results["chdb"]:
            mismatches.append(f"diagram {entity}")
        messages.append(len(results["duckdb"]["messages"]))
    figures["entity diagram"] = {
        engine: ms(values, diagram_cpu[engine]) for engine, values in diagram.items()
    }
    figures["entity diagram"]["entities"] = len(entities)
    figures["entity diagram"]["messages_median"] = statistics.median(messages)
    log(
        f"entity diagram ({len(entities)} order ids): duckdb "
        f"{figures['entity diagram']['duckdb']['median_ms']} ms, chdb "
        f"{figures['entity diagram']['chdb']['median_ms']} ms (median)"
    )
    return figures, mismatches


def otel_figures(
    duck_path: Path, chdb_dir: Path, spans_wanted: int, repeat: int, seed: int
) -> dict[str, Any]:
    """The newest traces of the store, ~``spans_wanted`` spans, written into an
    ``otel_traces`` table (the collector-contrib exporter's DDL and row format), then
    read through seqtrace's otel layout: entity diagrams, the failure report, and how
    many granules the exporter's bloom filters let an entity lookup skip."""
    import duckdb

    sys.path.insert(0, str(ROOT / "tests"))
    from test_clickhouse_otel import (  # the exporter's DDL, verbatim
        TRACES_ID_TS_LOOKUP_MV_SQL,
        TRACES_ID_TS_LOOKUP_TABLE_SQL,
        TRACES_TABLE_SQL,
    )

    from analyzer.source import LocalSource
    from spanstore.clickhouse_store import ChdbTransport, ClickHouseStore, arrow_stream, otel_rows
    from spanstore.duckdb_store import DuckDBStore

    con = duckdb.connect(str(duck_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT trace_id, count(*) FROM spans GROUP BY trace_id "
            "ORDER BY min(start_unix_nano) DESC"
        ).fetchall()
    finally:
        con.close()
    chosen: list[str] = []
    total = 0
    for trace_id, count in rows:
        if total >= spans_wanted:
            break
        chosen.append(bytes(trace_id).hex())
        total += count
    transport = ChdbTransport(chdb_dir, "otel")
    transport.command("DROP TABLE IF EXISTS otel_traces_trace_id_ts_mv SYNC")
    transport.command("DROP TABLE IF EXISTS otel_traces_trace_id_ts SYNC")
    transport.command("DROP TABLE IF EXISTS otel_traces SYNC")
    db = "`otel`"
    transport.command(TRACES_TABLE_SQL % ("otel_traces", "", "MergeTree()", ""))
    transport.command(TRACES_ID_TS_LOOKUP_TABLE_SQL % ("otel_traces", "", "MergeTree()", ""))
    transport.command(
        TRACES_ID_TS_LOOKUP_MV_SQL % ("otel_traces", "", db, "otel_traces", db, "otel_traces")
    )
    duck = DuckDBStore(duck_path, read_only=True)
    t0 = time.perf_counter()
    try:
        for start in range(0, len(chosen), 5000):
            table = otel_rows(duck.spans(chosen[start : start + 5000]))
            transport.insert("otel_traces", table.column_names, arrow_stream(table))
    finally:
        duck.close()
    convert_s = time.perf_counter() - t0
    transport.command("OPTIMIZE TABLE otel_traces FINAL")
    on_disk = int(
        transport.query(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'otel' "
            "AND table = 'otel_traces' AND active"
        )
        .column(0)[0]
        .as_py()
    )
    store = ClickHouseStore(transport, read_only=True)
    source = LocalSource(store)
    figures: dict[str, Any] = {
        "spans": total,
        "traces": len(chosen),
        "bytes_per_span": round(on_disk / max(1, total), 1),
        "load_seconds": round(convert_s, 1),
    }
    try:
        values = [v.value for v in store.entity_values("order.id", limit=100_000)]
        entities = [
            f"order.id={v}" for v in random.Random(seed).sample(values, min(20, len(values)))
        ]
        diagram, diagram_cpu = [], []
        for entity in entities:
            times, _ = timed(lambda e=entity: source.diagram(entity=e, fmt="json"), repeat)
            diagram.append(statistics.median(times))
            diagram_cpu.append(statistics.median(times.cpu))
        figures["entity diagram"] = ms(diagram, diagram_cpu)
        newest = store.stats().last_unix_nano or 0
        hour = 3_600_000_000_000
        times, _ = timed(lambda: source.failures(newest + 1 - hour, newest + 1), repeat)
        figures["failures, last 1 h"] = ms(times)
        times, _ = timed(lambda: source.failures(), repeat)
        figures["failures, default 24 h"] = ms(times)
        key, value = entities[0].split("=", 1)
        plan = transport.query(
            "EXPLAIN indexes = 1 SELECT TraceId FROM otel_traces WHERE "
            f"SpanAttributes['{key}'] = '{value}' OR ResourceAttributes['{key}'] = '{value}'"
        )
        lines = [line.decode().strip() for line in plan.column(0).to_pylist()]
        granules = [line for line in lines if line.startswith("Granules:")]
        figures["entity lookup granules (first / after skip indexes)"] = (
            f"{granules[0].split()[-1]} / {granules[-1].split()[-1]}" if granules else "?"
        )
    finally:
        store.close()
    log(f"otel_traces: {json.dumps(figures)}")
    return figures


# --------------------------------------------------------------------------- report


def markdown(report: dict[str, Any]) -> str:
    q = report["queries"]
    verdict = (
        "identical" if not report["mismatches"] else "DIFFER: " + ", ".join(report["mismatches"])
    )
    lines = [
        BEGIN,
        "## ClickHouse (chdb) beside DuckDB: entity diagrams and failure reports",
        "",
        f"`bench/bench_clickhouse.py` ({report['date']}): {report['spans']:,} spans of the "
        f"`bench/make_store.py` shop week in both stores, the same rows; {report['machine']}; "
        f"load average before the queries {report['load_before_queries']}. chdb "
        f"{report['chdb_version']} (ClickHouse {report['clickhouse_version']}), DuckDB "
        f"{report['duckdb_version']}. Both stores are queried through `LocalSource`, in one "
        f"process, warm (one run first), median of {report['repeat']} runs, wall clock and "
        "(in brackets) CPU time of the process, all threads: the machine was shared, and "
        f"CPU time is the steadier comparison; results compared: {verdict}.",
        "",
        "| query | DuckDB median (CPU) | chdb median (CPU) | chdb min |",
        "|---|---:|---:|---:|",
    ]
    for name, row in q.items():
        label = name
        if name == "entity diagram":
            label = (
                f"entity diagram, {row['entities']} `order.id` values "
                f"(median {row['messages_median']:.0f} messages)"
            )
        lines.append(
            f"| {label} | {row['duckdb']['median_ms']:,} ms ({row['duckdb']['cpu_median_ms']:,}) "
            f"| {row['chdb']['median_ms']:,} ms ({row['chdb']['cpu_median_ms']:,}) "
            f"| {row['chdb']['min_ms']:,} ms |"
        )
    size = report["size"]
    ing = report["ingest"]
    lines += [
        "",
        "| storage and ingest | DuckDB | chdb |",
        "|---|---:|---:|",
        f"| bytes per span on disk | {size['duckdb_bytes_per_span']} | "
        f"{size['chdb_bytes_per_span']} |",
        f"| `write()` ingest, {ing['spans']:,} spans, {ing['threads']} threads | "
        f"{ing['duckdb_spans_per_s']:,} spans/s | {ing['chdb_spans_per_s']:,} spans/s |",
        "",
        *otel_lines(report),
        f"Copying the DuckDB tables into chdb (Arrow batches of 500k rows): "
        f"{report['copy']['seqtrace_spans']['seconds']} s for the spans; "
        f"`OPTIMIZE ... FINAL` afterwards {report['copy']['optimize_final_seconds']} s.",
        END,
    ]
    return "\n".join(lines) + "\n"


def otel_lines(report: dict[str, Any]) -> list[str]:
    otel = report.get("otel")
    if not otel:
        return []
    return [
        f"Read from the OpenTelemetry exporter's `otel_traces` (the newest {otel['traces']:,} "
        f"traces, {otel['spans']:,} spans, in the exporter's DDL and row format; "
        f"{otel['bytes_per_span']} B/span on disk): entity diagram median "
        f"{otel['entity diagram']['median_ms']:,} ms (20 `order.id` values), failure report "
        f"over the last hour {otel['failures, last 1 h']['median_ms']:,} ms and over the "
        f"default 24 h {otel['failures, default 24 h']['median_ms']:,} ms; an entity lookup "
        "reads granules (all / after the exporter's bloom filters on mapKeys/mapValues): "
        f"{otel['entity lookup granules (first / after skip indexes)']}.",
        "",
    ]


def write_docs(section: str) -> Path:
    perf = ROOT / "docs" / "performance.md"
    target = perf if perf.exists() else ROOT / "docs" / "scale-out.md"
    text = target.read_text() if target.exists() else ""
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    target.write_text(text)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--spans", type=int, default=10_000_000, help="store size (10M)")
    parser.add_argument("--duckdb", help="copy this make_store.py store instead of building")
    parser.add_argument("--workdir", help="where the stores go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --workdir: query the stores an earlier run left there (no build, no copy)",
    )
    parser.add_argument("--entities", type=int, default=20, help="order ids to draw (20)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per query (5)")
    parser.add_argument("--ingest-spans", type=int, default=200_000, help="write() test size")
    parser.add_argument("--threads", type=int, default=3, help="writer threads (3)")
    parser.add_argument(
        "--otel-spans",
        type=int,
        default=1_000_000,
        help="spans to write into an otel_traces table and read back (0: skip)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json-out", help="write the figures as JSON here")
    parser.add_argument("--write-docs", action="store_true", help="update the docs section")
    args = parser.parse_args(argv)

    import chdb
    import duckdb

    from analyzer.source import LocalSource
    from spanstore.clickhouse_store import ClickHouseStore
    from spanstore.duckdb_store import DuckDBStore

    work = Path(args.workdir or tempfile.mkdtemp(prefix="seqtrace-bench-ch-"))
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "chdb_version": chdb.__version__,
        "clickhouse_version": chdb.engine_version,
        "duckdb_version": duckdb.__version__,
        "repeat": args.repeat,
    }
    try:
        chdb_dir = work / "chdb"
        saved = work / "copy.json"
        if args.reuse and saved.exists() and (work / "bench.duckdb").exists():
            # the stores of an earlier run with the same --workdir: queries only
            duck_path = work / "bench.duckdb"
            report.update(json.loads(saved.read_text()))
            store = ClickHouseStore.chdb(
                chdb_dir, database="bench", read_only=True, settings={"max_threads": "2"}
            )
            log(f"reusing the stores in {work}")
        else:
            duck_path = build_duckdb(args, work)
            store = ClickHouseStore.chdb(chdb_dir, database="bench", settings={"max_threads": "2"})
            report["copy"] = copy_into_chdb(duck_path, store)
            spans = report["copy"]["seqtrace_spans"]["rows"]
            report["spans"] = spans
            duck_bytes = duck_path.stat().st_size
            # active parts only: merged-away parts stay on disk for a few minutes
            chdb_bytes = int(
                store.transport.query(
                    "SELECT sum(bytes_on_disk) AS b FROM system.parts "
                    "WHERE database = currentDatabase() AND active"
                )
                .column(0)[0]
                .as_py()
            )
            report["size"] = {
                "duckdb_bytes": duck_bytes,
                "chdb_bytes": chdb_bytes,
                "duckdb_bytes_per_span": round(duck_bytes / spans, 1),
                "chdb_bytes_per_span": round(chdb_bytes / spans, 1),
            }
            saved.write_text(
                json.dumps({k: report[k] for k in ("copy", "spans", "size")}, indent=2)
            )
        spans = report["spans"]
        size = report["size"]
        log(
            f"disk: duckdb {size['duckdb_bytes_per_span']} B/span, "
            f"chdb {size['chdb_bytes_per_span']} B/span ({spans:,} spans)"
        )

        # -- queries
        entities = pick_entities(duck_path, args.entities, args.seed)
        duck = DuckDBStore(duck_path, read_only=True)
        sources = {"duckdb": LocalSource(duck), "chdb": LocalSource(store)}
        report["load_before_queries"] = load()
        report["queries"], report["mismatches"] = query_figures(sources, entities, args.repeat)
        duck.close()
        store.close()

        # -- ingest through write()
        log(f"generating {args.ingest_spans:,} spans of OTLP requests")
        requests = generated_requests(args.ingest_spans, args.seed + 1000)
        fresh_path = work / f"ingest_{int(time.time())}.duckdb"
        fresh_duck = DuckDBStore(fresh_path)
        duck_rate = ingest(fresh_duck.write, requests, args.threads)
        fresh_duck.close()
        fresh_ch = ClickHouseStore.chdb(chdb_dir, database=f"ingest_{int(time.time())}")
        ch_rate = ingest(fresh_ch.write, requests, args.threads)
        fresh_ch.close()
        report["ingest"] = {
            "spans": sum(n for n, _ in requests),
            "threads": args.threads,
            "duckdb_spans_per_s": round(duck_rate),
            "chdb_spans_per_s": round(ch_rate),
        }
        log(f"write(): duckdb {duck_rate:,.0f} spans/s, chdb {ch_rate:,.0f} spans/s")
        if args.otel_spans > 0:
            report["otel"] = otel_figures(
                duck_path, chdb_dir, args.otel_spans, args.repeat, args.seed
            )
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    section = markdown(report)
    print(section)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    if args.write_docs:
        log(f"wrote {write_docs(section)}")
    return 1 if report["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
