"""The ClickHouse backend: the same SpanWriter and SpanReader over a ClickHouse database.

One SQL code path (``spanstore/sql/clickhouse/*.sql``), two transports:

* **chdb** — the ClickHouse engine embedded in this process, on a directory
  (``chdb:///var/lib/seqtrace``). Like a DuckDB file, one process owns the directory.
  Needs the optional extra: ``pip install 'seqtrace[clickhouse]'``.
* **HTTP** — a ClickHouse server or cluster through its HTTP interface
  (``clickhouse://user@host:8123/db``; the password comes from the environment variable
  ``SEQTRACE_CLICKHOUSE_PASSWORD``), with the standard library's ``urllib`` only. Several
  ``seqtrace serve`` processes can write to one server; the API and the UI read from it.

Both move data as Arrow: inserts send the Arrow IPC stream that ``spanstore.decode.prepare``
prepares (``INSERT ... FORMAT ArrowStream``), queries return ``ArrowStream``.

Two table layouts are read:

* seqtrace's own (``schema.sql``: ``seqtrace_spans``, ``seqtrace_entities``, ...), which
  this class creates and writes, losslessly (each span's OTLP protobuf is kept);
* the OpenTelemetry Collector contrib ``clickhouseexporter``'s ``otel_traces`` table, read
  only: a team that already exports to ClickHouse points seqtrace at that database and
  gets entity diagrams and reports without running the seqtrace collector. Attribute
  values in that table are strings (the exporter stores ``AsString()``), and span flags
  and dropped counts are not kept, so spans read from it carry string attributes.

Re-sent spans: before inserting, the writer drops spans already stored (one query over
the batch's traces and hours), so one writer never stores a span twice. Two writers that
receive the same retry at the same moment can both insert it; ReplacingMergeTree then
collapses the copies at its next merge, and until then reads that must be exact
de-duplicate (``FINAL``, ``LIMIT 1 BY``, ``uniqExact(trace_id, span_id)``).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import cache
from typing import Any, Final, Literal, Protocol

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from spanstore.admission import WaitingSpans
from spanstore.base import (
    SchemaVersionError,
    StoreError,
    StoreUnavailable,
    WriteResult,
)
from spanstore.clickhouse_logs import LOGS_TABLE, ClickHouseLogs
from spanstore.config import StoreConfig
from spanstore.decode.front import RequestDecoder
from spanstore.decode.prepare import PreparedBatch
from spanstore.dialect import SpanLayout, parameter_names, query_names, sql_text
from spanstore.log_reader import LogQueries
from spanstore.logs import LogBatch
from spanstore.model import AttrValue, Span
from spanstore.policy import IngestPolicy
from spanstore.query.compiler import CLICKHOUSE as CLICKHOUSE_QUERY_TARGET
from spanstore.query.compiler import Target as QueryTarget
from spanstore.reader import StoreReader
from spanstore.retention import RetentionPolicy
from spanstore.rows import KIND_SPELLINGS, STATUS_SPELLINGS
from spanstore.semconv import INT_COLUMNS, KEY_TO_COLUMN, STRING_COLUMNS, is_entity_key
from spanstore.wire import reference_tables
from spanstore.writer import Queued, WriterThread, each_on_its_own

__all__ = [
    "DEFAULT_OTEL_TABLE",
    "INSTALL_HINT",
    "PASSWORD_ENV",
    "SCHEMA_VERSION",
    "ChdbTransport",
    "ClickHouseDialect",
    "ClickHouseStore",
    "HttpTransport",
    "Layout",
    "OtelDialect",
    "Transport",
    "literal",
    "otel_rows",
    "render",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
DEFAULT_OTEL_TABLE: Final = "otel_traces"
#: The exporter's log table, read beside its traces table (#18).
OTEL_LOGS_TABLE: Final = "otel_logs"
PASSWORD_ENV: Final = "SEQTRACE_CLICKHOUSE_PASSWORD"  # noqa: S105 - a variable name
INSTALL_HINT: Final = "pip install 'seqtrace[clickhouse]'"

Layout = Literal["auto", "seqtrace", "otel"]

_INT64_MAX: Final = (1 << 63) - 1
_GROUP_COMMIT_SPANS: Final = 32_768
_IDS_PER_QUERY: Final = 100_000
_ENTITY_KEYS_TTL_S: Final = 60.0

#: Settings every query runs with, on both transports. Strings come back as Arrow binary
#: (ClickHouse strings are bytes; `raw` holds protobuf) and are decoded here; id lists
#: in IN (...) can be long.
QUERY_SETTINGS: Final[dict[str, str]] = {
    "output_format_arrow_string_as_string": "0",
    "output_format_arrow_low_cardinality_as_dictionary": "0",
    "max_query_size": str(64 << 20),
}
#: An insert may touch many day partitions (a file of old traces being loaded).
_INSERT_SETTINGS: Final = "SETTINGS max_partitions_per_insert_block = 0"

#: Columns kept as bytes when a result's strings are decoded: the stored protobuf, and
#: the SLO rows' keys (raw bytes in seqtrace's tables, hex text in otel_traces).
_BINARY_COLUMNS: Final = frozenset({"raw", "span_key", "parent_key"})


# --------------------------------------------------------------------------- SQL text


@cache
def sql(name: str) -> str:
    """``spanstore/sql/clickhouse/NAME.sql`` without its comments (all SQL lives there)."""
    # The files hold no string literal with "--" in it, so a comment runs to the line end.
    return re.sub(r"--[^\n]*", "", sql_text("clickhouse", name))


def _quote_string(text: str) -> str:
    out = []
    for char in text:
        if char in "\\'":
            out.append("\\" + char)
        elif ord(char) < 0x20 or char == "\x7f":
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "'" + "".join(out) + "'"


_SHORT_ID_SET: Final = 64


@dataclass(frozen=True, slots=True)
class IdSet:
    """Ids (bytes, or hex strings) for ``column IN $ids``.

    A short set is an array literal. A long one is a single string literal split on the
    server: ClickHouse parses and folds thousands of ``unhex('...')`` literals slowly,
    one string it splits quickly (docs/performance.md).
    """

    ids: tuple[bytes, ...] | tuple[str, ...]

    def sql(self) -> str:
        if not self.ids:
            raise ValueError("an empty id set matches nothing; do not query with it")
        if len(self.ids) <= _SHORT_ID_SET:
            return literal(list(self.ids))
        if isinstance(self.ids[0], bytes):
            width = len(self.ids[0])
            joined = ",".join(bytes(i).hex() for i in self.ids)
            # toFixedString: a String set would be compared with the FixedString column
            # converted to String, which drops trailing zero bytes (ids ending in 00).
            return (
                f"(SELECT arrayJoin(arrayMap(x -> toFixedString(unhex(x), {width}), "
                f"splitByChar(',', '{joined}'))))"
            )
        texts = [str(i) for i in self.ids]
        if any(not t or not all(c in _HEX for c in t) for t in texts):
            raise ValueError("string ids must be hex")
        return f"(SELECT arrayJoin(splitByChar(',', '{','.join(texts)}')))"


_HEX: Final = frozenset("0123456789abcdefABCDEF")


def literal(value: object) -> str:
    """A Python value as a ClickHouse SQL literal (lists become arrays)."""
    if isinstance(value, IdSet):
        return value.sql()
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot send {value!r} as a literal")
        return repr(value)
    if isinstance(value, str):
        return _quote_string(value)
    if isinstance(value, bytes | bytearray):
        return f"unhex('{bytes(value).hex()}')"
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return "[" + ", ".join(literal(item) for item in items) + "]"
    raise TypeError(f"no ClickHouse literal for {type(value).__name__}")


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


_TOKEN: Final = re.compile(r"\$([a-z_][a-z0-9_]*)|@([a-z_][a-z0-9_]*)")


def render(
    template: str,
    params: Mapping[str, object] | None = None,
    fragments: Mapping[str, str] | None = None,
) -> str:
    """Fill ``$name`` with literals and ``@name`` with SQL fragments, in one pass (a
    literal's text is never scanned again)."""
    params = params or {}
    fragments = fragments or {}

    def fill(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return literal(params[match.group(1)])
        return fragments[match.group(2)]

    return _TOKEN.sub(fill, template)


def statements(text: str) -> list[str]:
    """A file of statements separated by ';' at line ends."""
    return [part.strip() for part in re.split(r";\s*\n", text + "\n") if part.strip()]


# --------------------------------------------------------------------------- Arrow helpers


def _as_text_type(kind: pa.DataType) -> pa.DataType:
    """The type with every (large) binary inside it turned into string."""
    if pa.types.is_binary(kind):
        return pa.string()
    if pa.types.is_large_binary(kind):
        return pa.large_string()
    if pa.types.is_map(kind):
        return pa.map_(_as_text_type(kind.key_type), _as_text_type(kind.item_type))
    if pa.types.is_list(kind):
        return pa.list_(_as_text_type(kind.value_type))
    if pa.types.is_large_list(kind):
        return pa.large_list(_as_text_type(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _as_text_type(f.type), f.nullable) for f in kind])
    return kind


def decode_strings(table: pa.Table, keep: frozenset[str] = _BINARY_COLUMNS) -> pa.Table:
    """ClickHouse strings arrive as binary; decode all but the ``keep`` columns as UTF-8."""
    fields = []
    for field in table.schema:
        kind = field.type if field.name in keep else _as_text_type(field.type)
        fields.append(pa.field(field.name, kind, field.nullable))
    schema = pa.schema(fields)
    if schema == table.schema:
        return table
    try:
        return table.cast(schema)
    except pa.ArrowInvalid:
        # Not UTF-8 (a writer other than OTLP put bytes in a string): decode leniently.
        columns = []
        for field, column in zip(schema, table.columns, strict=True):
            if field.type == column.type:
                columns.append(column)
            else:
                columns.append(pa.array(_lenient(column.to_pylist()), field.type))
        return pa.Table.from_arrays(columns, schema=schema)


def _lenient(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return [_lenient(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_lenient(v) for v in value)
    if isinstance(value, dict):
        return {k: _lenient(v) for k, v in value.items()}
    return value


def arrow_stream(table: pa.Table) -> bytes:
    """A table as the Arrow IPC stream that ``INSERT ... FORMAT ArrowStream`` reads."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def _read_stream(data: bytes) -> pa.Table:
    if not data:
        return pa.table({})
    with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
        return reader.read_all()


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "no message"
    return line[:500]


# --------------------------------------------------------------------------- transports


class Transport(Protocol):
    """How SQL reaches ClickHouse. Results are Arrow tables, strings as binary."""

    description: str

    def query(self, text: str) -> pa.Table: ...

    def command(self, text: str) -> None: ...

    def insert(self, table: str, columns: Sequence[str], data: bytes) -> None:
        """``INSERT INTO table (columns)`` of an Arrow IPC stream."""
        ...

    def close(self) -> None: ...


class ChdbTransport:
    """The ClickHouse engine in this process (chdb), on one directory.

    chdb hosts one engine per process, bound to one directory, which it locks against other
    processes. Connections are pooled: each runs one query at a time, several run at once.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        database: str = "default",
        *,
        create: bool = True,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        try:
            import chdb
        except ImportError:
            raise StoreUnavailable(f"chdb is not installed: {INSTALL_HINT}") from None
        self._chdb: Any = chdb
        self.path = os.path.abspath(os.fspath(path))
        self.database = database
        self.description = f"chdb:///{self.path.lstrip('/')} (database {database})"
        if not create and not os.path.isdir(self.path):
            raise StoreUnavailable(f"no chdb database directory at {self.path}")
        # In-process, compressing the Arrow output only costs CPU.
        merged = {**QUERY_SETTINGS, "output_format_arrow_compression_method": "none"}
        merged.update(settings or {})
        self._dsn = f"file:{self.path}?" + urllib.parse.urlencode(merged)
        self._pool: list[Any] = []
        self._all: list[Any] = []
        self._lock = threading.Lock()
        self._closed = False
        first = self._connect(use=False)
        try:
            if create:
                first.query(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}", "CSV")
            first.query(f"USE {quote_identifier(database)}", "CSV")
        except Exception as exc:
            raise StoreUnavailable(f"{self.description}: {_first_line(str(exc))}") from None
        self._pool.append(first)
        # chdb crashes at interpreter exit when connections are still open (the engine
        # is torn down under them), so a store nobody closed is closed on the way out.
        atexit.register(_close_at_exit, weakref.ref(self))

    def _connect(self, use: bool = True) -> Any:
        try:
            conn = self._chdb.connect(self._dsn)
        except Exception as exc:
            text = str(exc)
            if _locked_elsewhere(self.path) or "another server instance" in text.lower():
                raise StoreUnavailable(
                    f"{self.path} is held by another process (a running `seqtrace serve`?); "
                    "read through its query API (--api) or stop it first"
                ) from None
            if "different" in text.lower() or "another path" in text.lower():
                raise StoreUnavailable(
                    f"this process has chdb open on another directory; chdb serves one "
                    f"directory per process ({_first_line(text)})"
                ) from None
            raise StoreUnavailable(f"cannot open {self.path}: {_first_line(text)}") from None
        if use:
            conn.query(f"USE {quote_identifier(self.database)}", "CSV")
        with self._lock:
            self._all.append(conn)
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._lock:
            if self._closed:
                raise StoreUnavailable("the store is closed")
            conn = self._pool.pop() if self._pool else None
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            with self._lock:
                if self._closed:
                    with contextlib.suppress(Exception):
                        conn.close()
                else:
                    self._pool.append(conn)

    def _error(self, exc: Exception) -> StoreError:
        return StoreError(f"ClickHouse ({self.description}): {_first_line(str(exc))}")

    def query(self, text: str) -> pa.Table:
        with self._connection() as conn:
            try:
                # ArrowStream bytes, read here: chdb's own "ArrowTable" imports pandas.
                data: bytes = conn.query(text, "ArrowStream").bytes()
            except Exception as exc:
                raise self._error(exc) from None
        return _read_stream(data)

    def command(self, text: str) -> None:
        with self._connection() as conn:
            try:
                conn.query(text, "CSV")
            except Exception as exc:
                raise self._error(exc) from None

    def insert(self, table: str, columns: Sequence[str], data: bytes) -> None:
        names = ", ".join(quote_identifier(c) for c in columns)
        statement = f"INSERT INTO {quote_identifier(table)} ({names}) {_INSERT_SETTINGS}"
        with self._connection() as conn:
            try:
                with conn.send_insert(statement, "ArrowStream") as inserter:
                    inserter.append(data)
                    inserter.finish()
            except Exception as exc:
                raise self._error(exc) from None

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conns, self._all, self._pool = self._all, [], []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()


def _close_at_exit(ref: weakref.ref[ChdbTransport]) -> None:
    transport = ref()
    if transport is not None:
        transport.close()


def _locked_elsewhere(path: str) -> bool:
    """Whether another engine holds the directory: ClickHouse flock()s its ``status``
    file for as long as it runs (chdb reports only "Error initializing EmbeddedServer")."""
    status = os.path.join(path, "status")
    if not os.path.exists(status):
        return False
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return False
    try:
        with open(status, "rb") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


class HttpTransport:
    """A ClickHouse server through its HTTP interface (port 8123, or 8443 with TLS)."""

    def __init__(
        self,
        base_url: str,
        database: str = "default",
        *,
        user: str | None = None,
        password: str | None = None,
        create: bool = True,
        settings: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.database = database
        self.user = user
        self.password = password
        self.timeout = timeout
        self.settings = {**QUERY_SETTINGS, **(settings or {})}
        who = f"{user}@" if user else ""
        netloc = urllib.parse.urlsplit(self.base_url).netloc
        self.description = (
            f"{urllib.parse.urlsplit(self.base_url).scheme}://{who}{netloc}/{database}"
        )
        if create:
            self._post(
                f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}".encode(),
                {},
                database="default",
            )
        else:
            # Fails with UNKNOWN_DATABASE (or an auth error) now rather than at first read.
            self._post(b"SELECT 1", {})

    def _post(self, body: bytes, params: Mapping[str, str], database: str | None = None) -> bytes:
        query = {"database": database or self.database, **self.settings, **params}
        url = f"{self.base_url}/?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, data=body, method="POST")
        if self.user:
            request.add_header("X-ClickHouse-User", self.user)
        if self.password:
            request.add_header("X-ClickHouse-Key", self.password)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                data: bytes = response.read()
                return data
        except urllib.error.HTTPError as exc:
            detail = _first_line(exc.read().decode("utf-8", "replace"))
            if exc.code in (401, 403) or "AUTHENTICATION_FAILED" in detail:
                raise StoreUnavailable(
                    f"ClickHouse at {self.description} refused the credentials "
                    f"(user from the URL, password from ${PASSWORD_ENV}): {detail}"
                ) from None
            if exc.code in (502, 503, 504):
                raise StoreUnavailable(f"ClickHouse ({self.description}): {detail}") from None
            raise StoreError(f"ClickHouse ({self.description}): {detail}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise StoreUnavailable(
                f"cannot reach ClickHouse at {self.description}: {reason}"
            ) from None

    def query(self, text: str) -> pa.Table:
        data = self._post(text.encode("utf-8"), {"default_format": "ArrowStream"})
        try:
            return _read_stream(data)
        except (pa.ArrowInvalid, OSError):
            # An error after the first bytes were sent ends the body with its message.
            tail = data[-2000:].decode("utf-8", "replace")
            start = tail.rfind("Code:")
            message = _first_line(tail[start:] if start >= 0 else "unreadable ArrowStream")
            raise StoreError(f"ClickHouse ({self.description}): {message}") from None

    def command(self, text: str) -> None:
        self._post(text.encode("utf-8"), {})

    def insert(self, table: str, columns: Sequence[str], data: bytes) -> None:
        names = ", ".join(quote_identifier(c) for c in columns)
        statement = (
            f"INSERT INTO {quote_identifier(table)} ({names}) {_INSERT_SETTINGS} FORMAT ArrowStream"
        )
        self._post(data, {"query": statement})

    def close(self) -> None:
        return None


# --------------------------------------------------------------------------- shared


def _ids(hex_ids: Iterable[str], width: int = 16) -> list[bytes]:
    out = []
    for value in hex_ids:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            continue  # not an id: it cannot match anything
        if len(raw) == width:
            out.append(raw)
    return out


def _chunks(items: Sequence[Any], size: int = _IDS_PER_QUERY) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _clamp(value: int) -> int:
    return max(0, min(_INT64_MAX, value))


_FRAGMENT: Final = re.compile(r"@([a-z_][a-z0-9_]*)")


@cache
def _parameters(name: str) -> frozenset[str]:
    """The ``$name`` parameters of a query, with those of the queries it includes."""
    text = sql(name)
    included = [part for part in _FRAGMENT.findall(text) if part in query_names("clickhouse")]
    return parameter_names(text).union(*(_parameters(part) for part in included))


class ClickHouseDialect:
    """ClickHouse's primitives for the reader over seqtrace's own tables (``schema.sql``):
    ``spanstore/sql/clickhouse/NAME.sql``, values rendered as literals (``render``).

    ``@name`` in a file is a fragment: a fixed one of the dialect (a table name), or else
    the query ``name.sql`` rendered with the same parameters (``@trace_hours``)."""

    far_past: int = -_INT64_MAX
    far_future: int = _INT64_MAX
    ids_per_query: int = _IDS_PER_QUERY
    span_layout: SpanLayout = "protobuf"
    #: File names of this dialect's queries: ``PREFIX + name``.
    prefix: str = ""

    def __init__(self, transport: Transport, fragments: Mapping[str, str] | None = None) -> None:
        self.transport = transport
        self.fragments = dict(fragments or {})

    def has_query(self, name: str) -> bool:
        return self.prefix + name in query_names("clickhouse")

    def text(self, name: str, params: Mapping[str, object] | None = None) -> str:
        """The named query (``PREFIX + name``) as the statement sent."""
        return self._render(sql(self.prefix + name), params or {})

    def _render(self, template: str, params: Mapping[str, object]) -> str:
        fragments = dict(self.fragments)
        for name in _FRAGMENT.findall(template):
            if name not in fragments:
                fragments[name] = self._render(sql(name), params)
        return render(template, params, fragments)

    def table(self, name: str, params: Mapping[str, object]) -> pa.Table:
        return decode_strings(self.transport.query(self.text(name, params)), _BINARY_COLUMNS)

    def rows(self, name: str, params: Mapping[str, object] | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.table(name, params or {}).to_pylist()
        return rows

    def trace_ids(self, hex_ids: Iterable[str]) -> list[bytes] | list[str]:
        return _ids(hex_ids)

    def id_set(self, ids: Sequence[bytes] | Sequence[str]) -> object:
        return IdSet(tuple(ids))  # type: ignore[arg-type]

    def clamp(self, unix_nano: int) -> int:
        return max(-_INT64_MAX, min(_INT64_MAX, unix_nano))

    # The query language (#17): statements compiled by spanstore.query. Values are
    # rendered by ``literal`` (strings arrive as bytes: ``unhex('...')``, no user text).
    query_target: QueryTarget = CLICKHOUSE_QUERY_TARGET

    def run_compiled(self, statement: str, params: Mapping[str, object]) -> pa.Table:
        return decode_strings(self.transport.query(render(statement, params)), _BINARY_COLUMNS)


# --------------------------------------------------------------------------- otel_traces


def _enum_sql(column: str, names: Mapping[str, str], default: str) -> str:
    by_value: dict[str, list[str]] = {}
    for spelling, name in names.items():
        if name != default:
            by_value.setdefault(name, []).append(spelling)
    branches = ", ".join(
        f"{column} IN {literal(tuple(sorted(spellings)))}, {literal(name)}"
        for name, spellings in by_value.items()
    )
    return f"multiIf({branches}, {literal(default)})"


def _semantic_sql() -> str:
    """The frame's semantic-convention columns over SpanAttributes, preferred key first
    (as the ingest path fills them from ``spanstore.semconv``)."""
    parts = []
    for column, keys in STRING_COLUMNS.items():
        branches = ", ".join(
            f"mapContains(SpanAttributes, {literal(k)}), SpanAttributes[{literal(k)}]" for k in keys
        )
        parts.append(f"multiIf({branches}, NULL) AS {column}")
    for column, keys in INT_COLUMNS.items():
        branches = ", ".join(
            f"mapContains(SpanAttributes, {literal(k)}), "
            f"toInt64OrNull(SpanAttributes[{literal(k)}])"
            for k in keys
        )
        parts.append(f"multiIf({branches}, NULL) AS {column}")
    return ",\n    ".join(parts)


class OtelDialect(ClickHouseDialect):
    """The OpenTelemetry Collector clickhouseexporter's ``otel_traces`` table, read only:
    ``spanstore/sql/clickhouse/otel_NAME.sql``. Ids are hex text, times DateTime64 (none
    before 1970), spans one column per field, and entity keys are found among the
    attribute keys by the ingest path's rule (``$keys``)."""

    far_past = 0
    span_layout: SpanLayout = "columns"
    prefix = "otel_"

    def __init__(
        self,
        transport: Transport,
        table: str,
        columns: set[str],
        lookup_table: str | None,
        entity_keys: frozenset[str],
    ) -> None:
        has_scope_columns = {"ScopeName", "ScopeVersion"} <= columns
        status = _enum_sql("toString(StatusCode)", STATUS_SPELLINGS, "UNSET")
        kind = _enum_sql("toString(SpanKind)", KIND_SPELLINGS, "UNSPECIFIED")
        super().__init__(
            transport,
            {
                "table": quote_identifier(table),
                "lookup": quote_identifier(lookup_table or table),
                "scope_name": "ScopeName"
                if has_scope_columns
                else "SpanAttributes['otel.scope.name']",
                "scope_version": "ScopeVersion"
                if has_scope_columns
                else "SpanAttributes['otel.scope.version']",
                "kind": kind,
                "status": status,
            },
        )
        self.fragments["frame_columns"] = render(
            sql("otel_frame_columns"),
            fragments={"kind": kind, "status": status, "semantic": _semantic_sql()},
        )
        self.query_target = QueryTarget("clickhouse", "otel", quote_identifier(table))
        self.lookup_table = lookup_table
        self.configured_keys = entity_keys
        self._keys_cache: tuple[float, list[str]] | None = None
        self._keys_lock = threading.Lock()

    def entity_key_names(self) -> list[str]:
        """The attribute keys that are entity keys (cached for a minute)."""
        with self._keys_lock:
            now = time.monotonic()
            if self._keys_cache is not None and now - self._keys_cache[0] < _ENTITY_KEYS_TTL_S:
                return self._keys_cache[1]
        keys = sorted(
            key
            for key in (r["key"] for r in self.rows("attribute_keys"))
            if key not in KEY_TO_COLUMN and is_entity_key(key, self.configured_keys)
        )
        with self._keys_lock:
            self._keys_cache = (time.monotonic(), keys)
        return keys

    def table(self, name: str, params: Mapping[str, object]) -> pa.Table:
        if "keys" in _parameters(self.prefix + name):
            keys = self.entity_key_names()
            if not keys:
                return pa.table({})
            params = {**params, "keys": keys}
        if name == "spans_of_traces":
            params = self._narrowed(params)
        return super().table(name, params)

    def _narrowed(self, params: Mapping[str, object]) -> dict[str, object]:
        """``$lo``/``$hi`` (inclusive) as the half-open range the table is searched in,
        narrowed to these traces' time bounds when the exporter's lookup table has them
        all."""
        lo, hi = params["lo"], params["hi"]
        assert isinstance(lo, int) and isinstance(hi, int)
        first, last = 0, _INT64_MAX
        if self.lookup_table is not None:
            ids = params["trace_ids"]
            assert isinstance(ids, IdSet)
            row = self.rows("trace_bounds", {"trace_ids": ids})[0]
            if int(row["found"]) == len(ids.ids):
                first = _clamp(int(row["first_second"]) * 1_000_000_000)
                last = _clamp((int(row["last_second"]) + 1) * 1_000_000_000)
        return {**params, "lo": max(first, lo), "hi": min(last, _clamp(hi + 1))}

    def trace_ids(self, hex_ids: Iterable[str]) -> list[bytes] | list[str]:
        return [raw.hex() for raw in _ids(hex_ids)]

    def clamp(self, unix_nano: int) -> int:
        return _clamp(unix_nano)


# --------------------------------------------------------------------------- the store


class _ClickHouseWriter:
    """ClickHouse's side of the writer thread (``spanstore.writer``): each group is
    inserted at once (an insert is the commit) and its writers' futures resolved, so it
    waits for work without a deadline and has nothing open to commit."""

    def __init__(self, store: ClickHouseStore) -> None:
        self._store = store

    def prepare(self) -> None:
        return None

    def wait_seconds(self) -> float | None:
        return None

    def group_full(self, rows: int) -> bool:
        return rows >= _GROUP_COMMIT_SPANS

    def store(self, group: list[Queued]) -> None:
        self._store._write_group(group)

    def idle(self) -> None:
        return None

    def commit(self) -> None:
        return None

    def finish(self) -> None:
        return None


class ClickHouseStore(ClickHouseLogs, LogQueries, StoreReader):
    """Span store on a ClickHouse database: SpanWriter here, SpanReader through the
    dialect of the tables found (seqtrace's own, or the exporter's ``otel_traces``).

    Writes go to seqtrace's tables through one writer thread that inserts several
    requests' batches at once (ClickHouse wants few, large inserts); ``write`` returns
    once its spans are inserted. On a database that holds only the OpenTelemetry
    exporter's ``otel_traces`` table, the store reads that table and refuses writes.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        read_only: bool = False,
        layout: Layout = "auto",
        otel_table: str = DEFAULT_OTEL_TABLE,
        ttl_days: int = 0,
        entity_keys: Iterable[str] = (),
        max_queued_spans: int = 200_000,
        decoder_processes: int = 0,
        decoder_niceness: int = 0,
        writer_niceness: int = 0,
        policy: IngestPolicy | None = None,
        retention: RetentionPolicy | None = None,
    ) -> None:
        """``policy`` (attribute limits, redaction) is applied to every request before it
        is stored, as in the DuckDB store. Retention is ``ttl_days`` (ClickHouse drops
        whole day partitions; no background deletes); a ``retention`` policy's max age
        becomes ``ttl_days`` (rounded up to days) for tables this store creates, its
        size limit has no ClickHouse equivalent and is ignored (logged)."""
        self.transport = transport
        self.description = transport.description
        self.read_only = read_only
        if retention is not None and retention.max_age_seconds and not ttl_days:
            ttl_days = max(1, math.ceil(retention.max_age_seconds / 86_400))
        if retention is not None and retention.max_size_bytes:
            log.warning("%s: retention by size is not supported; use ttl_days", self.description)
        self.ttl_days = ttl_days
        self._decode = RequestDecoder(frozenset(entity_keys), policy)
        self._closed = False
        self._db = ClickHouseDialect(transport)
        try:
            self.layout, self._dialect = self._open_layout(
                layout, otel_table, frozenset(entity_keys)
            )
        except BaseException:
            transport.close()
            raise
        try:
            self._open_logs()
        except BaseException:
            transport.close()
            raise
        self._known_resources: set[int] = set()
        self._known_scopes: set[int] = set()
        self._waiting = WaitingSpans(max_queued_spans)
        self._writer: WriterThread | None = None
        if not read_only and self.layout == "seqtrace":
            self._decode.start_processes(decoder_processes, decoder_niceness)
            self._writer = WriterThread(
                _ClickHouseWriter(self), "seqtrace-ch-writer", writer_niceness
            )
            self._writer.start()

    # ------------------------------------------------------------------ opening

    @classmethod
    def chdb(
        cls,
        path: str | os.PathLike[str],
        *,
        database: str = "default",
        read_only: bool = False,
        settings: Mapping[str, str] | None = None,
        config: StoreConfig | None = None,
    ) -> ClickHouseStore:
        """A store on the embedded engine, in directory ``path`` (created if missing).
        ``config`` is validated first: a ``ValueError`` names the bad setting."""
        options = (config or StoreConfig()).validate().options("chdb")
        transport = ChdbTransport(path, database, create=not read_only, settings=settings)
        return cls(transport, read_only=read_only, **options)

    @classmethod
    def http(
        cls,
        base_url: str,
        *,
        database: str = "default",
        user: str | None = None,
        password: str | None = None,
        read_only: bool = False,
        settings: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        config: StoreConfig | None = None,
    ) -> ClickHouseStore:
        """A store on a ClickHouse server, e.g. ``http://clickhouse:8123`` (``config`` as
        for :meth:`chdb`)."""
        options = (config or StoreConfig()).validate().options("clickhouse")
        if password is None:
            password = os.environ.get(PASSWORD_ENV)
        transport = HttpTransport(
            base_url,
            database,
            user=user,
            password=password,
            create=not read_only,
            settings=settings,
            timeout=timeout,
        )
        return cls(transport, read_only=read_only, **options)

    def _open_layout(
        self, layout: Layout, otel_table: str, entity_keys: frozenset[str]
    ) -> tuple[Literal["seqtrace", "otel"], ClickHouseDialect]:
        lookup = f"{otel_table}_trace_id_ts"
        tables = {name for name in ("seqtrace_meta", otel_table, lookup) if self._exists(name)}
        ours = "seqtrace_meta" in tables
        if layout == "otel" or (layout == "auto" and not ours and otel_table in tables):
            if otel_table not in tables:
                raise SchemaVersionError(f"{self.description} has no table {otel_table!r}")
            columns = {r["name"] for r in self._db.rows("otel_columns", {"table": otel_table})}
            missing = {"Timestamp", "TraceId", "SpanId", "SpanAttributes", "ResourceAttributes"}
            if not missing <= columns:
                raise SchemaVersionError(
                    f"{otel_table} in {self.description} is not the OpenTelemetry exporter's "
                    f"traces table (no {', '.join(sorted(missing - columns))})"
                )
            reader = OtelDialect(
                self.transport,
                otel_table,
                columns,
                lookup if lookup in tables else None,
                entity_keys,
            )
            return "otel", reader
        if ours:
            rows = self._db.rows("schema_version")
            found = rows[0]["value"] if rows else "none"
            if found != str(SCHEMA_VERSION):
                raise SchemaVersionError(
                    f"{self.description} has seqtrace schema version {found}; this seqtrace "
                    f"reads version {SCHEMA_VERSION}. Use the seqtrace that wrote it, or "
                    "another database"
                )
            return "seqtrace", self._db
        if self.read_only:
            raise SchemaVersionError(
                f"{self.description} holds no seqtrace tables and no {otel_table!r} table"
            )
        self._create_schema()
        return "seqtrace", self._db

    def _schema_statements(self) -> list[str]:
        ttl = ttl_day = ttl_logs = ""
        if self.ttl_days > 0:
            days = f"toIntervalDay({int(self.ttl_days)})"
            ttl = f"TTL toDateTime(intDiv(start_unix_nano, 1000000000), 'UTC') + {days}"
            ttl_day = f"TTL day + {days}"
            ttl_logs = f"TTL toDateTime(intDiv(time_unix_nano, 1000000000), 'UTC') + {days}"
        fragments = {"ttl": ttl, "ttl_day": ttl_day, "ttl_logs": ttl_logs}
        return statements(render(sql("schema"), fragments=fragments))

    def _open_logs(self) -> None:
        """Whether log records can be read here: seqtrace's ``seqtrace_logs`` (created by
        a writable open of a database made before logs were kept), or the exporter's
        ``otel_logs`` beside its ``otel_traces`` (absent: no records, not an error)."""
        if self.layout == "otel":
            self._has_logs = self._exists(OTEL_LOGS_TABLE)
            if self._has_logs:
                columns = {
                    r["name"] for r in self._db.rows("otel_columns", {"table": OTEL_LOGS_TABLE})
                }
                dialect = self._dialect
                assert isinstance(dialect, ClickHouseDialect)
                dialect.fragments["logs_table"] = quote_identifier(OTEL_LOGS_TABLE)
                dialect.fragments["event_name"] = "EventName" if "EventName" in columns else "''"
            return
        if not self.read_only and not self._exists(LOGS_TABLE):
            for statement in self._schema_statements():
                if LOGS_TABLE in statement:
                    self.transport.command(statement)
        self._has_logs = self._exists(LOGS_TABLE)

    def _exists(self, table: str) -> bool:
        text = render(sql("table_exists"), fragments={"name": quote_identifier(table)})
        result = self.transport.query(text)
        return bool(result.num_rows and result.column(0)[0].as_py())

    def _create_schema(self) -> None:
        for statement in self._schema_statements():
            self.transport.command(statement)
        self.transport.command(
            render(
                "INSERT INTO seqtrace_meta (key, value) VALUES ('schema_version', $version)",
                {"version": str(SCHEMA_VERSION)},
            )
        )

    # ------------------------------------------------------------------ writes

    def write(
        self, request: ExportTraceServiceRequest | bytes, timeout: float | None = None
    ) -> WriteResult:
        """Store the request's valid spans; returns once they are inserted.

        ``request`` may be the serialized protobuf (parsed in a decoder process when the
        store has them; :class:`~spanstore.base.InvalidRequest` if malformed)."""
        if self.layout == "otel":
            raise StoreError(
                f"{self.description} is read through the OpenTelemetry exporter's "
                f"table, which seqtrace does not write; send spans to that collector, or "
                "give seqtrace a database of its own"
            )
        if self.read_only or self._writer is None:
            raise StoreError("this store was opened read-only")
        if self._closed:
            raise StoreUnavailable("the store is shutting down")
        batch = self._decode.prepare(request, timeout)
        if batch.size == 0:
            return batch.result(0)
        self._waiting.count(batch.counts)
        self._waiting.admit(batch.size)
        done: Future[int] = Future()
        self._writer.put(Queued(batch, done=done))
        try:
            duplicates = done.result(timeout=timeout)
        except FutureTimeout:
            # The batch stays queued and will be inserted; the client's retry is then a
            # duplicate and is dropped, so nothing is lost or doubled.
            raise StoreUnavailable("the write did not commit in time; retry") from None
        return batch.result(batch.size - duplicates, duplicates)

    def _write_group(self, group: list[Queued]) -> None:
        """The writer's step: a group's log batches in one insert, then its span batches
        in one (each retried on its own when a group fails)."""
        logs = [item for item in group if isinstance(item.batch, LogBatch)]
        spans = [item for item in group if not isinstance(item.batch, LogBatch)]
        for items, insert in ((logs, self._insert_logs), (spans, self._insert)):
            if items:
                each_on_its_own(items, self._inserted(insert), self._write_failed)

    def _inserted(
        self, insert: Callable[[list[Any]], list[int]]
    ) -> Callable[[list[Queued]], list[int]]:
        """``insert`` over queued items: their queue room is given back once it returned."""

        def write(items: list[Queued]) -> list[int]:
            try:
                duplicates = insert([item.batch for item in items])
            except Exception:
                self._known_resources.clear()
                self._known_scopes.clear()
                raise
            for item in items:
                self._release(item.rows)
            return duplicates

        return write

    def _write_failed(self, item: Queued, exc: Exception) -> None:
        self._release(item.rows)
        error = exc if isinstance(exc, StoreUnavailable) else None
        assert item.done is not None
        item.done.set_exception(error or StoreUnavailable(f"write failed: {_first_line(str(exc))}"))
        what = "log records" if isinstance(item.batch, LogBatch) else "spans"
        log.warning("write of %d %s failed: %s", item.rows, what, exc)

    def _release(self, size: int) -> None:
        self._waiting.release(size)

    def _stored_keys(self, batches: Sequence[PreparedBatch]) -> set[bytes]:
        """trace_id + span_id of the batches' spans that are stored already."""
        trace_ids = sorted({t for b in batches for t in b.spans.column("trace_id").to_pylist()})
        lo = min(b.min_start for b in batches)
        hi = max(b.max_start for b in batches)
        found: set[bytes] = set()
        for chunk in _chunks(trace_ids):
            rows = self._db.rows(
                "find_duplicates",
                {"min_start": lo, "max_start": hi, "trace_ids": IdSet(tuple(chunk))},
            )
            found.update(r["trace_id"] + r["span_id"] for r in rows)
        return found

    def _insert(self, batches: Sequence[PreparedBatch]) -> list[int]:
        """Insert a group of batches; returns how many spans of each were duplicates."""
        stored = self._stored_keys(batches)
        seen: set[bytes] = set()
        duplicates: list[int] = []
        spans: list[pa.Table] = []
        entities: list[pa.Table] = []
        links: list[pa.Table] = []
        kept: list[PreparedBatch] = []
        for batch in batches:
            dup_keys = set()
            keep = []
            for key in batch.span_keys:
                dup = key in stored or key in seen
                if dup:
                    dup_keys.add(key)
                seen.add(key)
                keep.append(not dup)
            duplicates.append(len(dup_keys))
            if len(dup_keys) == batch.size:
                continue
            if dup_keys:
                spans.append(batch.spans.filter(pa.array(keep)))
                entities.append(_without(batch.entities, dup_keys))
                links.append(_without(batch.links, dup_keys))
            else:
                spans.append(batch.spans)
                entities.append(batch.entities)
                links.append(batch.links)
            kept.append(batch)
        if not spans:
            return duplicates
        resources, scopes = self._new_references(kept)
        self._insert_references(resources, scopes)
        # Spans last: a failure before them leaves no span behind, so the client's retry
        # is not taken for a duplicate and writes everything again (the extra entity and
        # link rows are collapsed by ReplacingMergeTree and counted once by the reads).
        for name, tables in (("seqtrace_links", links), ("seqtrace_entities", entities)):
            table = pa.concat_tables(tables)
            if table.num_rows:
                self._insert_table(name, table)
        self._insert_table("seqtrace_spans", pa.concat_tables(spans))
        self._known_resources.update(resources)
        self._known_scopes.update(scopes)
        return duplicates

    def _new_references(
        self, batches: Sequence[PreparedBatch | LogBatch]
    ) -> tuple[dict[int, tuple[str, str, bytes]], dict[int, tuple[str, str, str, bytes]]]:
        """The batches' resources and scopes not known to be stored."""
        resources: dict[int, tuple[str, str, bytes]] = {}
        scopes: dict[int, tuple[str, str, str, bytes]] = {}
        for batch in batches:
            for rid, resource in batch.resources.items():
                if rid not in self._known_resources:
                    resources[rid] = resource
            for sid, scope in batch.scopes.items():
                if sid not in self._known_scopes:
                    scopes[sid] = scope
        return resources, scopes

    def _insert_references(
        self,
        resources: Mapping[int, tuple[str, str, bytes]],
        scopes: Mapping[int, tuple[str, str, str, bytes]],
    ) -> None:
        """Insert resources and scopes (by id, in id order), before what refers to them."""
        resource_table, scope_table = reference_tables(
            dict(sorted(resources.items())), dict(sorted(scopes.items()))
        )
        for name, table in (
            ("seqtrace_resources", resource_table),
            ("seqtrace_scopes", scope_table),
        ):
            if table.num_rows:
                self._insert_table(name, table)

    def _insert_table(self, name: str, table: pa.Table) -> None:
        self.transport.insert(name, table.column_names, arrow_stream(table))

    @property
    def queued_spans(self) -> int:
        return self._waiting.spans

    @property
    def accepts_writes(self) -> bool:
        return not self.read_only and self.layout == "seqtrace"

    def ingest_stats(self) -> dict[str, Any]:
        """The write side's state, in the DuckDB store's shape (no byte budget here)."""
        counts, queued, refused = self._waiting.snapshot()
        return {
            "queue": {
                "spans": queued,
                "max_spans": self._waiting.max_spans,
                "refused_writes": refused,
            },
            "policy": self._decode.policy_stats(counts),
            "retention": {"ttl_days": self.ttl_days} if self.ttl_days else None,
            "database": {
                "writable": not self.read_only and self.layout == "seqtrace",
                "error": None,
                "reopened": 0,
                "store": self.description,
                "layout": self.layout,
            },
        }

    def close(self, timeout: float = 30.0) -> None:
        """Insert what is queued, then let go of the database."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._writer.stop(timeout)
        self._decode.close()
        self.transport.close()

    def __enter__(self) -> ClickHouseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _without(table: pa.Table, span_keys: set[bytes]) -> pa.Table:
    """Rows of an entity or link table whose span is not among ``span_keys``."""
    if not table.num_rows:
        return table
    keep = [
        t + s not in span_keys
        for t, s in zip(
            table.column("trace_id").to_pylist(), table.column("span_id").to_pylist(), strict=True
        )
    ]
    return table.filter(pa.array(keep))


# --------------------------------------------------------------------------- otel rows


def _as_string(value: AttrValue) -> str:
    """An attribute value as the collector's ``pcommon.Value.AsString()`` writes it."""
    import base64
    import json

    def plain(v: AttrValue) -> object:
        if isinstance(v, bytes):
            return base64.b64encode(v).decode("ascii")
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return json.dumps(plain(value), separators=(",", ":"), ensure_ascii=False)


def _string_map(attributes: Mapping[str, AttrValue]) -> list[tuple[str, str]]:
    return [(k, _as_string(v)) for k, v in attributes.items()]


_OTEL_ROW_SCHEMA: Final = pa.schema(
    [
        ("Timestamp", pa.timestamp("ns")),
        ("TraceId", pa.string()),
        ("SpanId", pa.string()),
        ("ParentSpanId", pa.string()),
        ("TraceState", pa.string()),
        ("SpanName", pa.string()),
        ("SpanKind", pa.string()),
        ("ServiceName", pa.string()),
        ("ResourceAttributes", pa.map_(pa.string(), pa.string())),
        ("ScopeName", pa.string()),
        ("ScopeVersion", pa.string()),
        ("SpanAttributes", pa.map_(pa.string(), pa.string())),
        ("Duration", pa.uint64()),
        ("StatusCode", pa.string()),
        ("StatusMessage", pa.string()),
        ("Events.Timestamp", pa.list_(pa.timestamp("ns"))),
        ("Events.Name", pa.list_(pa.string())),
        ("Events.Attributes", pa.list_(pa.map_(pa.string(), pa.string()))),
        ("Links.TraceId", pa.list_(pa.string())),
        ("Links.SpanId", pa.list_(pa.string())),
        ("Links.TraceState", pa.list_(pa.string())),
        ("Links.Attributes", pa.list_(pa.map_(pa.string(), pa.string()))),
    ]
)


def otel_rows(
    spans: Iterable[Span],
    *,
    enum_style: Literal["proto", "pdata"] = "proto",
    scope_columns: bool = True,
) -> pa.Table:
    """Spans as rows of the clickhouseexporter's ``otel_traces`` table, the way the
    exporter writes them (attribute values as strings, hex ids, enum names). For tests,
    benchmarks and migrations; seqtrace itself never writes that table.

    ``enum_style`` "proto" writes ``SPAN_KIND_SERVER``/``STATUS_CODE_ERROR`` (the
    exporter's ``traceutil``), "pdata" ``Server``/``Error``. Without ``scope_columns``
    (older exporter versions) the scope goes into the span attributes
    ``otel.scope.name``/``otel.scope.version`` and the Scope columns are left out.
    """
    cols: dict[str, list[object]] = {name: [] for name in _OTEL_ROW_SCHEMA.names}

    def enum(prefix: str, name: str) -> str:
        return f"{prefix}{name}" if enum_style == "proto" else name.capitalize()

    for span in spans:
        attributes = _string_map(span.attributes)
        if not scope_columns:
            if span.scope_name:
                attributes.append(("otel.scope.name", span.scope_name))
            if span.scope_version:
                attributes.append(("otel.scope.version", span.scope_version))
        cols["Timestamp"].append(span.start_unix_nano)
        cols["TraceId"].append(span.trace_id)
        cols["SpanId"].append(span.span_id)
        cols["ParentSpanId"].append(span.parent_span_id or "")
        cols["TraceState"].append(span.trace_state)
        cols["SpanName"].append(span.name)
        cols["SpanKind"].append(enum("SPAN_KIND_", span.kind))
        cols["ServiceName"].append(
            str(span.resource_attributes.get("service.name", ""))
            if span.resource_attributes
            else ""
        )
        cols["ResourceAttributes"].append(_string_map(span.resource_attributes))
        cols["ScopeName"].append(span.scope_name)
        cols["ScopeVersion"].append(span.scope_version)
        cols["SpanAttributes"].append(attributes)
        cols["Duration"].append(max(0, span.end_unix_nano - span.start_unix_nano))
        cols["StatusCode"].append(enum("STATUS_CODE_", span.status_code))
        cols["StatusMessage"].append(span.status_message)
        cols["Events.Timestamp"].append([e.time_unix_nano for e in span.events])
        cols["Events.Name"].append([e.name for e in span.events])
        cols["Events.Attributes"].append([_string_map(e.attributes) for e in span.events])
        cols["Links.TraceId"].append([link.trace_id for link in span.links])
        cols["Links.SpanId"].append([link.span_id for link in span.links])
        cols["Links.TraceState"].append([link.trace_state for link in span.links])
        cols["Links.Attributes"].append([_string_map(link.attributes) for link in span.links])
    table = pa.Table.from_pydict(cols, schema=_OTEL_ROW_SCHEMA)
    if not scope_columns:
        table = table.drop_columns(["ScopeName", "ScopeVersion"])
    return table
