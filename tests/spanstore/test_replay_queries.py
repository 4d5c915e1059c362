"""The replay reader queries (replay_range_traces, replay_trace_extents, replay_requests)
answer the same on DuckDB and on ClickHouse (chdb), and hold every stored span."""

from __future__ import annotations

import uuid
from pathlib import Path

from test_clickhouse import engine

from collector.files import read_trace_file
from spanstore.duckdb_store import DuckDBStore
from spanstore.urls import open_store_url
from tests.conftest import sample_files

HOUR = 3_600_000_000_000


def _spans(requests: list) -> list[tuple[bytes, bytes, bytes, str]]:  # type: ignore[type-arg]
    return sorted(
        (s.trace_id, s.span_id, s.SerializeToString(deterministic=True), s.name)
        for q in requests
        for rs in q.resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    )


def test_duckdb_and_clickhouse_replay_the_same_spans(tmp_path: Path) -> None:
    duck = DuckDBStore(tmp_path / "shop.duckdb")
    # chdb serves one directory per process: the suite's shared engine, a database of its own
    database = f"replay_{uuid.uuid4().hex[:12]}"
    chdb = open_store_url(f"chdb://{engine().dir}?database={database}")
    originals = []
    for file in sample_files():
        for request in read_trace_file(file):
            duck.write(request)
            chdb.write(request)
            originals.append(request)
    answers = []
    for store in (duck, chdb):
        stats = store.stats()
        assert stats.first_unix_nano is not None and stats.last_unix_nano is not None
        traces = store.replay_range_traces(stats.first_unix_nano, stats.last_unix_nano + 1, HOUR)
        assert len(traces) == 47 and sum(t[3] for t in traces) == 500
        assert [t[1] for t in traces] == sorted(t[1] for t in traces)  # oldest first
        ids = [t[0] for t in traces]
        extents = store.replay_trace_extents(ids)
        assert extents == traces
        lo, hi = min(t[1] for t in traces), max(t[2] for t in traces)
        requests = store.replay_requests(ids, lo, hi, 64)
        assert all(
            sum(len(ss.spans) for rs in q.resource_spans for ss in rs.scope_spans) <= 64
            for q in requests
        )
        answers.append((traces, _spans(requests)))
    duck.close()
    chdb.close()
    assert answers[0] == answers[1]
    assert answers[0][1] == _spans(originals)  # every span, byte for byte as sent
