"""``stats`` is answered from the last answer while the store's data version says nothing
was written or deleted, and never hides an acknowledged span (issue 20: the overview asks
for it every few seconds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_store import rich_request

from spanstore.duckdb_store import DuckDBStore


def test_stats_are_kept_until_something_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DuckDBStore(tmp_path / "s.duckdb") as store:
        store.write(rich_request())
        first = store.stats()
        assert (first.spans, first.traces, first.services) == (3, 1, ["checkout"])
        queries: list[str] = []
        run = store._table

        def counted(name: str, params: Any = None) -> Any:
            queries.append(name)
            return run(name, params)

        monkeypatch.setattr(store, "_table", counted)
        again = store.stats()
        assert again == first and queries == []
        again.services.append("mutated by a caller")
        assert store.stats().services == ["checkout"]

        # An acknowledged write is in the very next answer (read-your-writes).
        store.write(rich_request(b"\x07" * 16))
        after = store.stats()
        assert (after.spans, after.traces) == (6, 2)
        assert "stats" in queries
        queries.clear()
        assert store.stats() == after and queries == []

        # A change not tied to hours (retention deleting spans) is seen too.
        store._changes.mark_all()
        assert store.stats() == after and queries == ["stats", "services"]
