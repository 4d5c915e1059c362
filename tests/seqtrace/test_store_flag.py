"""`--store URL` (issue #7): every command on a ClickHouse store (chdb) gives what it gives
on a DuckDB file; `serve --store` ingests OTLP into ClickHouse and its query API reads it
back; the contracts' bulk query runs on ClickHouse; bad URLs and `--store` with `--db` are
one-line usage errors.

The CLI tests run `seqtrace` as subprocesses on a chdb directory of their own (each process
hosts its own engine); the in-process tests use test_clickhouse's shared engine (``ch``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_clickhouse import (  # noqa: F401
    HTTP_PASSWORD,
    PASSWORD_ENV,
    StoreMaker,
    ch,
    engine,
    load_samples,
    require_chdb,
)
from test_clickhouse_otel import create_exporter_tables, export, sample_spans
from test_clickhouse_parity import assert_same_keys

from analyzer.contracts import contract_check, contract_init
from analyzer.source import LocalSource, SourceError, open_database
from spanstore.duckdb_store import DuckDBStore
from tests.conftest import SAMPLES, SEQTRACE, Server, sample_files, start_seqtrace

WIDE = ["--from", "2026-01-01T00:00:00Z", "--to", "2027-01-01T00:00:00Z"]
EVERYTHING = (0, 1 << 62)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEQTRACE_")}
    return subprocess.run(
        [*SEQTRACE, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**clean, **(env or {})},
    )


def ok(*args: str) -> str:
    out = run(*args)
    assert out.returncode == 0, (args, out.stderr)
    assert "Traceback" not in out.stderr
    return out.stdout


def assert_one_line_usage_error(out: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("seqtrace: error: ") and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr
    for needle in needles:
        assert needle in out.stderr, (needle, out.stderr)


# --------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], list[str]]:
    """The samples loaded by `seqtrace load` into a chdb store and into a DuckDB file;
    returns the flags that name each."""
    require_chdb()
    tmp = tmp_path_factory.mktemp("storeflag")
    store = ["--store", f"chdb://{tmp / 'ch'}?database=shop"]
    db = ["--db", str(tmp / "shop.duckdb")]
    files = [str(f) for f in sample_files()]
    for flags in (store, db):
        out = ok("load", *flags, *files)
        assert re.search(r"loaded 500 spans from 7 file\(s\) into ", out), out
    assert "into chdb://" in ok("load", *store, files[0])  # re-sent spans are not stored twice
    return store, db


def test_load_into_chdb_names_the_store(loaded: tuple[list[str], list[str]]) -> None:
    store, db = loaded
    assert json.loads(ok("stats", "--json", *store)) == json.loads(ok("stats", "--json", *db))
    assert json.loads(ok("stats", "--json", *store))["spans"] == 500


@pytest.mark.parametrize(
    "command",
    [
        ["stats"],
        ["entities", "--key", "order.id", "--json"],
        ["entities", "--key", "customer.id"],
        ["diagram", "--entity", "order.id=ORD-1002", "--format", "json"],
        ["diagram", "--entity", "order.id=ORD-1003", "--format", "mermaid", *WIDE],
        ["diagram", "--trace", "28aa6f8cecf63975079bb73dfbbeb308", "--format", "plantuml"],
        ["failures", "--json"],
        ["failures", "--json", *WIDE],
        ["failures", "--service", "payment"],
        ["slo", "--spec", str(SAMPLES / "slo.yaml"), "--json"],
        ["slo", "--spec", str(SAMPLES / "slo.yaml"), "--markdown"],
        ["diff", "--entity", "order.id=ORD-1001", "--entity", "order.id=ORD-1002"],
    ],
    ids=lambda c: "-".join(c[:3]),
)
def test_commands_match_duckdb(loaded: tuple[list[str], list[str]], command: list[str]) -> None:
    store, db = loaded
    assert ok(*command, *store) == ok(*command, *db)


def test_entity_keys_match_duckdb(loaded: tuple[list[str], list[str]]) -> None:
    store, db = loaded
    # Distinct counts are estimates in both engines (see test_clickhouse_parity).
    assert_same_keys(
        json.loads(ok("entities", "--json", *store)), json.loads(ok("entities", "--json", *db))
    )


def test_contracts_and_postmortem_match_duckdb(
    loaded: tuple[list[str], list[str]], tmp_path: Path
) -> None:
    store, db = loaded
    contract = tmp_path / "checkout.mmd"
    ok("contract", "init", "--entity", "order.id=ORD-1001", "--out", str(contract), *store)
    ok("contract", "init", "--entity", "order.id=ORD-1001", "--out", str(tmp_path / "d.mmd"), *db)
    assert contract.read_text() == (tmp_path / "d.mmd").read_text()
    for check in (
        ["--key", "order.id", *WIDE, "--json"],
        ["--key", "order.id", *WIDE],
        ["--entity", "order.id=ORD-1002", "--json"],
    ):
        on_store = run("contract", "check", str(contract), *check, *store)
        on_db = run("contract", "check", str(contract), *check, *db)
        assert on_store.returncode == on_db.returncode == 1, on_store.stderr  # violations
        assert on_store.stdout == on_db.stdout
    report = json.loads(
        run("contract", "check", str(contract), "--key", "order.id", *WIDE, "--json", *store).stdout
    )
    assert report["contracts"][0]["checked"] > 5
    for name, flags in (("store", store), ("db", db)):
        ok(
            "postmortem",
            "--entity",
            "order.id=ORD-1002",
            "--slo-spec",
            str(SAMPLES / "slo.yaml"),
            "--out",
            str(tmp_path / name),
            *flags,
        )
    assert (tmp_path / "store" / "postmortem.md").read_text() == (
        tmp_path / "db" / "postmortem.md"
    ).read_text()


def test_store_from_environment(loaded: tuple[list[str], list[str]]) -> None:
    store, db = loaded
    out = run("stats", "--json", env={"SEQTRACE_STORE": store[1]})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["spans"] == 500
    # A flag beats the other variable.
    out = run("stats", "--json", *db, env={"SEQTRACE_STORE": "nope://x"})
    assert out.returncode == 0, out.stderr


def test_store_is_read_only_for_analysis(loaded: tuple[list[str], list[str]]) -> None:
    store, _ = loaded
    # A directory with no seqtrace tables is not created by a reader.
    empty = store[1].replace("database=shop", "database=nothing_here")
    out = run("stats", "--store", empty)
    assert_one_line_usage_error(out, "cannot get at the data", "nothing_here")


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "command",
    [
        ["stats"],
        ["entities"],
        ["diagram", "--entity", "order.id=ORD-1"],
        ["failures"],
        ["slo", "--spec", str(SAMPLES / "slo.yaml")],
        ["contract", "check", str(SAMPLES / "README.md"), "--key", "order.id"],
        ["diff", "--entity", "a=1", "--entity", "a=2"],
        ["load", str(SAMPLES / "01-happy-orders.json")],
        ["ui", "--ui-port", "0"],
        ["serve", "--api-port", "0", "--grpc-port", "0", "--http-port", "0"],
        ["up", "--api-port", "0", "--grpc-port", "0", "--http-port", "0", "--ui-port", "0"],
    ],
    ids=lambda c: c[0] if c[0] != "contract" else "contract-check",
)
def test_store_and_db_together_is_a_usage_error(command: list[str], tmp_path: Path) -> None:
    out = run(*command, "--store", f"chdb://{tmp_path}/ch", "--db", str(tmp_path / "x.duckdb"))
    assert_one_line_usage_error(out, "--store URL or --db PATH, not both")
    assert not (tmp_path / "ch").exists() and not (tmp_path / "x.duckdb").exists()


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("mysql://db/x", "unknown store scheme 'mysql'"),
        ("chdb://", "no directory after chdb://"),
        ("clickhouse://:8123/db", "no host"),
        ("clickhouse://h:port/db", "port is not a number"),
        ("clickhouse://h/db?layout=flat", "layout must be auto, seqtrace or otel"),
    ],
)
@pytest.mark.parametrize("command", [["stats"], ["load", str(SAMPLES / "01-happy-orders.json")]])
def test_bad_store_url_is_a_usage_error(url: str, needle: str, command: list[str]) -> None:
    out = run(*command, "--store", url)
    assert_one_line_usage_error(out, "--store: ", needle)


def test_bad_store_url_stops_serve_and_ui() -> None:
    out = run("serve", "--store", "mysql://db/x", "--api-port", "0")
    assert_one_line_usage_error(out, "unknown store scheme")
    out = run("ui", "--store", "mysql://db/x", "--ui-port", "0")
    assert_one_line_usage_error(out, "unknown store scheme")


def test_both_variables_set_is_a_usage_error(tmp_path: Path) -> None:
    env = {"SEQTRACE_STORE": f"chdb://{tmp_path}/ch", "SEQTRACE_DB": str(tmp_path / "x.duckdb")}
    out = run("stats", env=env)
    assert_one_line_usage_error(out, "both SEQTRACE_STORE and SEQTRACE_DB are set")


def test_ui_store_without_data_says_so(tmp_path: Path) -> None:
    out = run("ui", "--store", f"chdb://{tmp_path}/missing", "--ui-port", "0")
    assert_one_line_usage_error(out, "no chdb directory at", "missing")
    out = run("ui", "--store", f"duckdb://{tmp_path}/missing.duckdb", "--ui-port", "0")
    assert_one_line_usage_error(out, "no database file at")


def test_chdb_held_by_a_server_is_a_usage_error(tmp_path: Path) -> None:
    require_chdb()
    url = f"chdb://{tmp_path / 'held'}?database=live"
    server = start_store_server(url)
    try:
        out = run("stats", "--store", url)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        # chdb itself writes one line of its own to stderr before seqtrace's.
        last = out.stderr.strip().splitlines()[-1]
        assert last.startswith("seqtrace: error: ") and "held by another process" in last
        assert "--api" in last
    finally:
        assert server.stop() == 0


# --------------------------------------------------------------------------- serve --store


def start_store_server(url: str, *extra: str, env: dict[str, str] | None = None) -> Server:
    """`seqtrace serve --store URL` on free ports, without the run's SEQTRACE_* settings."""
    server = start_seqtrace("serve", "--store", url, *extra, env=env, clean_env=True, timeout=90)
    assert len(server.addresses) == 3, server.lines
    return server


@pytest.fixture
def store_server(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    require_chdb()
    url = f"chdb://{tmp_path / 'served'}?database=live"
    server = start_store_server(url)
    yield server, url
    server.stop()


def sdk_export(endpoint: str) -> list[str]:
    """Two traces for order.id=SDK-7 through the OpenTelemetry SDK's OTLP/HTTP exporter;
    returns their trace ids."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    trace_ids = []
    providers = []
    for service in ("shop-frontend", "shop-payment"):
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=30))
        )
        providers.append(provider)
    front = providers[0].get_tracer("test")
    pay = providers[1].get_tracer("test")
    for attempt in range(2):
        with front.start_as_current_span(
            "POST /checkout",
            kind=SpanKind.SERVER,
            attributes={"order.id": "SDK-7", "http.route": "/checkout"},
        ) as root:
            trace_ids.append(format(root.get_span_context().trace_id, "032x"))
            with (
                front.start_as_current_span(
                    "POST /pay", kind=SpanKind.CLIENT, attributes={"peer.service": "shop-payment"}
                ),
                pay.start_as_current_span(
                    "POST /pay", kind=SpanKind.SERVER, attributes={"order.id": "SDK-7"}
                ) as charged,
            ):
                if attempt == 0:
                    charged.set_status(Status(StatusCode.ERROR, "card declined"))
    for provider in providers:
        provider.shutdown()
    return trace_ids


def test_serve_writes_to_clickhouse_and_api_reads_it(
    store_server: tuple[Server, str],
) -> None:
    server, url = store_server
    assert any(line.startswith("seqtrace: store chdb://") for line in server.lines), server.lines
    assert not any("database seqtrace.duckdb" in line for line in server.lines)
    trace_ids = sdk_export(f"http://{server.addresses['otlp-http']}")

    stats = json.loads(ok("stats", "--json", "--api", server.api))
    assert stats["spans"] == 6 and stats["traces"] == 2
    assert stats["services"] == ["shop-frontend", "shop-payment"]
    values = json.loads(ok("entities", "--key", "order.id", "--json", "--api", server.api))
    assert [(v["value"], v["spans"], v["traces"]) for v in values["values"]] == [("SDK-7", 4, 2)]
    diagram = json.loads(
        ok("diagram", "--entity", "order.id=SDK-7", "--format", "json", "--api", server.api)
    )
    assert diagram["traces"] == trace_ids
    assert {p["id"] for p in diagram["participants"]} >= {"shop-frontend", "shop-payment"}
    assert any(m["status"] == "error" for m in diagram["messages"])
    failures = json.loads(ok("failures", "--json", "--api", server.api))
    assert failures["summary"]["traces"] == 2 and failures["summary"]["partial"] == 1
    # --api wins over --store (which the server holds: opening it would fail).
    assert json.loads(ok("stats", "--json", "--api", server.api, "--store", url)) == stats
    # `load` through the server into the same ClickHouse.
    ok("load", "--api", server.api, str(SAMPLES / "01-happy-orders.json"))
    assert json.loads(ok("stats", "--json", "--api", server.api))["spans"] == 6 + 108

    assert server.stop() == 0
    assert any("every acknowledged span is committed" in line for line in server.lines)
    # Committed: the store holds it all once the server is gone.
    after = json.loads(ok("stats", "--json", "--store", url))
    assert after["spans"] == 6 + 108


# --------------------------------------------------------------------------- in process


def _shapes_grouping(rows: list[tuple[Any, ...]]) -> list[list[tuple[str, str]]]:
    groups: dict[Any, list[tuple[str, str]]] = {}
    for value, trace_id, _, shape, _ in rows:
        if shape is not None:
            groups.setdefault(shape, []).append((str(value), str(trace_id)))
    return sorted(sorted(g) for g in groups.values())


@pytest.fixture(scope="module")
def duck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    store = DuckDBStore(tmp_path_factory.mktemp("duck") / "samples.duckdb")
    load_samples(store.write)
    yield store
    store.close()


def test_entity_traces_in_range_matches_duckdb(ch: StoreMaker, duck: DuckDBStore) -> None:  # noqa: F811
    """The contracts' bulk query (sql/clickhouse/entity_traces_in_range.sql) returns
    DuckDB's rows: the same values, traces, order, span order and shape groups (the
    digests themselves differ: each engine hashes with its own function)."""
    store = ch()
    load_samples(store.write)
    load_samples(store.write)  # re-sent: rows stay unique
    for key in ("order.id", "customer.id", "shipment.id"):
        for lo, hi in (EVERYTHING, (1_795_132_800_000_000_000, 1_795_262_400_000_000_000)):
            mine = store.entity_traces_in_range(key, lo, hi)
            theirs = duck.entity_traces_in_range(key, lo, hi)
            assert [(r[0], r[1], r[2], r[3] is None, tuple(r[4])) for r in mine] == [
                (r[0], r[1], r[2], r[3] is None, tuple(r[4])) for r in theirs
            ], key
            assert _shapes_grouping(mine) == _shapes_grouping(theirs), key
    assert store.entity_traces_in_range("no.such.key", *EVERYTHING) == []


def test_contract_check_matches_duckdb(
    ch: StoreMaker,  # noqa: F811
    duck: DuckDBStore,
    tmp_path: Path,
) -> None:
    store = ch()
    load_samples(store.write)
    here, there = LocalSource(store), LocalSource(duck)
    contract = contract_init(there, "order.id=ORD-1001", None, None)
    assert contract_init(here, "order.id=ORD-1001", None, None) == contract
    files = [("checkout.mmd", contract)]
    for kwargs in (
        {"key": "order.id", "start": EVERYTHING[0], "end": EVERYTHING[1]},
        {"key": "customer.id", "start": EVERYTHING[0], "end": EVERYTHING[1]},
        {"entity": "order.id=ORD-1002"},
    ):
        assert contract_check(here, files, **kwargs) == contract_check(there, files, **kwargs)


def test_contract_check_on_otel_traces(ch: StoreMaker, duck: DuckDBStore) -> None:  # noqa: F811
    """A team's OpenTelemetry Collector `otel_traces` database: the contract check gives
    what it gives on seqtrace's own store (no shapes there: each entity on its own)."""
    create_exporter_tables(ch, "current")
    export(ch, sample_spans())
    otel = ch(read_only=True)
    assert otel.layout == "otel"
    rows = otel.entity_traces_in_range("order.id", *EVERYTHING)
    assert {(r[0], r[1]) for r in rows} == {
        (r[0], r[1]) for r in duck.entity_traces_in_range("order.id", *EVERYTHING)
    }
    contract = contract_init(LocalSource(duck), "order.id=ORD-1001", None, None)
    kwargs: dict[str, Any] = {"key": "order.id", "start": EVERYTHING[0], "end": EVERYTHING[1]}
    files = [("checkout.mmd", contract)]
    assert contract_check(LocalSource(otel), files, **kwargs) == contract_check(
        LocalSource(duck), files, **kwargs
    )


def test_open_database_takes_store_urls(
    ch: StoreMaker,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if ch.backend == "chdb-http":  # the password comes from the environment, as for users
        monkeypatch.setenv(PASSWORD_ENV, HTTP_PASSWORD)
    store = ch()
    load_samples(store.write)
    store.close()
    source = open_database(ch.url())
    assert source.stats()["spans"] == 500
    with pytest.raises(SourceError, match="unknown store scheme") as bad:
        open_database("mysql://x/y")
    assert bad.value.status == 400
    with pytest.raises(SourceError, match=r"missing\.duckdb") as missing:
        open_database(str(tmp_path / "missing.duckdb"))
    assert missing.value.status == 503


def test_ui_reads_a_store_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """`seqtrace ui --store URL` hands the URL to the Streamlit process as SEQTRACE_STORE;
    the UI reads through the analyzer's open_database, the store never imported by ui/."""
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT
    from ui.data import source_config

    require_chdb()
    maker = StoreMaker("chdb")
    try:
        store = maker()
        load_samples(store.write)
        store.close()
        monkeypatch.delenv("SEQTRACE_API", raising=False)
        monkeypatch.setenv("SEQTRACE_DB", "/nonexistent/ignored.duckdb")
        monkeypatch.setenv("SEQTRACE_STORE", maker.url())
        config = source_config()
        assert (config.kind, config.target) == ("store", maker.url())
        at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        captions = " ".join(str(c.value) for c in at.sidebar.caption)
        assert f"Reading {maker.url()} (read-only)" in captions, captions
        assert "500 spans" in captions, captions
        monkeypatch.setenv("SEQTRACE_STORE", "clickhouse://reader:secret@ch:8123/otel")
        assert "secret" not in source_config().describe() + source_config().key
    finally:
        maker.teardown()


def test_serve_on_otel_traces_reads_and_refuses_exports(duck: DuckDBStore) -> None:
    """`seqtrace serve --store clickhouse://...` (the HTTP transport, here against the
    emulated HTTP interface of the test engine) on an OpenTelemetry Collector's
    otel_traces database: the API answers from it; OTLP exports are refused for good."""
    require_chdb()
    maker = StoreMaker("chdb-http")
    try:
        create_exporter_tables(maker, "current")
        export(maker, sample_spans())
        server = start_store_server(maker.url(), env={PASSWORD_ENV: HTTP_PASSWORD})
        try:
            assert any("serving reads only" in line for line in server.lines), server.lines
            stats = json.loads(ok("stats", "--json", "--api", server.api))
            # A serving process adds what its receivers refused (#18: metric points).
            assert stats.pop("metric_points_refused") == 0
            assert stats == LocalSource(duck).stats()
            # Refused with a non-retryable status: `load` reports it at once, no retries.
            started = time.monotonic()
            out = run("load", "--api", server.api, str(SAMPLES / "01-happy-orders.json"))
            assert_one_line_usage_error(out, "refused the spans (500)", "only reads")
            assert time.monotonic() - started < 30
        finally:
            assert server.stop() == 0
    finally:
        maker.teardown()


def test_serve_cannot_reach_clickhouse() -> None:
    for command in (
        ["serve", "--api-port", "0", "--grpc-port", "0", "--http-port", "0"],
        ["load", str(SAMPLES / "01-happy-orders.json")],
    ):
        out = run(*command, "--store", "clickhouse://seqtrace@127.0.0.1:1/traces")
        assert_one_line_usage_error(out, "--store: cannot reach ClickHouse at")
