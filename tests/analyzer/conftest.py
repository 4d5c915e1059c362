"""Fixtures the analyzer's store-backed tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spanstore.duckdb_store import DuckDBStore


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    """One real DuckDB store per test module, for hypothesis examples that each write
    their spans in a time window of their own."""
    duck = DuckDBStore(tmp_path_factory.mktemp("store") / "random.duckdb")
    yield duck
    duck.close()


@pytest.fixture
def fresh_store(tmp_path: Path) -> Iterator[DuckDBStore]:
    """An empty real DuckDB store for one test."""
    duck = DuckDBStore(tmp_path / "fresh.duckdb")
    yield duck
    duck.close()
