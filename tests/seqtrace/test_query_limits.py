"""The query API takes parameters, never SQL, and bounds what one request may cost:
database time (interrupted, 504), diagram size (413), answer size (413)."""

from __future__ import annotations

import ast
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_collector_support import make_request

import spanstore.duckdb_store as duckdb_store
from analyzer.source import LocalSource
from seqtrace.api import ApiServer
from spanstore.duckdb_store import DuckDBStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with DuckDBStore(tmp_path / "q.duckdb") as s:
        for n in range(5):
            request = make_request(spans=3, first=n * 10 + 1)
            for span in request.resource_spans[0].scope_spans[0].spans:
                span.attributes.add(key="order.id").value.string_value = "ORD-1"
            s.write(request)
        yield s


def serve(store: DuckDBStore, **settings: Any) -> ApiServer:
    limit = settings.pop("max_diagram_traces", None)
    api = ApiServer(LocalSource(store, max_diagram_traces=limit), port=0, **settings)
    api.start()
    return api


def get(api: ApiServer, path: str, **params: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    url = f"http://{api.address}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


INJECTIONS = [
    "' OR '1'='1",
    "order.id'; DROP TABLE spans; --",
    '"); DELETE FROM spans; --',
    "$key",
    "x\x00y",
    "%' UNION SELECT raw FROM spans --",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_parameters_are_data_never_sql(store: DuckDBStore, text: str) -> None:
    api = serve(store)
    try:
        assert get(api, "/api/v1/entities", key=text)[:2] == (200, {"key": text, "values": []})
        status, body, _ = get(api, "/api/v1/entities", key="order.id", prefix=text)
        assert status == 200 and body["values"] == []
        status, body, _ = get(api, "/api/v1/diagram", entity=f"order.id={text}")
        assert status == 404 and "no spans carry" in body["error"]
        status, body, _ = get(api, "/api/v1/failures", service=text)
        assert status == 200 and body["traces"] == []
        status, _, _ = get(api, f"/api/v1/traces/{urllib.parse.quote(text, safe='')}")
        assert status == 400
        assert get(api, "/api/v1/stats")[1]["spans"] == 15  # nothing was dropped or deleted
    finally:
        api.stop()


def test_the_store_builds_no_sql_from_values() -> None:
    """Every statement the store executes is a fixed text: a constant, a file from
    spanstore/sql/, or a constant table; values only ever travel as bound parameters."""
    for module in (
        "spanstore/duckdb_store.py",
        "spanstore/retention.py",
        "spanstore/trace_shapes.py",
    ):
        tree = ast.parse((ROOT / module).read_text())
        # The query language's statements come from its compiler (spanstore/query), which
        # emits fixed fragments only and binds every value: tests/spanstore/test_query_hostile.py
        # pins that. Its one runner is the only place here that executes a built text.
        compiled = {
            id(inner)
            for fn in ast.walk(tree)
            if isinstance(fn, ast.FunctionDef) and fn.name == "run_compiled"
            for inner in ast.walk(fn)
        }
        for node in ast.walk(tree):
            if id(node) in compiled:
                continue
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "sql")
                and node.args
            ):
                continue
            first = node.args[0]
            fixed = (
                (isinstance(first, ast.Constant) and isinstance(first.value, str))
                or (  # a file (or, for a version-3 file, the same file without the
                    # kept trace shapes), named; trace_shapes.py is given ``sql`` as _sql
                    isinstance(first, ast.Call)
                    and (
                        (
                            isinstance(first.func, ast.Name)
                            and first.func.id in ("sql", "_without_trace_shapes")
                        )
                        or (isinstance(first.func, ast.Attribute) and first.func.attr == "_sql")
                    )
                    and isinstance(first.args[0], ast.Constant | ast.Name)
                )
                or (isinstance(first, ast.Subscript) and isinstance(first.value, ast.Name))
            )
            assert fixed, f"{module}:{node.lineno}: SQL that is not a fixed text"
        # sql(name) inside the helpers: every caller names its query file literally.
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("_rows", "_frame")
            ):
                assert isinstance(node.args[0], ast.Constant), f"{module}:{node.lineno}"


def test_a_slow_query_is_interrupted_with_504(
    store: DuckDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_sql = duckdb_store.sql

    def slow_sql(name: str) -> str:
        if name == "stats":  # stands in for a query over a huge range
            return (
                "SELECT count(*), count(*), min(a.range), max(b.range) "
                "FROM range(1000000000) a, range(1000) b WHERE a.range % 7 = b.range"
            )
        return real_sql(name)

    monkeypatch.setattr(duckdb_store, "sql", slow_sql)
    api = serve(store, query_timeout=0.5)
    try:
        import time

        started = time.monotonic()
        status, body, _ = get(api, "/api/v1/stats")
        assert status == 504 and "0.5 s" in body["error"]
        assert time.monotonic() - started < 5
        monkeypatch.setattr(duckdb_store, "sql", real_sql)
        assert get(api, "/api/v1/stats")[0] == 200  # the next request is not affected
    finally:
        api.stop()


def test_diagrams_and_answers_are_bounded(store: DuckDBStore) -> None:
    api = serve(store, max_diagram_traces=3)
    try:
        status, body, _ = get(api, "/api/v1/diagram", entity="order.id=ORD-1")
        assert status == 413 and "5 traces" in body["error"] and "--from" in body["error"]
        assert get(api, "/api/v1/diagram", trace=f"{1:032x}")[0] == 200
    finally:
        api.stop()
    api = serve(store, max_response_bytes=300)
    try:
        status, body, _ = get(api, "/api/v1/traces/" + f"{1:032x}")
        assert status == 413 and "narrow" in body["error"]
        assert get(api, "/api/v1/stats")[0] == 200
    finally:
        api.stop()
    # Limits on parameters are clamped, not trusted.
    api = serve(store)
    try:
        status, body, _ = get(api, "/api/v1/traces", limit="999999999")
        assert status == 200 and len(body["traces"]) <= 1000
    finally:
        api.stop()


def test_an_unavailable_store_is_503_with_retry_after(store: DuckDBStore) -> None:
    api = serve(store)
    try:
        store._broken = "disk full"
        status, body, headers = get(api, "/api/v1/stats")
        assert status == 503 and "disk full" in body["error"] and headers["Retry-After"] == "2"
    finally:
        store._broken = None
        api.stop()


def test_bad_content_length_is_400(store: DuckDBStore) -> None:
    import http.client

    api = serve(store)
    try:
        host, port = api.address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.putrequest("POST", "/api/v1/slo")
        conn.putheader("Content-Length", "abc")
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 400 and "Content-Length" in json.loads(response.read())["error"]
        conn.close()
    finally:
        api.stop()
