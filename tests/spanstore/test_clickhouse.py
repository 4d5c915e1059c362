"""The ClickHouse store on the real ClickHouse engine: chdb, embedded in this process.

Every test that takes ``ch`` runs once per backend:

* ``chdb``       the embedded engine (needs ``pip install 'seqtrace[clickhouse]'``);
* ``chdb-http``  the HTTP transport (urllib, ArrowStream, auth headers, errors) against
                 an emulation of ClickHouse's HTTP interface that runs each request on
                 the same embedded engine;
* ``live``       a ClickHouse server, only when ``SEQTRACE_CLICKHOUSE_URL`` is set, e.g.
                 ``SEQTRACE_CLICKHOUSE_URL=clickhouse://default@localhost:8123`` (password
                 from ``SEQTRACE_CLICKHOUSE_PASSWORD``). Each test gets a database of its
                 own (``seqtrace_test_<random>``), dropped afterwards.

Without chdb these tests fail (not skip) with the one line that says how to install it.

chdb hosts one engine bound to one directory per process, so the whole session shares
one directory (a module-level singleton, not a fixture: fixtures imported into the other
test_clickhouse_* modules would be instantiated once per module) and each test gets a
database of its own inside it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from test_store import rich_request

from spanstore.base import InvalidRequest, SchemaVersionError, StoreError, StoreUnavailable
from spanstore.clickhouse_store import (
    INSTALL_HINT,
    PASSWORD_ENV,
    ClickHouseStore,
    HttpTransport,
    literal,
    render,
)
from spanstore.config import ClickHouseConfig, IngestConfig, StoreConfig
from spanstore.otlp import request_from_json, request_to_json, spans_from_request
from spanstore.urls import StoreURLError, open_store_url, parse_store_url

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_traces"
REAL_TRACES = ROOT / "tests" / "data" / "real_traces"
LIVE_URL = os.environ.get("SEQTRACE_CLICKHOUSE_URL", "")
HTTP_USER = "seqtrace"
HTTP_PASSWORD = "s3cret 'quoted' \\ pass"

BACKENDS = ["chdb", "chdb-http", *(["live"] if LIVE_URL else [])]


def require_chdb() -> None:
    """chdb is an optional extra, but the suite proves the SQL on it: fail, never skip."""
    try:
        import chdb  # noqa: F401
    except ImportError:
        pytest.fail(f"chdb is not installed: {INSTALL_HINT}", pytrace=False)


# --------------------------------------------------------------------------- the engine


class _Engine:
    """The session's chdb directory and the HTTP-interface emulation in front of it."""

    def __init__(self) -> None:
        require_chdb()
        import chdb

        self.dir = tempfile.mkdtemp(prefix="seqtrace-chdb-")
        self._chdb = chdb
        # Held for the whole session, so the engine stays up between tests.
        self.anchor = chdb.connect(f"file:{self.dir}")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        self._lock = threading.Lock()
        self._connections: dict[str, Any] = {}
        self.applied: dict[str, dict[str, str]] = {}

    def connection(self, database: str) -> Any:
        with self._lock:
            if database not in self._connections:
                conn = self._chdb.connect(f"file:{self.dir}")
                self._connections[database] = conn
            return self._connections[database]

    def drop(self, database: str) -> None:
        with self._lock:
            conn = self._connections.pop(database, None)
            self.applied.pop(database, None)
        if conn is not None:
            conn.close()
        self.anchor.query(f"DROP DATABASE IF EXISTS `{database}` SYNC", "CSV")

    def close(self) -> None:
        self.server.shutdown()
        for conn in self._connections.values():
            with contextlib.suppress(Exception):
                conn.close()
        with contextlib.suppress(Exception):
            self.anchor.close()
        shutil.rmtree(self.dir, ignore_errors=True)


_ENGINE: _Engine | None = None
_ENGINE_LOCK = threading.Lock()


def engine() -> _Engine:
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = _Engine()
            atexit.register(_ENGINE.close)
        return _ENGINE


def _handler(eng: _Engine) -> type[BaseHTTPRequestHandler]:
    """ClickHouse's HTTP interface, the part seqtrace uses: the query in the body (or in
    ``query=`` with the body as INSERT data), ``database=``, ``default_format=``, other
    URL parameters as settings, X-ClickHouse-User/Key, errors as text with status 500."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            return

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if (
                self.headers.get("X-ClickHouse-User") != HTTP_USER
                or self.headers.get("X-ClickHouse-Key") != HTTP_PASSWORD
            ):
                self._reply(
                    516,
                    b"Code: 516. DB::Exception: seqtrace: Authentication failed: password is "
                    b"incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)",
                )
                return
            database = params.pop("database", "default")
            fmt = params.pop("default_format", "TabSeparated")
            statement = params.pop("query", None)
            conn = eng.connection(database)
            try:
                with eng._lock:  # one query at a time per emulated session
                    applied = eng.applied.setdefault(database, {})
                    for name, value in params.items():
                        if applied.get(name) != value:
                            setting = value if value.isdigit() else literal(value)
                            conn.query(f"SET {name} = {setting}", "CSV")
                            applied[name] = value
                    if not applied.get("<use>"):
                        conn.query(f"USE `{database}`", "CSV")
                        applied["<use>"] = "1"
                    if statement is not None:
                        head, _, data_format = statement.rpartition(" FORMAT ")
                        with conn.send_insert(head, data_format.strip()) as inserter:
                            inserter.append(body)
                            inserter.finish()
                        out = b""
                    else:
                        out = conn.query(body.decode("utf-8"), fmt).bytes()
            except Exception as exc:
                self._reply(500, str(exc).encode("utf-8"))
                return
            self._reply(200, out)

    return Handler


# --------------------------------------------------------------------------- stores


def store_config(**options: Any) -> StoreConfig:
    """A store's config from the keywords of its parts (``IngestConfig``'s and
    ``ClickHouseConfig``'s fields)."""
    parts: dict[str, dict[str, Any]] = {"ingest": {}, "clickhouse": {}}
    for name, value in options.items():
        part = "ingest" if name in IngestConfig.__dataclass_fields__ else "clickhouse"
        parts[part][name] = tuple(value) if name == "entity_keys" else value
    return StoreConfig(
        ingest=IngestConfig(**parts["ingest"]), clickhouse=ClickHouseConfig(**parts["clickhouse"])
    )


class StoreMaker:
    """Opens stores on a fresh database of one backend; closes and drops at teardown."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.database = f"seqtrace_test_{uuid.uuid4().hex[:12]}"
        self.opened: list[ClickHouseStore] = []

    def url(self) -> str:
        """The store URL of this test's database (password not included)."""
        if self.backend == "chdb":
            return f"chdb://{engine().dir}?database={self.database}"
        if self.backend == "chdb-http":
            base = engine().url.replace("http://", "")
            return f"clickhouse://{HTTP_USER}@{base}/{self.database}"
        parsed = parse_store_url(LIVE_URL)
        scheme = "clickhouses" if parsed.base_url.startswith("https") else "clickhouse"
        who = f"{parsed.user}@" if parsed.user else ""
        return f"{scheme}://{who}{parsed.base_url.split('://', 1)[1]}/{self.database}"

    def __call__(self, *, read_only: bool = False, **options: Any) -> ClickHouseStore:
        config = store_config(**options)
        if self.backend == "chdb":
            store = ClickHouseStore.chdb(
                engine().dir, database=self.database, read_only=read_only, config=config
            )
        elif self.backend == "chdb-http":
            store = ClickHouseStore.http(
                engine().url,
                database=self.database,
                user=HTTP_USER,
                password=HTTP_PASSWORD,
                read_only=read_only,
                config=config,
            )
        else:
            parsed = parse_store_url(LIVE_URL)
            store = ClickHouseStore.http(
                parsed.base_url,
                database=self.database,
                user=parsed.user,
                password=parsed.password,
                read_only=read_only,
                config=config,
            )
        self.opened.append(store)
        return store

    def command(self, text: str) -> None:
        """Run a statement in this test's database, around the store (test setup)."""
        transport = self.transport()
        try:
            transport.command(text)
        finally:
            transport.close()

    def transport(self) -> Any:
        if self.backend == "chdb":
            from spanstore.clickhouse_store import ChdbTransport

            return ChdbTransport(engine().dir, self.database)
        if self.backend == "chdb-http":
            return HttpTransport(
                engine().url, self.database, user=HTTP_USER, password=HTTP_PASSWORD
            )
        parsed = parse_store_url(LIVE_URL)
        return HttpTransport(
            parsed.base_url, self.database, user=parsed.user, password=parsed.password
        )

    def teardown(self) -> None:
        for store in self.opened:
            store.close()
        if self.backend == "live":
            parsed = parse_store_url(LIVE_URL)
            HttpTransport(
                parsed.base_url, "default", user=parsed.user, password=parsed.password
            ).command(f"DROP DATABASE IF EXISTS `{self.database}` SYNC")
        else:
            engine().drop(self.database)


@pytest.fixture(params=BACKENDS)
def ch(request: pytest.FixtureRequest) -> Iterator[StoreMaker]:
    """A maker of ClickHouse stores on a fresh database, for each backend."""
    if request.param != "live":
        require_chdb()
        engine()
    maker = StoreMaker(request.param)
    yield maker
    maker.teardown()


def load_samples(write: Callable[[ExportTraceServiceRequest], Any]) -> None:
    from collector.files import read_trace_file

    for file in sorted(SAMPLES.glob("*.json")):
        for request in read_trace_file(file):
            write(request)


# --------------------------------------------------------------------------- the store


def test_round_trip_is_lossless(ch: StoreMaker) -> None:
    req = rich_request()
    store = ch()
    result = store.write(req)
    assert (result.accepted, result.rejected, result.duplicates) == (3, 0, 0)
    back = store.trace_request("01" * 16)
    assert back is not None
    assert back == req  # byte-for-byte the same protobuf, every field
    assert request_to_json(back) == request_to_json(req)
    assert store.trace_request("ff" * 16) is None
    assert store.trace_request("not hex") is None


def test_model_spans_carry_every_value_type(ch: StoreMaker) -> None:
    store = ch()
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
    assert spans == list(spans_from_request(rich_request()))


def test_serialized_requests_and_decoder_processes(ch: StoreMaker) -> None:
    store = ch()
    assert store.write(rich_request().SerializeToString()).accepted == 3
    with pytest.raises(InvalidRequest):
        store.write(b"\xff\xff not protobuf")
    store.close()
    pooled = ch(decoder_processes=1)
    result = pooled.write(rich_request(b"\x07" * 16).SerializeToString())
    assert (result.accepted, pooled.write(rich_request()).duplicates) == (3, 3)
    assert pooled.stats().spans == 6


def test_ingest_policy_redacts_before_storing(ch: StoreMaker) -> None:
    from spanstore.policy import IngestPolicy, RedactionRule

    policy = IngestPolicy(rules=(RedactionRule("secrets", ("ratio", "blob"), "drop"),))
    store = ch(policy=policy)
    store.write(rich_request())
    for span in store.spans(["01" * 16]):
        assert "ratio" not in span.attributes and "blob" not in span.attributes
        assert span.attributes["order.id"] == "ORD-1"
    raw = store.transport.query("SELECT raw FROM seqtrace_spans").column(0).to_pylist()
    assert all(b"\x00\xff" not in r for r in raw)
    stats = store.ingest_stats()
    assert stats["policy"]["redacted"] == {"secrets": 6}
    assert stats["queue"]["spans"] == 0 and stats["database"]["writable"]


def test_resent_span_is_stored_once(ch: StoreMaker) -> None:
    store = ch()
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


def test_racing_writers_are_deduplicated_on_read(ch: StoreMaker) -> None:
    """Two collectors that store the same retry at once (both pass the duplicate check)
    leave two copies until ReplacingMergeTree merges them; reads count one."""
    first, second = ch(), ch()
    req = rich_request()
    first.write(req)
    # The race, made deterministic: insert the same prepared rows again, past the check.
    from spanstore.decode.prepare import KeyClassifier, prepare_request

    batch = prepare_request(req, KeyClassifier())
    for name, table in (
        ("seqtrace_spans", batch.spans),
        ("seqtrace_entities", batch.entities),
        ("seqtrace_links", batch.links),
    ):
        second._insert_table(name, table)
    raw = second.transport.query("SELECT count() AS n FROM seqtrace_spans").column(0)[0].as_py()
    assert raw == 6  # not merged yet: two physical copies
    stats = second.stats()
    assert (stats.spans, stats.traces) == (3, 1)
    assert [s.span_id for s in second.spans(["01" * 16])] == ["01" * 8, "02" * 8, "03" * 8]
    assert second.trace_request("01" * 16) == req
    assert second.span_frame(0, 1 << 62).height == 3
    keys = {k.key: k for k in second.entity_keys()}
    assert keys["order.id"].spans == 3
    assert [(v.value, v.spans) for v in second.entity_values("order.id")] == [("ORD-1", 3)]
    assert second.recent_traces().to_dicts()[0]["spans"] == 3
    assert second.throughput(0, 1 << 62, 1 << 61)["spans"].sum() == 3
    # and a merge removes the copy for good
    ch.command("OPTIMIZE TABLE seqtrace_spans FINAL")
    raw = second.transport.query("SELECT count() AS n FROM seqtrace_spans").column(0)[0].as_py()
    assert raw == 3


def test_invalid_spans_rejected_valid_ones_kept(ch: StoreMaker) -> None:
    req = rich_request()
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[1].trace_id = b"\x01" * 8  # wrong length
    spans[2].span_id = b""  # missing
    store = ch()
    result = store.write(req)
    assert (result.accepted, result.rejected) == (1, 2)
    assert "trace_id must be 16 bytes" in result.messages[0]
    assert store.stats().spans == 1


def test_schema_version_is_checked(ch: StoreMaker) -> None:
    ch().close()
    ch.command("INSERT INTO seqtrace_meta (key, value) VALUES ('schema_version', '999')")
    with pytest.raises(SchemaVersionError, match="schema version 999"):
        ch()


def test_empty_database_read_only(ch: StoreMaker) -> None:
    ch.transport().close()  # creates the (empty) database
    with pytest.raises(SchemaVersionError, match="no seqtrace tables"):
        ch(read_only=True)
    with pytest.raises(SchemaVersionError, match="no table 'otel_traces'"):
        ch(layout="otel")


def test_read_only_store_refuses_writes(ch: StoreMaker) -> None:
    ch().close()
    store = ch(read_only=True)
    with pytest.raises(StoreError, match="read-only"):
        store.write(rich_request())
    assert store.stats().spans == 0
    assert store.stats().first_unix_nano is None


def test_entities_and_links(ch: StoreMaker) -> None:
    producer = rich_request(b"\x02" * 16, n=1)  # the span the others link to lives here
    producer.resource_spans[0].scope_spans[0].spans[0].span_id = b"\x03" * 8
    producer.resource_spans[0].scope_spans[0].spans[0].ClearField("links")
    store = ch()
    store.write(rich_request())
    store.write(producer)
    keys = {k.key: k for k in store.entity_keys()}
    assert keys["order.id"].spans == 4 and keys["order.id"].traces == 2
    assert "tenant.id" in keys  # from the resource
    values = store.entity_values("order.id")
    assert [(v.value, v.traces) for v in values] == [("ORD-1", 2)]
    assert store.entity_values("order.id", prefix="ORD-") == values
    assert store.entity_values("order.id", prefix="X") == []
    assert store.entity_values("order.id", end_unix_nano=1) == []
    assert store.entity_trace_ids("order.id", "ORD-1") == ["01" * 16, "02" * 16]
    assert store.entity_trace_ids("order.id", "nope") == []
    assert store.entity_trace_ids("order.id", "ORD-1", 1_700_000_000_000_000_001) == ["01" * 16]
    assert store.entity_traces("order.id", "ORD-1") == [
        ("01" * 16, 1_700_000_000_000_000_000),
        ("02" * 16, 1_700_000_000_000_000_000),
    ]
    # links are found from either end
    assert store.linked_trace_ids(["01" * 16]) == ["02" * 16]
    assert store.linked_trace_ids(["02" * 16]) == ["01" * 16]
    assert store.linked_trace_ids(["zz"]) == []
    assert store.trace_entities(["01" * 16, "02" * 16]) == {
        "01" * 16: {"order.id": ["ORD-1"], "tenant.id": ["T-9"]},
        "02" * 16: {"order.id": ["ORD-1"], "tenant.id": ["T-9"]},
    }


@pytest.mark.parametrize("count", [3, 90])  # a literal array; a set built on the server
def test_ids_ending_in_zero_bytes(ch: StoreMaker, count: int) -> None:
    """FixedString ids that end in 0x00 survive every id lookup (ClickHouse drops
    trailing zero bytes when it turns a FixedString into a String)."""
    traces = [bytes([i + 1]) + bytes(14) + (b"\x00" if i % 2 else b"\x01") for i in range(count)]
    traces[0] = b"\x05" + bytes(15)
    store = ch()
    for i, trace in enumerate(traces):
        req = rich_request(trace, n=2)
        for span in req.resource_spans[0].scope_spans[0].spans:
            span.span_id = span.span_id[:7] + b"\x00"
            if span.parent_span_id:
                span.parent_span_id = span.span_id
            span.links[0].trace_id = traces[(i + 1) % count]
        req.resource_spans[0].scope_spans[0].spans[1].parent_span_id = (
            req.resource_spans[0].scope_spans[0].spans[0].span_id
        )
        assert store.write(req).accepted == 2
        assert store.write(req).duplicates == 2
    hex_ids = [t.hex() for t in traces]
    spans = store.spans(hex_ids)
    assert sorted({s.trace_id for s in spans}) == sorted(hex_ids)
    assert len(spans) == 2 * count
    assert all(s.span_id.endswith("00") for s in spans)
    entities = store.trace_entities(hex_ids)
    assert sorted(entities) == sorted(hex_ids)
    assert set(store.linked_trace_ids(hex_ids[:1])) == {hex_ids[1 % count], hex_ids[-1]} - {
        hex_ids[0]
    }
    assert sorted(store.entity_trace_ids("order.id", "ORD-1")) == sorted(hex_ids)
    assert store.trace_request(hex_ids[0]) is not None
    assert store.stats().spans == 2 * count


def test_span_bounds_and_last_span_end(ch: StoreMaker) -> None:
    store = ch()
    assert store.last_unix_nano() is None
    store.write(rich_request())
    first = 1_700_000_000_000_000_000
    assert store.last_unix_nano() == store.stats().last_unix_nano == first + 2000 + 5_000_000
    ids = ["01" * 16]
    assert len(store.spans(ids, start_unix_nano=first, end_unix_nano=first + 2000)) == 3
    later = store.spans(ids, start_unix_nano=first + 1)
    assert [s.span_id for s in later] == ["02" * 8, "03" * 8]
    earlier = store.spans(ids, end_unix_nano=first + 1000)
    assert [s.span_id for s in earlier] == ["01" * 8, "02" * 8]
    assert store.spans(ids, start_unix_nano=first + 10**12) == []


def test_hostile_entity_values_are_literals(ch: StoreMaker) -> None:
    """Values go into SQL as literals: quotes, backslashes, control characters, braces,
    '$' and '@' (the templates' own markers) must come back exactly."""
    hostile = [
        "O'Brien",
        "back\\slash\\",
        "new\nline\ttab\x00nul",
        "$key @table {x:String}",
        "'; DROP TABLE seqtrace_spans; --",
        "ünïcode ✓ 🚀",
    ]
    store = ch()
    for i, value in enumerate(hostile):
        req = rich_request(bytes([0x10 + i]) * 16, n=1)
        span = req.resource_spans[0].scope_spans[0].spans[0]
        for kv in span.attributes:
            if kv.key == "order.id":
                kv.value.string_value = value
        store.write(req)
    for i, value in enumerate(hostile):
        assert store.entity_trace_ids("order.id", value) == [bytes([0x10 + i]).hex() * 16]
        assert [v.value for v in store.entity_values("order.id", prefix=value)] == [value]
    assert store.stats().spans == len(hostile)


def test_span_frame_columns(ch: StoreMaker, tmp_path: Path) -> None:
    from spanstore.duckdb_store import DuckDBStore
    from spanstore.frame import FRAME_SCHEMA, frame_from_spans

    store = ch()
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
    # and so does the DuckDB store
    with DuckDBStore(tmp_path / "s.duckdb") as duck:
        duck.write(rich_request())
        assert frame.sort("span_id").equals(duck.span_frame(0, 1 << 62).sort("span_id"))
    assert store.span_frame(0, 1 << 62, service="nope").height == 0
    assert store.span_frame(0, 1 << 62, whole_traces=False).height == 3


@pytest.mark.parametrize(
    "name",
    sorted(
        p.name
        for p in REAL_TRACES.glob("*.json")
        if "resourceSpans" in p.read_text()[:200] or "result" in p.read_text()[:30]
    ),
)
def test_real_otlp_files_round_trip(ch: StoreMaker, name: str) -> None:
    from tests.conftest import load_json

    doc = load_json(REAL_TRACES / name)
    assert isinstance(doc, dict)
    req = request_from_json(doc.get("result", doc))
    store = ch()
    store.write(req)
    for trace_id in {s.trace_id for s in spans_from_request(req)}:
        stored = store.spans([trace_id])
        sent = sorted(
            (s for s in spans_from_request(req) if s.trace_id == trace_id),
            key=lambda s: (s.start_unix_nano, s.span_id),
        )
        assert stored == sent


def test_concurrent_writers_group_commit(ch: StoreMaker) -> None:
    store = ch()
    results: list[int] = []
    errors: list[BaseException] = []

    def send(worker: int) -> None:
        try:
            for i in range(10):
                trace = bytes([worker + 1, i + 1]) * 8
                results.append(store.write(rich_request(trace, n=4)).accepted)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(results) == 6 * 10 * 4
    stats = store.stats()
    assert (stats.spans, stats.traces) == (240, 60)


def test_ttl_is_part_of_the_schema(ch: StoreMaker) -> None:
    store = ch(ttl_days=30)
    text = store.transport.query("SHOW CREATE TABLE seqtrace_spans").column(0)[0].as_py()
    assert b"TTL" in text and b"toIntervalDay(30)" in text
    assert b"ReplacingMergeTree" in text and b"PARTITION BY toDate" in text
    index = store.transport.query("SHOW CREATE TABLE seqtrace_trace_index").column(0)[0]
    assert b"TTL day + toIntervalDay(30)" in index.as_py()


def test_retention_policy_becomes_ttl(ch: StoreMaker) -> None:
    from spanstore.retention import RetentionPolicy

    store = ch(retention=RetentionPolicy(max_age_seconds=9.5 * 86_400))
    assert store.ttl_days == 10
    text = store.transport.query("SHOW CREATE TABLE seqtrace_entities").column(0)[0].as_py()
    assert b"toIntervalDay(10)" in text


def test_closed_store_refuses_reads_and_writes(ch: StoreMaker) -> None:
    store = ch()
    store.close()
    store.close()  # twice is fine
    with pytest.raises(StoreUnavailable):
        store.stats()
    with pytest.raises(StoreUnavailable):
        store.write(rich_request())


# --------------------------------------------------------------------------- transports


def test_one_chdb_directory_per_process(tmp_path: Path) -> None:
    require_chdb()
    engine()
    with pytest.raises(StoreUnavailable, match="one directory per process"):
        ClickHouseStore.chdb(tmp_path / "other")
    with pytest.raises(StoreUnavailable, match="no chdb database directory"):
        ClickHouseStore.chdb(tmp_path / "missing", read_only=True)


def test_chdb_directory_held_by_another_process() -> None:
    require_chdb()
    eng = engine()
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "from spanstore.base import StoreUnavailable\n"
            "from spanstore.clickhouse_store import ClickHouseStore\n"
            "try:\n"
            f"    ClickHouseStore.chdb({eng.dir!r}, read_only=True)\n"
            "except StoreUnavailable as exc:\n"
            "    print(exc)\n",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert "held by another process" in probe.stdout, probe.stdout + probe.stderr


def test_http_credentials_and_unreachable_server(monkeypatch: pytest.MonkeyPatch) -> None:
    require_chdb()
    eng = engine()
    database = f"seqtrace_test_{uuid.uuid4().hex[:12]}"
    base = eng.url.replace("http://", "")
    try:
        with pytest.raises(StoreUnavailable, match="refused the credentials"):
            open_store_url(f"clickhouse://{HTTP_USER}@{base}/{database}")
        monkeypatch.setenv(PASSWORD_ENV, HTTP_PASSWORD)
        store = open_store_url(f"clickhouse://{HTTP_USER}@{base}/{database}")
        assert isinstance(store, ClickHouseStore)
        store.write(rich_request())
        store.close()
        with open_store_url(f"clickhouse://{HTTP_USER}@{base}/{database}", read_only=True) as ro:
            assert ro.stats().spans == 3
        with pytest.raises(StoreError, match=r"UNKNOWN_DATABASE|does not exist|doesn.t exist"):
            open_store_url(f"clickhouse://{HTTP_USER}@{base}/nope_{database}", read_only=True)
    finally:
        eng.drop(database)
    with pytest.raises(StoreUnavailable, match="cannot reach ClickHouse"):
        ClickHouseStore.http("http://127.0.0.1:9", timeout=2)


def test_a_bad_config_is_refused_before_anything_opens(tmp_path: Path) -> None:
    """chdb()/http() take a typed config and validate it first: the error names the
    setting and the value, and no directory is created nor server asked."""
    cases = [
        (StoreConfig(clickhouse=ClickHouseConfig(layout="columns")), r"layout must be .*'columns'"),
        (
            StoreConfig(clickhouse=ClickHouseConfig(otel_table="")),
            "otel_table must be a table name",
        ),
        (
            StoreConfig(clickhouse=ClickHouseConfig(ttl_days=-1)),
            r"ttl_days must be an integer >= 0, got -1",
        ),
        (
            StoreConfig(ingest=IngestConfig(max_queued_spans=0)),
            r"max_queued_spans must be an integer >= 1, got 0",
        ),
    ]
    for config, message in cases:
        with pytest.raises(ValueError, match=message):
            ClickHouseStore.chdb(tmp_path / "never", config=config)
        with pytest.raises(ValueError, match=message):
            ClickHouseStore.http("http://127.0.0.1:9", timeout=2, config=config)
    assert not (tmp_path / "never").exists()


def test_sql_errors_name_the_store(ch: StoreMaker) -> None:
    store = ch()
    with pytest.raises(StoreError, match=r"ClickHouse \(.*\): .*") as info:
        store.transport.query("SELECT no_such_column FROM seqtrace_spans")
    assert "\n" not in str(info.value)


def test_literals() -> None:
    assert literal(None) == "NULL"
    assert literal(True) == "true"
    assert literal(-5) == "-5"
    assert literal("a'b\\c\n") == "'a\\'b\\\\c\\x0a'"
    assert literal(b"\x01\xff") == "unhex('01ff')"
    assert literal(["x", 1]) == "['x', 1]"
    assert render("SELECT $a, @b, $a", {"a": "$b@b"}, {"b": "col"}) == "SELECT '$b@b', col, '$b@b'"
    with pytest.raises(ValueError):
        literal(float("nan"))


# --------------------------------------------------------------------------- store URLs


def test_store_urls_parse() -> None:
    assert parse_store_url("./x.duckdb").backend == "duckdb"
    assert parse_store_url("duckdb:///tmp/x.duckdb").path == "/tmp/x.duckdb"
    assert parse_store_url("duckdb://rel/x.duckdb").path == "rel/x.duckdb"
    url = parse_store_url("chdb:///var/lib/st?database=prod&ttl_days=30&max_threads=2")
    assert (url.backend, url.path, url.database, url.ttl_days) == (
        "chdb",
        "/var/lib/st",
        "prod",
        30,
    )
    assert url.settings == {"max_threads": "2"}
    assert parse_store_url("clickhouse+chdb://data/ch").path == "data/ch"
    url = parse_store_url(
        "clickhouse://alice:p%40ss@ch.example:9000/otel?table=spans&async_insert=1"
    )
    assert (url.base_url, url.user, url.password, url.database, url.table) == (
        "http://ch.example:9000",
        "alice",
        "p@ss",
        "otel",
        "spans",
    )
    assert url.settings == {"async_insert": "1"}
    assert "p@ss" not in url.redacted() and "p@ss" not in repr(url)
    url = parse_store_url("clickhouses://ch.example")
    assert (url.base_url, url.database, url.user) == ("https://ch.example:8443", "default", None)
    assert parse_store_url("clickhouse://h?secure=1").base_url == "https://h:8123"
    for bad in (
        "",
        "mysql://x",
        "clickhouse://",
        "clickhouse://h/a/b",
        "chdb://?x=1",
        "clickhouse://h?layout=weird",
        "clickhouse://h?ttl_days=-1",
    ):
        with pytest.raises(StoreURLError):
            parse_store_url(bad)


def test_open_store_url_duckdb_and_chdb(tmp_path: Path) -> None:
    from spanstore.duckdb_store import DuckDBStore

    with open_store_url(str(tmp_path / "a.duckdb")) as duck:
        assert isinstance(duck, DuckDBStore)
    with open_store_url(f"duckdb://{tmp_path / 'b.duckdb'}") as duck:
        assert isinstance(duck, DuckDBStore)
    require_chdb()
    database = f"seqtrace_test_{uuid.uuid4().hex[:12]}"
    try:
        with open_store_url(f"chdb://{engine().dir}?database={database}") as store:
            assert isinstance(store, ClickHouseStore) and store.layout == "seqtrace"
            store.write(rich_request())
        with open_store_url(f"chdb://{engine().dir}?database={database}", read_only=True) as ro:
            assert ro.stats().spans == 3
    finally:
        engine().drop(database)
