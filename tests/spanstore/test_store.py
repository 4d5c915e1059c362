"""The DuckDB store: lossless round trips, de-duplication, schema checks, entity lookups."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from spanstore.base import SchemaVersionError, StoreError, StoreUnavailable
from spanstore.duckdb_store import DuckDBStore
from spanstore.otlp import request_from_json, request_to_json, spans_from_request
from tests.conftest import REAL_TRACES, load_json


def _value(v: object) -> AnyValue:
    out = AnyValue()
    if isinstance(v, bool):
        out.bool_value = v
    elif isinstance(v, int):
        out.int_value = v
    elif isinstance(v, float):
        out.double_value = v
    elif isinstance(v, bytes):
        out.bytes_value = v
    elif isinstance(v, list):
        out.array_value.values.extend(_value(x) for x in v)
    elif isinstance(v, dict):
        out.kvlist_value.values.extend(KeyValue(key=k, value=_value(x)) for k, x in v.items())
    else:
        out.string_value = str(v)
    return out


def rich_request(trace: bytes = b"\x01" * 16, n: int = 3) -> ExportTraceServiceRequest:
    """Every field OTLP has, every attribute value type, events, links, odd sizes."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.schema_url = "https://opentelemetry.io/schemas/1.26.0"
    rs.resource.dropped_attributes_count = 2
    for k, v in {"service.name": "checkout", "tenant.id": "T-9", "host.name": "h1"}.items():
        rs.resource.attributes.add(key=k, value=_value(v))
    ss = rs.scope_spans.add()
    ss.scope.name = "io.seqtrace.test"
    ss.scope.version = "1.2.3"
    ss.scope.attributes.add(key="scope.attr", value=_value("x"))
    ss.schema_url = "https://example/scope"
    for i in range(n):
        span = ss.spans.add()
        span.trace_id = trace
        span.span_id = bytes([i + 1]) * 8
        if i:
            span.parent_span_id = b"\x01" * 8
        span.trace_state = "vendor=abc"
        span.name = f"op-{i} ünïcode <b>"
        span.kind = 2 if i == 0 else 3
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + i * 1000
        span.end_time_unix_nano = span.start_time_unix_nano + 5_000_000
        span.flags = 257
        span.dropped_attributes_count = 1
        span.dropped_events_count = 2
        span.dropped_links_count = 3
        attrs = {
            "order.id": "ORD-1",
            "http.route": "/orders/{id}",
            "http.response.status_code": 503,
            "ratio": 0.25,
            "ok": True,
            "blob": b"\x00\xff",
            "list": [1, "two", 3.0, False],
            "map": {"nested": {"deeper": [1, 2]}},
            "empty": None,
        }
        for k, v in attrs.items():
            kv = span.attributes.add(key=k)
            if v is not None:
                kv.value.CopyFrom(_value(v))
        ev = span.events.add(name="exception", time_unix_nano=span.start_time_unix_nano + 10)
        ev.attributes.add(key="exception.type", value=_value("TimeoutError"))
        ev.attributes.add(key="exception.message", value=_value("upstream timed out"))
        ev.dropped_attributes_count = 4
        link = span.links.add(trace_id=b"\x02" * 16, span_id=b"\x03" * 8, trace_state="l=1")
        link.attributes.add(key="link.kind", value=_value("follows"))
        link.flags = 1
        span.status.code = 2 if i == 2 else 0
        span.status.message = "boom" if i == 2 else ""
    return req


def test_round_trip_is_lossless(tmp_path: Path) -> None:
    req = rich_request()
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        result = store.write(req)
        assert (result.accepted, result.rejected, result.duplicates) == (3, 0, 0)
        back = store.trace_request("01" * 16)
    assert back is not None
    assert back == req  # byte-for-byte the same protobuf, every field
    assert request_to_json(back) == request_to_json(req)


def test_model_spans_carry_every_value_type(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        store.write(rich_request())
        spans = store.spans(["01" * 16])
    assert [s.span_id for s in spans] == ["01" * 8, "02" * 8, "03" * 8]
    s = spans[2]
    assert s.attributes["list"] == [1, "two", 3.0, False]
    assert s.attributes["map"] == {"nested": {"deeper": [1, 2]}}
    assert s.attributes["blob"] == b"\x00\xff"
    assert s.attributes["empty"] is None
    assert s.resource_attributes["tenant.id"] == "T-9"
    assert s.events[0].attributes["exception.message"] == "upstream timed out"
    assert s.links[0].trace_id == "02" * 16 and s.links[0].attributes == {"link.kind": "follows"}
    assert (s.status_code, s.status_message, s.kind) == ("ERROR", "boom", "CLIENT")
    assert (s.scope_name, s.scope_version, s.trace_state, s.flags) == (
        "io.seqtrace.test",
        "1.2.3",
        "vendor=abc",
        257,
    )


def test_resent_span_is_stored_once(tmp_path: Path) -> None:
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        assert store.write(rich_request()).accepted == 3
        again = store.write(rich_request())
        assert (again.accepted, again.duplicates) == (0, 3)
        # a request repeating a span inside itself keeps one copy
        doubled = rich_request(b"\x05" * 16)
        doubled.resource_spans[0].scope_spans[0].spans.append(
            doubled.resource_spans[0].scope_spans[0].spans[0]
        )
        res = store.write(doubled)
        assert (res.accepted, res.duplicates) == (3, 1)
        assert store.stats().spans == 6
        assert store.trace_entities(["01" * 16])["01" * 16]["order.id"] == ["ORD-1"]


def test_invalid_spans_rejected_valid_ones_kept(tmp_path: Path) -> None:
    req = rich_request()
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[1].trace_id = b"\x01" * 8  # wrong length
    spans[2].span_id = b""  # missing
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        result = store.write(req)
        assert (result.accepted, result.rejected) == (1, 2)
        assert "trace_id must be 16 bytes" in result.messages[0]
        assert store.stats().spans == 1


def test_schema_version_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    DuckDBStore(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE seqtrace_meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(SchemaVersionError, match="schema version 999"):
        DuckDBStore(path)
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE t (x INT)")
    con.close()
    with pytest.raises(SchemaVersionError, match="not a seqtrace database"):
        DuckDBStore(other)


def test_read_only_open_of_missing_or_locked_file(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="no database file"):
        DuckDBStore(tmp_path / "missing.duckdb", read_only=True)
    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from spanstore.duckdb_store import DuckDBStore;"
            f"s = DuckDBStore({str(path)!r}); print('ready', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreUnavailable, match="held by another process"):
            DuckDBStore(path, read_only=True)
    finally:
        holder.kill()
        holder.wait()


def _as_schema_version_1(path: Path) -> None:
    """Give a store file the shape schema version 1 had: entity rows with a span id."""
    con = duckdb.connect(str(path))
    con.execute("DROP INDEX span_entities_value")
    con.execute("ALTER TABLE span_entities ADD COLUMN span_id BLOB DEFAULT '\\x01'::BLOB")
    con.execute("CREATE INDEX span_entities_value ON span_entities (value)")
    con.execute("DROP TABLE logs")  # version 1 had no log records (version 3 added them)
    con.execute("UPDATE seqtrace_meta SET value = '1' WHERE key = 'schema_version'")
    con.close()


def _columns(path: Path, table: str) -> list[str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position",
            [table],
        ).fetchall()
        version = con.execute(
            "SELECT value FROM seqtrace_meta WHERE key = 'schema_version'"
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in rows] + [f"version={version[0][0]}"]


def test_a_schema_version_1_file_is_read_as_it_is_and_migrated_by_a_writer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v1.duckdb"
    with DuckDBStore(path) as store:
        store.write(rich_request())
    _as_schema_version_1(path)
    assert "span_id" in _columns(path, "span_entities")

    # Read-only: no query reads the entity span id, so version 1 is read unchanged.
    with DuckDBStore(path, read_only=True) as store:
        assert store.entity_trace_ids("order.id", "ORD-1") == ["01" * 16]
    assert _columns(path, "span_entities")[-1] == "version=1"

    # A writer migrates the file (to version 4), keeps every entity row, writes new rows.
    with DuckDBStore(path) as store:
        store.write(rich_request(b"\x02" * 16))
        assert store.entity_trace_ids("order.id", "ORD-1") == ["01" * 16, "02" * 16]
        assert store.entity_keys()[0].spans > 0
    assert _columns(path, "span_entities") == [
        "key",
        "value",
        "trace_id",
        "service_name",
        "start_unix_nano",
        "version=4",  # migrated 1 -> 2 -> 3 -> 4 in one transaction
    ]
    con = duckdb.connect(str(path), read_only=True)
    indexes = con.execute(
        "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'span_entities'"
    ).fetchall()
    con.close()
    assert indexes == [("span_entities_value",)]


def test_read_only_store_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    DuckDBStore(path).close()
    with DuckDBStore(path, read_only=True) as store, pytest.raises(StoreError):
        store.write(rich_request())


def test_entities_and_links(tmp_path: Path) -> None:
    producer = rich_request(b"\x02" * 16, n=1)  # the span the others link to lives here
    producer.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x03" * 8
    producer.resource_spans[0].scope_spans[0].spans[0].ClearField("links")
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        store.write(rich_request())
        store.write(producer)
        keys = {k.key: k for k in store.entity_keys()}
        assert keys["order.id"].spans == 4 and keys["order.id"].traces == 2
        assert "tenant.id" in keys  # from the resource
        values = store.entity_values("order.id")
        assert [(v.value, v.traces) for v in values] == [("ORD-1", 2)]
        assert store.entity_trace_ids("order.id", "ORD-1") == ["01" * 16, "02" * 16]
        assert store.entity_trace_ids("order.id", "nope") == []
        # links are found from either end
        assert store.linked_trace_ids(["01" * 16]) == ["02" * 16]
        assert store.linked_trace_ids(["02" * 16]) == ["01" * 16]


def test_span_frame_columns(tmp_path: Path) -> None:
    from spanstore.frame import FRAME_SCHEMA, frame_from_spans

    with DuckDBStore(tmp_path / "s.duckdb") as store:
        store.write(rich_request())
        frame = store.span_frame(0, 1 << 62)
        spans = store.spans(["01" * 16])
    assert frame.schema == FRAME_SCHEMA
    row = frame.filter(frame["span_id"] == "03" * 8).to_dicts()[0]
    assert row["http_route"] == "/orders/{id}"
    assert row["http_status_code"] == 503
    assert row["exception_message"] == "upstream timed out"
    assert row["status_code"] == "ERROR"
    # the in-memory builder agrees with the store on every column
    assert frame.sort("span_id").equals(frame_from_spans(spans).sort("span_id"))


@pytest.mark.parametrize(
    "name",
    sorted(
        p.name
        for p in REAL_TRACES.glob("*.json")
        if "resourceSpans" in p.read_text()[:200] or "result" in p.read_text()[:30]
    ),
)
def test_real_otlp_files_round_trip(tmp_path: Path, name: str) -> None:
    doc = load_json(REAL_TRACES / name)
    assert isinstance(doc, dict)
    req = request_from_json(doc.get("result", doc))
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        store.write(req)
        for trace_id in {s.trace_id for s in spans_from_request(req)}:
            stored = store.spans([trace_id])
            sent = sorted(
                (s for s in spans_from_request(req) if s.trace_id == trace_id),
                key=lambda s: (s.start_unix_nano, s.span_id),
            )
            assert stored == sent


def test_resent_spans_are_found_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with DuckDBStore(path) as store:
        store.write(rich_request())
    with DuckDBStore(path) as store:  # the seen-filter is rebuilt from the table
        again = store.write(rich_request())
        assert (again.accepted, again.duplicates) == (0, 3)
        assert store.stats().spans == 3


def test_seen_filter_has_no_false_negatives_and_few_false_positives() -> None:
    from spanstore.dedup import SeenFilter, key_hashes

    seen = SeenFilter()
    added = [os.urandom(24) for _ in range(200_000)]
    seen.add(key_hashes(added))
    assert seen.maybe_seen(key_hashes(added)).all()
    fresh = [os.urandom(24) for _ in range(200_000)]
    assert seen.maybe_seen(key_hashes(fresh)).mean() < 0.001
    # hand-made, non-random ids spread as well as random ones
    made = [bytes([i]) * 16 + bytes([j]) * 8 for i in range(256) for j in range(200)]
    seen2 = SeenFilter()
    seen2.add(key_hashes(made[::2]))
    assert seen2.maybe_seen(key_hashes(made[::2])).all()
    assert seen2.maybe_seen(key_hashes(made[1::2])).mean() < 0.001


def _span_at(start_unix_nano: int, span_id: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x07" * 16, span_id, "old or new"
    span.start_time_unix_nano = start_unix_nano
    span.end_time_unix_nano = start_unix_nano + 1_000_000
    return request


def test_spans_older_than_the_dedup_window_are_checked_exactly(tmp_path: Path) -> None:
    """The seen-filter holds only spans in the dedup window (its memory and its build at
    open follow the recent rate, not the store's size); an older span re-sent is found
    in DuckDB instead, before and after reopening, journaled or committed."""
    import time

    from spanstore.duckdb_store import DEDUP_WINDOW_S

    now = time.time_ns()
    old = _span_at(now - 2 * DEDUP_WINDOW_S * 1_000_000_000, b"\x01" * 8)
    new = _span_at(now, b"\x02" * 8)
    path = tmp_path / "s.duckdb"
    with DuckDBStore(path) as store:
        assert store.write(old).accepted == 1
        assert store.write(new).accepted == 1
        # Journaled, perhaps not yet committed: the pending keys answer.
        assert (store.write(old).accepted, store.write(old).duplicates) == (0, 1)
        store.flush()
        assert (store.write(old).accepted, store.write(old).duplicates) == (0, 1)
    with DuckDBStore(path) as store:
        assert store._seen.count == 1  # the new span only: the old one is outside the window
        assert (store.write(old).duplicates, store.write(new).duplicates) == (1, 1)
        assert store.stats().spans == 2


def test_a_whole_row_group_is_checkpointed_at_commit(tmp_path: Path) -> None:
    """After a transaction of one row group of spans the writer checkpoints: the entity
    rows' partial row group is rewritten by every transaction, and without a
    checkpoint the blocks it freed were never reused (15 % of a benchmark's file)."""
    from spanstore.duckdb_store import ROWS_PER_COMMIT

    per_request = 512
    assert ROWS_PER_COMMIT % per_request == 0
    path = tmp_path / "s.duckdb"
    with DuckDBStore(path) as store:
        for r in range(ROWS_PER_COMMIT // per_request):
            request = ExportTraceServiceRequest()
            spans = request.resource_spans.add().scope_spans.add().spans
            for i in range(per_request):
                span = spans.add()
                span.trace_id = r.to_bytes(8, "big") + (i // 16 + 1).to_bytes(8, "big")
                span.span_id = (r * per_request + i + 1).to_bytes(8, "big")
                span.name, span.start_time_unix_nano = "GET /", 10**18 + r * per_request + i
                span.attributes.add(key="order.id").value.string_value = f"o-{r}-{i // 16}"
            assert store.write(request).accepted == per_request
        store.flush()
        wal = Path(f"{path}.wal")
        assert not wal.exists() or wal.stat().st_size == 0
        assert store.stats().spans == ROWS_PER_COMMIT


def test_seen_filter_layers_of_any_capacity() -> None:
    """A layer's bits need not come to whole bytes (a new layer holds twice what the
    filter holds, any number): the last bits must be addressable. 10M-span build:
    IndexError('index 5764368 is out of bounds for axis 0 with size 5764368')."""
    from spanstore.dedup import SeenFilter, key_hashes

    seen = SeenFilter(capacity=(1 << 20) + 1)  # 20 bits each: 20,971,540 bits
    keys = [os.urandom(24) for _ in range(300_000)]
    seen.add(key_hashes(keys))
    assert seen.maybe_seen(key_hashes(keys)).all()
    more = [os.urandom(24) for _ in range((1 << 20) - 300_000 + 12_345)]  # a second layer
    seen.add(key_hashes(more))
    assert seen.layers == 2 and seen.maybe_seen(key_hashes(more)).all()


def test_seen_filter_forgets_layers_filled_long_ago() -> None:
    import time

    from spanstore.dedup import SeenFilter, key_hashes

    seen = SeenFilter(capacity=1 << 20)
    old = [os.urandom(24) for _ in range(1 << 20)]  # fills the first layer exactly
    recent = [os.urandom(24) for _ in range(1000)]
    seen.add(key_hashes(old), newest_start=100)
    before_second_layer = time.monotonic()
    seen.add(key_hashes(recent), newest_start=200)
    assert seen.layers == 2
    assert seen.forget_closed_before(before_second_layer) is None  # filled after that
    # The latest start among what it forgot: the store checks spans up to it exactly.
    assert seen.forget_closed_before(time.monotonic()) == 100
    assert seen.layers == 1 and seen.count == 1000
    assert seen.maybe_seen(key_hashes(recent)).all()
    assert seen.maybe_seen(key_hashes(old)).mean() < 0.001
    # The newest layer stays, however old: keys are only ever dropped a layer at a time.
    assert seen.forget_closed_before(float("inf")) is None and seen.count == 1000


def test_checkpoint_threshold_reaches_duckdb(tmp_path: Path) -> None:
    """limits.db_checkpoint_mib trades memory for ingest speed; the store must pass it on."""
    from spanstore.duckdb_store import CHECKPOINT_THRESHOLD

    def setting(store: DuckDBStore) -> str:
        con = store._db.cursor()
        try:
            return str(
                con.execute("SELECT current_setting('checkpoint_threshold')").fetchall()[0][0]
            )
        finally:
            con.close()

    assert CHECKPOINT_THRESHOLD == "64MB"
    with DuckDBStore(tmp_path / "a.duckdb") as store:
        assert setting(store) == "61.0 MiB"  # DuckDB shows 64 MB (10^6) in MiB
    with DuckDBStore(tmp_path / "b.duckdb", checkpoint_threshold="16MB") as store:
        assert setting(store) == "15.2 MiB"


def test_seen_filter_grows_in_layers_and_keeps_every_key() -> None:
    """Past its capacity the filter adds a layer instead of being rebuilt from the
    table (a rebuild stalled ingest for a second per million spans)."""
    from spanstore.dedup import SeenFilter, key_hashes

    seen = SeenFilter(capacity=1 << 20)
    batches = [[os.urandom(24) for _ in range(100_000)] for _ in range(25)]
    for batch in batches:
        seen.add(key_hashes(batch))
    assert seen.layers == 2 and seen.count == 2_500_000
    assert all(seen.maybe_seen(key_hashes(batch)).all() for batch in batches)
    fresh = [os.urandom(24) for _ in range(200_000)]
    assert seen.maybe_seen(key_hashes(fresh)).mean() < 0.002
