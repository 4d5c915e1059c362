"""Store URLs: which backend and where, in one string (``--store``, env ``SEQTRACE_STORE``).

===========================================  =============================================
``./seqtrace.duckdb`` (a plain path)          DuckDB file
``duckdb:///abs/path.duckdb``                 DuckDB file (``duckdb://rel.duckdb``: relative)
``chdb:///abs/dir`` (``clickhouse+chdb://``)  ClickHouse embedded in this process (chdb),
                                              on a directory
``clickhouse://user@host:8123/db``            ClickHouse server over HTTP
``clickhouses://user@host:8443/db``           ... over HTTPS
===========================================  =============================================

ClickHouse URLs take these query parameters; any other ``name=value`` is passed to
ClickHouse as a query setting (``?async_insert=1&wait_for_async_insert=1``):

* ``database=NAME`` (chdb; for servers the path names it) — default ``default``;
* ``table=NAME`` — the OpenTelemetry exporter's traces table, default ``otel_traces``;
* ``layout=auto|seqtrace|otel`` — ``auto`` reads ``otel_traces`` when the database has it
  and no seqtrace tables, else uses (and creates) seqtrace's tables;
* ``ttl_days=N`` — retention for tables seqtrace creates (0: keep forever);
* ``timeout=SECONDS`` — HTTP timeout per request.

The password is read from ``SEQTRACE_CLICKHOUSE_PASSWORD`` (a password in the URL is
accepted too, but shows up in process lists and shell history).
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Literal, TypeAlias

from spanstore.config import ClickHouseConfig, StoreConfig

if TYPE_CHECKING:
    from spanstore.clickhouse_store import ClickHouseStore
    from spanstore.duckdb_store import DuckDBStore

__all__ = [
    "SpanStore",
    "StoreURL",
    "StoreURLError",
    "open_store_url",
    "parse_store_url",
]

_CHDB_SCHEMES: Final = ("chdb", "clickhouse+chdb")
_HTTP_SCHEMES: Final = {"clickhouse": ("http", 8123), "clickhouses": ("https", 8443)}
_OPTIONS: Final = frozenset({"database", "table", "layout", "ttl_days", "timeout", "secure"})


class StoreURLError(ValueError):
    """The store URL cannot be understood; the message says why, in one line."""


#: Both halves of the storage interface, what ``open_store_url`` returns: a store that
#: reads through the one reader (``spanstore.SpanReader``) and writes
#: (``SpanWriter``), with ``accepts_writes`` (whether ``write`` can store spans there: not
#: read-only, a layout seqtrace writes) and ``ingest_stats`` (the write side's state).
SpanStore: TypeAlias = "DuckDBStore | ClickHouseStore"


@dataclass(frozen=True, slots=True)
class StoreURL:
    backend: Literal["duckdb", "chdb", "clickhouse"]
    path: str = ""  # duckdb file / chdb directory
    base_url: str = ""  # clickhouse: scheme://host:port
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str = "default"
    table: str = "otel_traces"
    layout: Literal["auto", "seqtrace", "otel"] = "auto"
    ttl_days: int = 0
    timeout: float = 60.0
    settings: dict[str, str] = field(default_factory=dict)

    def redacted(self) -> str:
        """The URL without its password, for messages."""
        if self.backend == "duckdb":
            return self.path
        if self.backend == "chdb":
            return f"chdb://{self.path}?database={self.database}"
        who = f"{self.user}@" if self.user else ""
        scheme, _, rest = self.base_url.partition("://")
        return (
            f"{'clickhouses' if scheme == 'https' else 'clickhouse'}://{who}{rest}/{self.database}"
        )


def _options(query: str) -> tuple[dict[str, str], dict[str, str]]:
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    options = {k: v for k, v in pairs if k in _OPTIONS}
    settings = {k: v for k, v in pairs if k not in _OPTIONS}
    return options, settings


def parse_store_url(text: str) -> StoreURL:
    """Parse a store URL (see the module doc); raises :class:`StoreURLError`."""
    text = text.strip()
    if not text:
        raise StoreURLError("empty store URL")
    scheme, sep, rest = text.partition("://")
    if not sep:
        if text.startswith("duckdb:"):
            return StoreURL("duckdb", path=text[len("duckdb:") :])
        return StoreURL("duckdb", path=text)
    scheme = scheme.lower()
    if scheme == "duckdb":
        if not rest:
            raise StoreURLError(f"{text!r}: no file after duckdb://")
        return StoreURL("duckdb", path=rest)
    options: dict[str, str]
    if scheme in _CHDB_SCHEMES:
        path, _, query = rest.partition("?")
        if not path:
            raise StoreURLError(f"{text!r}: no directory after {scheme}://")
        options, settings = _options(query)
        return _with_options(StoreURL("chdb", path=path, settings=settings), options, text)
    if scheme in _HTTP_SCHEMES:
        parts = urllib.parse.urlsplit(text)
        if not parts.hostname:
            raise StoreURLError(f"{text!r}: no host (clickhouse://user@host:8123/database)")
        http, default_port = _HTTP_SCHEMES[scheme]
        try:
            port = parts.port or default_port
        except ValueError:
            raise StoreURLError(f"{text!r}: the port is not a number") from None
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        options, settings = _options(parts.query)
        if options.get("secure", "").lower() in ("1", "true"):
            http = "https"
        database = urllib.parse.unquote(parts.path.strip("/")) or options.get("database", "")
        options["database"] = database or "default"
        if "/" in database:
            raise StoreURLError(f"{text!r}: the path must be one database name")
        url = StoreURL(
            "clickhouse",
            base_url=f"{http}://{host}:{port}",
            user=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
            database=database,
            settings=settings,
        )
        return _with_options(url, options, text)
    raise StoreURLError(
        f"{text!r}: unknown store scheme {scheme!r}; use a file path, duckdb://, chdb:// "
        "or clickhouse://"
    )


def _with_options(url: StoreURL, options: dict[str, str], text: str) -> StoreURL:
    layout = options.get("layout", "auto")
    if layout not in ("auto", "seqtrace", "otel"):
        raise StoreURLError(f"{text!r}: layout must be auto, seqtrace or otel, not {layout!r}")
    try:
        ttl_days = int(options.get("ttl_days", "0"))
        timeout = float(options.get("timeout", "60"))
    except ValueError:
        raise StoreURLError(f"{text!r}: ttl_days and timeout must be numbers") from None
    if ttl_days < 0 or timeout <= 0:
        raise StoreURLError(f"{text!r}: ttl_days must be >= 0 and timeout > 0")
    return StoreURL(
        url.backend,
        path=url.path,
        base_url=url.base_url,
        user=url.user,
        password=url.password,
        database=options.get("database", url.database) or "default",
        table=options.get("table", "otel_traces") or "otel_traces",
        layout=layout,  # type: ignore[arg-type]
        ttl_days=ttl_days,
        timeout=timeout,
        settings=url.settings,
    )


def open_store_url(
    url: str | StoreURL, *, read_only: bool = False, config: StoreConfig | None = None
) -> SpanStore:
    """Open the store a URL names, with ``config`` (validated) for its write path (the
    DuckDB settings for a DuckDB file only).

    Raises :class:`StoreURLError` for a bad URL and :class:`~spanstore.base.StoreError`
    (``StoreUnavailable``, ``SchemaVersionError``) when the store cannot be opened."""
    parsed = url if isinstance(url, StoreURL) else parse_store_url(url)
    config = config or StoreConfig()
    if parsed.backend == "duckdb":
        from spanstore.duckdb_store import DuckDBStore

        options = config.validate().options(parsed.backend)
        return DuckDBStore(parsed.path, read_only=read_only, **options)
    from spanstore.clickhouse_store import PASSWORD_ENV, ClickHouseStore

    # The URL says which tables and for how long; the rest of the config what to ingest.
    tables = ClickHouseConfig(parsed.layout, parsed.table, parsed.ttl_days)
    config = dataclasses.replace(config, clickhouse=tables)
    if parsed.backend == "chdb":
        return ClickHouseStore.chdb(
            parsed.path,
            database=parsed.database,
            read_only=read_only,
            settings=parsed.settings,
            config=config,
        )
    password = parsed.password if parsed.password is not None else os.environ.get(PASSWORD_ENV)
    return ClickHouseStore.http(
        parsed.base_url,
        database=parsed.database,
        user=parsed.user,
        password=password,
        read_only=read_only,
        settings=parsed.settings,
        timeout=parsed.timeout,
        config=config,
    )
