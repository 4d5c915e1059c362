"""`--store URL` and `--db PATH`: which store a command opens (issue #7).

Flags beat the environment (``SEQTRACE_STORE``, ``SEQTRACE_DB``); ``--store`` and ``--db``
together are a usage error, as are both variables together. ``--api`` (``SEQTRACE_API``)
beats both for the commands that take it: each command checks that first. A store URL is
``spanstore.urls``'s: a DuckDB file path, ``duckdb://PATH``, ``chdb://DIR?database=NAME``
or ``clickhouse://user@host:8123/database`` (password from env
``SEQTRACE_CLICKHOUSE_PASSWORD``).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from seqtrace.errors import UsageError

if TYPE_CHECKING:
    from spanstore.urls import StoreURL

__all__ = [
    "DEFAULT_API",
    "DEFAULT_DB",
    "STORE_ENV",
    "StoreChoice",
    "api_answers",
    "chosen_store",
    "parsed_url",
]

STORE_ENV = "SEQTRACE_STORE"
DB_ENV = "SEQTRACE_DB"
#: Where the data is when nothing is named (SPEC "Data location").
DEFAULT_DB = "seqtrace.duckdb"
DEFAULT_API = "http://127.0.0.1:4319"


def api_answers(url: str, token: str | None) -> bool:
    """Whether a seqtrace query API answers its health check at ``url`` (1.5 s)."""
    from analyzer.source import HttpSource, SourceError

    try:
        HttpSource(url, token, timeout=1.5).healthz()
    except SourceError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class StoreChoice:
    """What the user named: a store URL (``--store``) or a DuckDB file (``--db``)."""

    target: str
    flag: Literal["--store", "--db"]

    @property
    def is_url(self) -> bool:
        return self.flag == "--store"

    def describe(self) -> str:
        """For messages: the URL without a password, or the file path."""
        if not self.is_url:
            return self.target
        return parsed_url(self.target).redacted()


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def chosen_store(args: argparse.Namespace) -> StoreChoice | None:
    """``--store`` or ``--db`` (flags, then env); None when neither is given."""
    store = getattr(args, "store", None)
    db = getattr(args, "db", None)
    if store and db:
        raise UsageError(
            "give --store URL or --db PATH, not both (a DuckDB file as a URL: --store duckdb://PATH)"
        )
    if store:
        return _checked(StoreChoice(store, "--store"))
    if db:
        return StoreChoice(db, "--db")
    store, db = _env(STORE_ENV), _env(DB_ENV)
    if store and db:
        raise UsageError(
            f"both {STORE_ENV} and {DB_ENV} are set; unset one, or give --store URL or --db PATH"
        )
    if store:
        return _checked(StoreChoice(store, "--store"))
    if db:
        return StoreChoice(db, "--db")
    return None


def parsed_url(text: str) -> StoreURL:
    """The parsed store URL (``spanstore.urls.StoreURL``); a bad one is a usage error."""
    from spanstore.urls import StoreURLError, parse_store_url

    try:
        return parse_store_url(text)
    except StoreURLError as exc:
        raise UsageError(f"--store: {exc}") from None


def _checked(choice: StoreChoice) -> StoreChoice:
    parsed_url(choice.target)
    return choice
