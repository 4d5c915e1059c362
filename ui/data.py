"""Where the UI gets its data: one :class:`analyzer.source.Source`, and cached reads.

The CLI starts the UI with environment variables (SPEC "Data location"):

* ``SEQTRACE_API`` (and ``SEQTRACE_READ_TOKEN``): ask a running ``seqtrace serve`` through
  its query API (:class:`~analyzer.source.HttpSource`);
* else ``SEQTRACE_STORE``: open that store URL (``chdb://``, ``clickhouse://``,
  ``duckdb://``; e.g. an OpenTelemetry Collector's ``otel_traces`` database) **read-only**
  and compute in this process;
* else ``SEQTRACE_DB``: open that DuckDB file **read-only** and compute in this process
  (:func:`~analyzer.source.open_database`, a :class:`~analyzer.source.LocalSource`).

The UI never opens a database for writing. Each read below is cached for a few seconds
(``st.cache_data``), keyed by the source and the parameters, so reruns caused by widgets
do not repeat queries, while a live view still sees new spans.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Final

import streamlit as st

from analyzer.source import HttpSource, Source, SourceError, open_database

__all__ = [
    "TTL_S",
    "SourceConfig",
    "SourceUnavailable",
    "get_source",
    "source_config",
]

#: Seconds a cached answer stays fresh; below the live view's refresh interval.
TTL_S: Final = 3


class SourceUnavailable(Exception):
    """The UI has no way to the data (no env var, missing file, unreachable API)."""


@dataclass(frozen=True)
class SourceConfig:
    kind: str  # "api" | "store" | "db" | "none"
    target: str  # URL or absolute path
    token: str | None = None

    @property
    def key(self) -> str:
        """What cached reads are keyed by (never the token or a password itself)."""
        return f"{self.kind}:{_without_password(self.target)}:{'t' if self.token else '-'}"

    def describe(self) -> str:
        if self.kind == "api":
            return f"query API {self.target}"
        if self.kind in ("store", "db"):
            return f"{_without_password(self.target)} (read-only)"
        return "no data source"


def _without_password(target: str) -> str:
    """``clickhouse://user:secret@host`` -> ``clickhouse://user@host`` (for display)."""
    return re.sub(r"^([a-z+]+://[^/@:]*):[^/@]*@", r"\1@", target)


def source_config() -> SourceConfig:
    api = os.environ.get("SEQTRACE_API", "").strip()
    if api:
        return SourceConfig("api", api.rstrip("/"), os.environ.get("SEQTRACE_READ_TOKEN") or None)
    store = os.environ.get("SEQTRACE_STORE", "").strip()
    if store:
        return SourceConfig("store", store)
    db = os.environ.get("SEQTRACE_DB", "").strip()
    if db:
        return SourceConfig("db", os.path.abspath(db))
    return SourceConfig("none", "")


@st.cache_resource(show_spinner=False)
def _open_source(kind: str, target: str, token: str | None) -> Source:
    if kind == "api":
        return HttpSource(target, token)
    return open_database(target)  # a store URL or a file, read-only; the UI never writes


def get_source() -> Source:
    config = source_config()
    if config.kind == "none":
        raise SourceUnavailable(
            "The UI was started without a data source. Start it with `seqtrace up`, "
            "`seqtrace ui --api URL`, `seqtrace ui --store URL` or `seqtrace ui --db PATH` "
            "(env SEQTRACE_API, SEQTRACE_STORE or SEQTRACE_DB)."
        )
    try:
        return _open_source(config.kind, config.target, config.token)
    except SourceError as exc:
        raise SourceUnavailable(str(exc)) from None


# --------------------------------------------------------------------------- cached reads
# Every function takes ``src`` (SourceConfig.key) first so that two sources never share a
# cache entry. Errors are not cached (Streamlit re-raises and forgets them).


def _listed(answer: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The list of records under ``name`` in an answer (none when it has no such field)."""
    records: list[dict[str, Any]] = answer.get(name, [])
    return records


@st.cache_data(ttl=TTL_S, show_spinner=False)
def stats(src: str) -> dict[str, Any]:
    return get_source().stats()


@st.cache_data(ttl=TTL_S, show_spinner=False)
def entity_keys(src: str) -> list[dict[str, Any]]:
    return _listed(get_source().entities(limit=500), "keys")


@st.cache_data(ttl=TTL_S, show_spinner=False)
def entity_values(
    src: str,
    key: str,
    prefix: str | None,
    start: int | None,
    end: int | None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    return _listed(
        get_source().entities(key=key, limit=limit, prefix=prefix or None, start=start, end=end),
        "values",
    )


@st.cache_data(ttl=TTL_S, show_spinner=False)
def diagram(
    src: str,
    entity: str | None,
    trace_id: str | None,
    start: int | None,
    end: int | None,
    show_internal: bool,
) -> dict[str, Any]:
    result = get_source().diagram(
        entity=entity, trace_id=trace_id, start=start, end=end, show_internal=show_internal
    )
    assert isinstance(result, dict)
    return result


@st.cache_data(ttl=60, show_spinner=False)
def diagram_text(
    src: str,
    fmt: str,
    entity: str | None,
    trace_id: str | None,
    start: int | None,
    end: int | None,
    show_internal: bool,
) -> str:
    result = get_source().diagram(
        entity=entity,
        trace_id=trace_id,
        start=start,
        end=end,
        show_internal=show_internal,
        fmt=fmt,
    )
    return result if isinstance(result, str) else str(result)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def trace(src: str, trace_id: str) -> dict[str, Any]:
    return get_source().trace(trace_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def trace_otlp(src: str, trace_id: str) -> dict[str, Any]:
    return get_source().trace_otlp(trace_id)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def failures(
    src: str, start: int | None, end: int | None, service: str | None, limit: int | None = None
) -> dict[str, Any]:
    return get_source().failures(start=start, end=end, service=service, limit=limit)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def slo(src: str, spec_text: str, at: int | None) -> dict[str, Any]:
    return get_source().slo(spec_text, at=at, source_name="ui")


@st.cache_data(ttl=TTL_S, show_spinner=False)
def throughput(src: str, start: int | None, end: int | None, buckets: int) -> dict[str, Any]:
    return get_source().throughput(start=start, end=end, buckets=buckets)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def recent_traces(src: str, limit: int) -> list[dict[str, Any]]:
    return _listed(get_source().recent_traces(limit), "traces")


@st.cache_data(ttl=TTL_S, show_spinner=False)
def service_map(src: str, start: int | None, end: int | None) -> dict[str, Any]:
    return get_source().service_map(start=start, end=end)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def find(src: str, query: str, start: int | None, end: int | None, limit: int) -> dict[str, Any]:
    return get_source().find(query, start=start, end=end, limit=limit)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def compare(
    src: str, query: str, baseline: str | None, start: int | None, end: int | None
) -> dict[str, Any]:
    return get_source().compare(query, baseline=baseline, start=start, end=end)


@st.cache_data(ttl=TTL_S, show_spinner=False)
def logs(
    src: str,
    entity: str | None,
    trace_id: str | None,
    start: int | None,
    end: int | None,
    service: str | None = None,
    min_severity: int = 0,
    untraced: bool = False,
) -> list[dict[str, Any]]:
    """Log records (#18): an entity's or a trace's, or a search by service and severity."""
    return _listed(
        get_source().logs(
            entity=entity,
            trace_id=trace_id,
            start=start,
            end=end,
            service=service,
            min_severity=min_severity,
            untraced=untraced,
        ),
        "logs",
    )


@st.cache_data(ttl=TTL_S, show_spinner=False)
def flow(
    src: str,
    root: str | None,
    key: str | None,
    start: int | None,
    end: int | None,
    trace_id: str | None = None,
    query: str | None = None,
) -> dict[str, Any]:
    """SPEC's ``flow --json`` body for a root operation, an entity key, one trace, or the
    traces a query selects."""
    result = get_source().flow(
        root=root, key=key, query=query, start=start, end=end, trace_id=trace_id
    )
    assert isinstance(result, dict)
    return result


@st.cache_data(ttl=TTL_S, show_spinner=False)
def flow_roots(src: str, start: int | None, end: int | None) -> list[dict[str, Any]]:
    return _listed(get_source().flow_roots(start=start, end=end), "roots")
