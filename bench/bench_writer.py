"""What one writer transaction of a row group costs DuckDB, by spans per INSERT.

The store's writer thread (``spanstore.writer``, DuckDB's steps in ``_DuckDBWriter``)
appends the batches waiting in its queue with one INSERT per table, commits when the spans
fill one row group (122,880) and checkpoints. This replays that on the requests
``bench_ingest.py`` sends (``build_templates(8, 512, 10)``, fresh trace ids per request),
decoded in this process, into a fresh file with the store's schema and DuckDB settings,
with nothing else running: each row group's INSERT time (spans and entity rows), COMMIT
and CHECKPOINT, for each size of INSERT. The first row group of each size is not counted
(an empty table).

    .venv/bin/python bench/bench_writer.py                         # 1 .. 240 requests per INSERT
    .venv/bin/python bench/bench_writer.py --per-insert 10 32 --row-groups 6
    .venv/bin/python bench/bench_writer.py --columns               # one column per table

``--columns`` instead times each column of ``spans`` alone (a table of that column, the
same INSERT, COMMIT and CHECKPOINT per row group), with its declared compression.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import duckdb  # noqa: E402
from bench_ingest import Stamper, build_templates  # noqa: E402
from bench_queries import finish, load_average  # noqa: E402

from spanstore.decode.pool import prepare_serialized  # noqa: E402
from spanstore.decode.prepare import KeyClassifier, PreparedBatch  # noqa: E402
from spanstore.duckdb_store import CHECKPOINT_THRESHOLD, ROWS_PER_COMMIT, _merged, sql  # noqa: E402
from spanstore.policy import IngestPolicy, PolicyEngine  # noqa: E402

SPANS_PER_REQUEST = 512
REQUESTS_PER_ROW_GROUP = ROWS_PER_COMMIT // SPANS_PER_REQUEST  # 240


def connect(path: Path) -> duckdb.DuckDBPyConnection:
    # As DuckDBStore opens a file for writing (its defaults).
    con = duckdb.connect(
        str(path),
        config={"threads": 2, "memory_limit": "1GB", "checkpoint_threshold": CHECKPOINT_THRESHOLD},
    )
    con.execute(sql("schema"))
    return con


def row_groups(stamper: Stamper, count: int) -> list[list[PreparedBatch]]:
    keys = KeyClassifier()
    policy = PolicyEngine(IngestPolicy())  # the store always has one (default limits)
    return [
        [prepare_serialized(stamper.next(), keys, policy) for _ in range(REQUESTS_PER_ROW_GROUP)]
        for _ in range(count)
    ]


def by_insert_size(
    groups: list[list[PreparedBatch]], per_insert: int, workdir: Path
) -> dict[str, Any]:
    con = connect(workdir / f"per-{per_insert}.duckdb")
    totals = {"insert_s": 0.0, "commit_s": 0.0, "checkpoint_s": 0.0}
    for index, requests in enumerate(groups):
        inserts = [
            _merged(requests[i : i + per_insert]) for i in range(0, len(requests), per_insert)
        ]
        con.execute("BEGIN")
        started = time.perf_counter()
        for batch in inserts:
            con.register("new_spans", batch.spans)
            con.execute("INSERT INTO spans BY NAME SELECT * FROM new_spans")
            con.unregister("new_spans")
            con.register("new_entities", batch.entities)
            con.execute(
                "INSERT INTO span_entities BY NAME SELECT * EXCLUDE (span_id) FROM new_entities"
            )
            con.unregister("new_entities")
        inserted = time.perf_counter()
        con.execute("INSERT OR REPLACE INTO seqtrace_meta VALUES ('journal_seq', '1')")
        con.execute("COMMIT")
        committed = time.perf_counter()
        con.execute("CHECKPOINT")
        done = time.perf_counter()
        if index:
            totals["insert_s"] += inserted - started
            totals["commit_s"] += committed - inserted
            totals["checkpoint_s"] += done - committed
    con.close()
    counted = max(1, len(groups) - 1)
    row = {k: round(v / counted, 3) for k, v in totals.items()}
    row["total_s"] = round(sum(row.values()), 3)
    row["per_insert_spans"] = per_insert * SPANS_PER_REQUEST
    row["us_per_span"] = round(row["total_s"] / ROWS_PER_COMMIT * 1e6, 2)
    return row


def by_column(groups: list[list[PreparedBatch]], workdir: Path) -> list[dict[str, Any]]:
    merged = [_merged(requests) for requests in groups]
    probe = connect(workdir / "schema.duckdb")
    declared = dict(
        probe.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'spans'"
        ).fetchall()
    )
    probe.close()
    rows = []
    for column in merged[0].spans.column_names:
        path = workdir / f"col-{column}.duckdb"
        con = duckdb.connect(str(path), config={"threads": 2, "memory_limit": "1GB"})
        # `raw` is the one column with a declared compression (schema.sql).
        compression = " USING COMPRESSION zstd" if column == "raw" else ""
        con.execute(f'CREATE TABLE t ("{column}" {declared[column]}{compression})')
        spent = 0.0
        for index, batch in enumerate(merged):
            con.execute("BEGIN")
            started = time.perf_counter()
            con.register("new_spans", batch.spans.select([column]))
            con.execute(f'INSERT INTO t SELECT "{column}" FROM new_spans')
            con.unregister("new_spans")
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
            if index:
                spent += time.perf_counter() - started
        con.close()
        rows.append(
            {"column": column, "s_per_row_group": round(spent / max(1, len(merged) - 1), 3)}
        )
    return sorted(rows, key=lambda row: -row["s_per_row_group"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--per-insert",
        type=int,
        nargs="+",
        default=[1, 3, 10, 32, 80, 240],
        help="requests of 512 spans per INSERT (240 = the whole row group)",
    )
    parser.add_argument(
        "--row-groups", type=int, default=5, help="per size; the first is not counted"
    )
    parser.add_argument("--columns", action="store_true", help="time each spans column alone")
    parser.add_argument("--json", dest="json_out", help="write the results here")
    args = parser.parse_args()

    report: dict[str, Any] = {"load_average_start": load_average(), "row_groups": args.row_groups}
    stamper = Stamper(build_templates(8, SPANS_PER_REQUEST, 10), 0)
    with tempfile.TemporaryDirectory(prefix="seqtrace-bench-writer-") as tmp:
        workdir = Path(tmp)
        if args.columns:
            report["columns"] = by_column(row_groups(stamper, args.row_groups), workdir)
            for row in report["columns"]:
                print(f"{row['s_per_row_group']:7.3f} s per row group  {row['column']}")
        else:
            report["sizes"] = []
            print(
                f"{'spans/INSERT':>12} {'insert s':>9} {'commit s':>9} {'ckpt s':>8} "
                f"{'total s':>8} {'us/span':>8}"
            )
            for per_insert in args.per_insert:
                row = by_insert_size(row_groups(stamper, args.row_groups), per_insert, workdir)
                report["sizes"].append(row)
                print(
                    f"{row['per_insert_spans']:>12} {row['insert_s']:>9} {row['commit_s']:>9} "
                    f"{row['checkpoint_s']:>8} {row['total_s']:>8} {row['us_per_span']:>8}",
                    flush=True,
                )
    finish(report, args.json_out)
    if args.json_out is None:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
