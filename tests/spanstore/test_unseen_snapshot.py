"""What a read is shown of the acknowledged, uncommitted records (spanstore/unseen.py).

``UnseenSnapshot.for_query`` shows a named query only the unseen rows it can read, and
nothing at all (None: the statement runs on the committed tables alone) when no row is
left. Property: for any set of records and any parameters, the rows it shows are exactly
the rows of the whole snapshot (``tables()``, which every other read is shown) that pass
the query's own filter, with the same record and span places; and a real store answers
the same diagrams with flood records unseen beside them as once they are committed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import spanstore.unseen as unseen
from spanstore.decode.prepare import KeyClassifier, PreparedBatch, prepare_request
from spanstore.duckdb_store import DuckDBStore
from spanstore.unseen import UnseenSnapshot
from tests.conftest import ROOT, sample_files, wait_until

sys.path.insert(0, str(ROOT / "bench"))
from bench_ingest import Stamper, build_templates

TRACES = 12
VALUES = 5


def trace(n: int) -> bytes:
    return (1000 + n).to_bytes(16, "big")


def record(number: int, spans: int) -> PreparedBatch:
    """``spans`` spans over three of the TRACES traces, each with an order.id of VALUES
    and a link to another trace."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    name = f"svc-{number % 3}"
    resource_spans.resource.attributes.add(key="service.name").value.string_value = name
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = f"scope-{number % 2}"
    for i in range(spans):
        span = scope_spans.spans.add()
        span.trace_id = trace((number * 3 + i) % TRACES)
        span.span_id = (number * 1000 + i + 1).to_bytes(8, "big")
        span.name = f"op-{i}"
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + number * 10_000 + i
        span.end_time_unix_nano = span.start_time_unix_nano + 500
        if (number + i) % 4:  # not every span carries the entity
            value = f"ORD-{(number + i) % VALUES}"
            span.attributes.add(key="order.id").value.string_value = value
        if i % 2:
            link = span.links.add()
            link.trace_id = trace((number + 5 * i) % TRACES)
            link.span_id = b"\x01" * 8
    return prepare_request(request, KeyClassifier())


RECORDS = [(seq, record(seq, 1 + (seq * 7) % 9)) for seq in range(1, 9)]


def without_rowid(table: pa.Table) -> pa.Table:
    return table.drop_columns(["rowid"]) if "rowid" in table.column_names else table


def expected_rows(
    tables: dict[str, pa.Table], query: str, params: dict[str, Any]
) -> tuple[str, pa.Table]:
    """The query's table in the whole snapshot, filtered as the query filters it."""
    if query == "spans_of_traces":
        rows = tables["spans"]
        return "spans", rows.filter(pc.is_in(rows["trace_id"], pa.array(params["trace_ids"])))
    if query == "linked_trace_ids":
        rows = tables["span_links"]
        wanted = pa.array(params["trace_ids"], pa.binary())
        keep = pc.or_(
            pc.is_in(rows["trace_id"], value_set=wanted),
            pc.is_in(rows["linked_trace_id"], value_set=wanted),
        )
        return "span_links", rows.filter(keep)
    if query == "entity_trace_ids":
        rows = tables["span_entities"]
        return "span_entities", rows.filter(pc.equal(rows["value"], params["value"]))
    rows = tables["resources"]
    return "resources", rows.filter(
        pc.is_in(rows["resource_id"], pa.array(params["resource_ids"], pa.uint64()))
    )


@settings(max_examples=150, deadline=None)
@given(
    chosen=st.lists(st.sampled_from(range(len(RECORDS))), unique=True, max_size=len(RECORDS)),
    query=st.sampled_from(
        ["spans_of_traces", "linked_trace_ids", "entity_trace_ids", "refs_by_id"]
    ),
    traces=st.lists(st.integers(0, TRACES + 2), unique=True, min_size=1, max_size=4),
    value=st.integers(0, VALUES + 1),
    resources=st.integers(0, 7),
)
def test_a_query_is_shown_exactly_the_unseen_rows_its_filter_keeps(
    chosen: list[int], query: str, traces: list[int], value: int, resources: int
) -> None:
    records = [RECORDS[i] for i in sorted(chosen)]
    whole = UnseenSnapshot(records).tables()
    known = sorted(set(whole["resources"]["resource_id"].to_pylist()))
    params: dict[str, Any] = {
        "trace_ids": [trace(t) for t in traces],
        "value": f"ORD-{value}",
        "resource_ids": [r for i, r in enumerate(known) if resources >> i & 1] or [7],
    }
    table, expected = expected_rows(whole, query, params)
    shown = UnseenSnapshot(records).for_query(query, params, frozenset({table}))
    if expected.num_rows == 0:
        assert shown is None
        return
    assert shown is not None
    assert without_rowid(shown[table]).equals(without_rowid(expected))
    assert shown[table].schema.equals(whole[table].schema)
    if "rowid" in shown[table].column_names:
        rowids = shown[table]["rowid"].to_pylist()
        assert len(set(rowids)) == len(rowids) and max(rowids) < 0
    for name, rows in shown.items():  # tables the query does not read: empty
        assert name == table or rows.num_rows == 0
        assert rows.schema.equals(whole[name].schema)


def test_a_query_reading_every_unseen_row_is_shown_the_whole_snapshot() -> None:
    """A query it cannot narrow (no filter known for it) sees every table whole."""
    snapshot = UnseenSnapshot(RECORDS)
    shown = snapshot.for_query("stats", {}, frozenset({"spans", "span_entities"}))
    whole = UnseenSnapshot(RECORDS).tables()
    assert shown is not None
    assert shown["spans"].equals(whole["spans"])
    assert shown["span_entities"].equals(whole["span_entities"])
    assert shown["span_links"].num_rows == 0


def test_table_names_in_comments_do_not_count() -> None:
    statement = "-- the spans that logs refer to\nSELECT * FROM resources JOIN scopes USING (x)"
    assert unseen.tables_read(statement) == {"resources", "scopes"}


def test_shop_diagrams_beside_unseen_flood_records_read_the_tables_alone(
    tmp_path: Path,
) -> None:
    """The shop committed, a flood's records acknowledged and not committed: the shop's
    entity diagrams are read with no statement shown an unseen row (a cursor without the
    views), and answer as they do once the flood is committed too."""
    from analyzer.source import LocalSource
    from collector.files import read_trace_file

    with DuckDBStore(
        tmp_path / "shop.duckdb", max_commit_delay=3600, entity_keys=["order.id", "customer.id"]
    ) as store:
        for file in sample_files():
            for request in read_trace_file(file):
                store.write(request)
        store.flush()
        source = LocalSource(store)
        orders = [v["value"] for v in source.entities("order.id", 100)["values"]]
        assert len(orders) >= 5
        stamper = Stamper(build_templates(4, 300, 10, seed=5), 1)
        for _ in range(12):
            store.write(stamper.next())
        assert wait_until(lambda: store.queued_spans == 0)
        assert len(store._unseen) == 12

        shown: list[tuple[str, bool]] = []
        for_query = UnseenSnapshot.for_query

        def spied(self: UnseenSnapshot, *args: Any) -> Any:
            tables = for_query(self, *args)
            shown.append((args[0], tables is not None))
            return tables

        def answers() -> list[Any]:
            source._diagrams = None  # nothing kept: every diagram reads the store
            return [source.diagram(f"order.id={order}", start=0, end=1 << 62) for order in orders]

        UnseenSnapshot.for_query = spied  # type: ignore[method-assign]
        try:
            unseen_answers = answers()
        finally:
            UnseenSnapshot.for_query = for_query  # type: ignore[method-assign]
        assert {query for query, _ in shown} >= {"entity_trace_ids", "spans_of_traces"}
        assert not [query for query, views in shown if views]
        started = time.monotonic()
        store.flush()
        assert not store._unseen and time.monotonic() - started < 60
        assert answers() == unseen_answers
