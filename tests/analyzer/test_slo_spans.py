"""The SLO report over the store's narrow ``slo_spans`` rows (what ``seqtrace slo`` reads)
equals the report over whole traces, in DuckDB and in ClickHouse, on the samples and on
constructed traces with the cases the semantics hinge on: nested spans of one SLO, errors
deep beneath a good event, a SERVER 4xx (not an error) and a CLIENT 4xx (an error), a
cancelled call, a parent cycle, latency over errors, the burn-rate horizon, ``at`` itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from test_clickhouse import StoreMaker, ch, require_chdb  # noqa: F401  (the fixture)
from test_slo import slo_report

from analyzer.slo import load_slo_spec, slo_frame_start, slo_report_spans
from analyzer.source import LocalSource
from spanstore.duckdb_store import DuckDBStore
from spanstore.frame import SLO_SPANS_SCHEMA
from tests.conftest import SAMPLES

MS = 1_000_000
MINUTE = 60_000 * MS
HOUR = 60 * MINUTE
DAY = 24 * HOUR
AT = 1_795_600_800_000_000_000  # 2026-11-25T10:00:00Z
KINDS = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3}


def _value(v: object) -> AnyValue:
    return AnyValue(int_value=v) if isinstance(v, int) else AnyValue(string_value=str(v))


def _request(spans: list[dict[str, Any]]) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    for s in spans:
        rs = req.resource_spans.add()
        rs.resource.attributes.add(key="service.name", value=_value(s["service"]))
        out = rs.scope_spans.add().spans.add()
        out.trace_id = bytes.fromhex(s["trace"])
        out.span_id = bytes.fromhex(s["span"])
        if s.get("parent"):
            out.parent_span_id = bytes.fromhex(s["parent"])
        out.name = s["name"]
        out.kind = KINDS[s.get("kind", "SERVER")]  # type: ignore[assignment]
        out.start_time_unix_nano = s["start"]
        out.end_time_unix_nano = s["start"] + s.get("ms", 10) * MS
        if s.get("error"):
            out.status.code = 2  # type: ignore[assignment]
            out.status.message = s.get("message", "boom")
        for key, value in s.get("attrs", {}).items():
            out.attributes.append(KeyValue(key=key, value=_value(value)))
    return req


def _trace(n: int) -> str:
    return f"{n:032x}"


def _span(t: int, n: int) -> str:
    return f"{t:08x}{n:08x}"


def _scenario() -> list[dict[str, Any]]:
    """Traces numbered 1..; span ids are (trace, n). The event is frontend SERVER
    "POST /checkout"; checks in :func:`test_constructed_cases_in_duckdb`."""
    op = {"service": "frontend", "name": "POST /checkout"}
    spans: list[dict[str, Any]] = []

    def add(t: int, n: int, parent: int | None, start: int, **fields: Any) -> None:
        spans.append(
            {
                "trace": _trace(t),
                "span": _span(t, n),
                "parent": _span(t, parent) if parent else None,
                "start": start,
                **fields,
            }
        )

    # 1: good event, an error three levels beneath (a CLIENT 503 with status UNSET).
    at1 = AT - 10 * MINUTE
    add(1, 1, None, at1, **op, attrs={"order.id": "O-1"})
    add(1, 2, 1, at1 + MS, service="frontend", name="POST", kind="CLIENT")
    add(1, 3, 2, at1 + 2 * MS, service="checkout", name="POST /orders")
    add(
        1,
        4,
        3,
        at1 + 3 * MS,
        service="checkout",
        name="POST",
        kind="CLIENT",
        attrs={"http.response.status_code": 503},
    )
    # 2: the same SLO's span nested in the event (two instrumentation layers), failing:
    # one event, good, partial.
    add(2, 1, None, AT - 20 * MINUTE, **op)
    add(2, 2, 1, AT - 20 * MINUTE + MS, **op, kind="INTERNAL", error=True)
    # 3: a SERVER 404 is not an error (good, not partial), a CLIENT 404 beneath is.
    add(3, 1, None, AT - 30 * MINUTE, **op, attrs={"http.response.status_code": 404})
    add(
        3,
        2,
        1,
        AT - 30 * MINUTE + MS,
        service="frontend",
        name="GET",
        kind="CLIENT",
        attrs={"http.response.status_code": 404},
    )
    # 4: a cancelled call beneath: not an error, so not partial.
    add(4, 1, None, AT - 40 * MINUTE, **op)
    add(
        4,
        2,
        1,
        AT - 40 * MINUTE + MS,
        service="cart",
        name="GetCart",
        kind="CLIENT",
        error=True,
        message="cancelled",
    )
    # 5: a failed event (bad), with its entity.
    add(5, 1, None, AT - 50 * MINUTE, **op, error=True, attrs={"order.id": "O-5"})
    # 6: hostile parents: 1 and 2 are each other's parent, an error beneath 2.
    add(6, 1, 2, AT - 55 * MINUTE, **op)
    add(6, 2, 1, AT - 55 * MINUTE + MS, service="frontend", name="work", kind="INTERNAL")
    add(6, 3, 2, AT - 55 * MINUTE + 2 * MS, service="db", name="SELECT", kind="CLIENT", error=True)
    # 7: slow (bad for latency, good for availability); 8: fast but failed (not a valid
    # latency event). 9: exactly at `at` (inclusive). 10: two days back (3d burn only
    # for a 1h window). 11: an error in a trace without events.
    add(7, 1, None, AT - 5 * MINUTE, **op, ms=900)
    add(8, 1, None, AT - 6 * MINUTE, **op, ms=5, error=True, attrs={"order.id": "O-8"})
    add(9, 1, None, AT, **op)
    add(10, 1, None, AT - 2 * DAY, **op, error=True)
    add(11, 1, None, AT - 7 * MINUTE, service="frontend", name="GET /", error=True)
    return spans


SPEC = json.dumps(
    {
        "slos": [
            {"name": "avail-1h", "service": "frontend", "operation": "POST /checkout",
             "sli": "availability", "objective": 99, "window": "1h"},
            {"name": "avail-7d", "service": "frontend", "operation": "POST /checkout",
             "sli": "availability", "objective": 99.9, "window": "7d"},
            {"name": "latency-1h", "service": "frontend", "operation": "POST /checkout",
             "sli": "latency", "threshold_ms": 300, "objective": 95, "window": "1h"},
            {"name": "nothing", "service": "nobody", "operation": "GET /",
             "sli": "availability", "objective": 99, "window": "1h"},
        ]
    }
)  # fmt: skip


def _whole_report(source: LocalSource, spec_text: str, at: int) -> dict[str, Any]:
    """The report over every span of the range (the reference)."""
    spec = load_slo_spec(spec_text, "spec")
    whole = source.reader.span_frame(slo_frame_start(spec, at), at + 1)
    entities = source.reader.trace_entities(whole.get_column("trace_id").unique().to_list())
    return slo_report(spec, whole, entities, at)


@pytest.fixture
def scenario_db(tmp_path: Path) -> Iterator[DuckDBStore]:
    store = DuckDBStore(tmp_path / "slo.duckdb")
    store.write(_request(_scenario()))
    yield store
    store.close()


def test_constructed_cases_in_duckdb(scenario_db: DuckDBStore) -> None:
    source = LocalSource(scenario_db)
    report = source.slo(SPEC, AT, "spec")
    assert report == _whole_report(source, SPEC, AT)
    by_name = {s["name"]: s for s in report["slos"]}
    avail = by_name["avail-1h"]
    # Events in (at - 1h, at]: traces 1-9, one each (2's nested span is not a second).
    assert (avail["total"], avail["bad"]) == (9, 2)  # 5 and 8 failed
    # 1 (deep CLIENT 503), 2 (nested failure), 3 (CLIENT 404), 6 (beneath the cycle).
    assert avail["partial"] == 4
    assert avail["affected_entities"] == {"order.id": ["O-5", "O-8"]}
    assert avail["burn_rates"]["3d"] == pytest.approx((3 / 10) / 0.01)  # + trace 10
    assert by_name["avail-7d"]["total"] == 10
    latency = by_name["latency-1h"]
    assert (latency["total"], latency["bad"]) == (7, 1)  # not 5 or 8; 7 was slow
    assert by_name["nothing"]["total"] == 0


def test_constructed_cases_in_clickhouse(scenario_db: DuckDBStore, ch: StoreMaker) -> None:  # noqa: F811
    store = ch()
    store.write(_request(_scenario()))
    assert LocalSource(store).slo(SPEC, AT, "spec") == LocalSource(scenario_db).slo(
        SPEC, AT, "spec"
    )


def test_samples_report_equals_whole_traces(sample_db: Path) -> None:
    from test_clickhouse_parity import _slo_spec

    with DuckDBStore(sample_db, read_only=True) as store:
        source = LocalSource(store)
        at = store.last_unix_nano() or 0  # SPEC: the newest span's time
        for text in ((SAMPLES / "slo.yaml").read_text(), _slo_spec(source)):
            report = source.slo(text, None, "spec")
            assert report == _whole_report(source, text, at)
            assert any(s["partial"] for s in report["slos"])


def test_slo_spans_rows(scenario_db: DuckDBStore) -> None:
    spec = load_slo_spec(SPEC, "spec")
    rows = scenario_db.slo_spans(
        slo_frame_start(spec, AT), AT + 1, ["frontend"], ["POST /checkout"]
    )
    assert rows.schema == pl.Schema(SLO_SPANS_SCHEMA)
    events = rows.filter(pl.col("event"))
    assert events.height == 11  # every candidate, nested ones too (the report drops them)
    assert events["trace_id"].str.len_chars().unique().to_list() == [32]
    tree = rows.filter(~pl.col("event"))
    # Traces with a candidate and a possible error: 1 (503), 2, 3 (404s), 4 (ERROR,
    # cancelled), 5, 6, 8, 10; not 7 or 9 (no error) nor 11 (no candidate).
    assert tree.height == 4 + 2 + 2 + 2 + 1 + 3 + 1 + 1
    assert tree["trace_id"].null_count() == tree.height
    # Only possible errors carry their message.
    assert tree.filter(pl.col("status_message").is_not_null()).height == 9
    empty = scenario_db.slo_spans(0, AT, [], [])
    assert empty.height == 0 and empty.schema == pl.Schema(SLO_SPANS_SCHEMA)


def test_report_spans_without_rows() -> None:
    spec = load_slo_spec(SPEC, "spec")
    calls: list[list[str]] = []

    def entities(ids: list[str]) -> dict[str, dict[str, list[str]]]:
        calls.append(ids)
        return {}

    report = slo_report_spans(spec, pl.DataFrame(schema=SLO_SPANS_SCHEMA), entities, AT)
    assert [s["total"] for s in report["slos"]] == [0, 0, 0, 0]
    assert [s["sli"] for s in report["slos"]] == [1.0] * 4
    assert calls == [[]]  # looked up once


#: Two SLOs whose operations are joined spellings: "METHOD route" and "service/method".
JOINED_SPELLINGS_SPEC = json.dumps(
    {
        "slos": [
            {"name": n, "service": "frontend", "operation": op, "sli": "availability",
             "objective": 99, "window": "1h"}
            for n, op in (("http", "POST /x y"), ("rpc", "shop.Cart/v1/Get"))
        ]
    }
)  # fmt: skip


def test_joined_operation_spellings_match_as_joined_text() -> None:
    """ "METHOD route" and "service/method" match exactly when the joined text equals the
    operation, separators inside the values included."""
    from test_slo import frame, span

    rows = [
        span(AT, name="a", http_method="POST", http_route="/x y"),  # "POST /x y"
        span(AT, name="b", http_method="POST /x", http_route="y"),  # "POST /x y" too
        span(AT, name="c", http_method="POST", http_route="/x"),  # "POST /x": no
        span(AT, name="d", http_method=None, http_route="POST /x y"),  # route alone: yes
        span(AT, name="e", rpc_service="shop.Cart/v1", rpc_method="Get"),
        span(AT, name="f", rpc_service="shop.Cart", rpc_method="v1/Get"),
        span(AT, name="g", rpc_service="shop.Cart", rpc_method="Get"),  # no
    ]
    spec_text = JOINED_SPELLINGS_SPEC
    report = slo_report(load_slo_spec(spec_text, "s"), frame(rows), {}, AT)
    assert [s["total"] for s in report["slos"]] == [3, 2]


def test_joined_spellings_from_the_store(tmp_path: Path) -> None:
    """The store's candidates in the "METHOD route" / "service/method" spellings, with an
    error beneath each (tree rows, partials): every split of the operation finds its
    events, a span whose joined text only looks alike is none, and the report equals the
    one over whole traces."""
    t = 20
    rows: list[dict[str, Any]] = []
    cases = [
        ({"http.request.method": "POST", "http.route": "/x y"}, True),
        ({"http.request.method": "POST /x", "http.route": "y"}, True),
        ({"http.request.method": "POST", "http.route": "/x"}, False),
        ({"http.request.method": "GET", "http.route": "/x y"}, False),
        ({"rpc.service": "shop.Cart/v1", "rpc.method": "Get"}, True),
        ({"rpc.service": "shop.Cart", "rpc.method": "v1/Get"}, True),
        ({"rpc.service": "shop.Cart", "rpc.method": "Get"}, False),
    ]
    for n, (attrs, _) in enumerate(cases, start=1):
        rows.append(
            {
                "trace": _trace(t + n),
                "span": _span(t + n, 1),
                "service": "frontend",
                "name": f"span-{n}",
                "start": AT - n * MINUTE,
                "attrs": attrs,
                # every other one failing, with an error beneath the good ones: the
                # tree rows and partials of these traces come through the same path
                "error": n % 2 == 0,
            }
        )
        rows.append(
            {
                "trace": _trace(t + n),
                "span": _span(t + n, 2),
                "parent": _span(t + n, 1),
                "service": "db",
                "name": "SELECT",
                "kind": "CLIENT",
                "start": AT - n * MINUTE + MS,
                "error": True,
            }
        )
    spec_text = JOINED_SPELLINGS_SPEC
    with DuckDBStore(tmp_path / "joined.duckdb") as store:
        store.write(_request(rows))
        source = LocalSource(store)
        report = source.slo(spec_text, AT, "spec")
        assert report == _whole_report(source, spec_text, AT)
        events = store.slo_spans(
            AT - HOUR, AT + 1, ["frontend"], ["POST /x y", "shop.Cart/v1/Get"]
        ).filter(pl.col("event"))
    expected = sum(1 for _, matches in cases if matches)
    assert events.height == expected
    by_name = {s["name"]: s for s in report["slos"]}
    assert [by_name["http"]["total"], by_name["rpc"]["total"]] == [2, 2]
    assert by_name["http"]["partial"] + by_name["http"]["bad"] == 2
    assert by_name["rpc"]["partial"] + by_name["rpc"]["bad"] == 2
