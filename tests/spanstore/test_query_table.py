# ruff: noqa: E501  (the table reads best one query per line)
"""The query language against the sample traces, with answers derived by hand from the
samples (sample_traces/*.json: which spans are errors, who is whose parent, durations),
on DuckDB, on ClickHouse (chdb) in seqtrace's layout and in the OpenTelemetry Collector's
otel_traces table: each must give exactly the hand-derived answer.

Answers are {first 8 hex digits of the trace id: matched spans}.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_clickhouse import StoreMaker, load_samples, require_chdb

from spanstore.duckdb_store import DuckDBStore
from spanstore.query import parse

EVERYTHING = (0, 1 << 62)
ERRORS = {"0e757124": 3, "1b9c99bf": 1, "1dd72201": 1, "28aa6f8c": 2, "a379f02f": 4}
CHARGE_TRACES = [
    "1be3f180",
    "1dc74912",
    "28aa6f8c",
    "2b897ff8",
    "31fbe3a6",
    "78b022f9",
    "8d9e5e46",
    "9470feb5",
    "a0e8241f",
    "a379f02f",
    "e06aa4fb",
]
FULFILLMENT_TRACES = [
    "052b722e",
    "0f21b4ac",
    "2dc2f101",
    "7c8cabc6",
    "88fbcd00",
    "9840b5cd",
    "ca732318",
    "cad4d45e",
    "d34bc814",
    "dde1fb45",
    "e740a759",
]

#: (query, answer). Error chains in the samples: 0e757124 b74564 > e37203 > 85da4c (all
#: errors); a379f02f 09f49b > d708dc > c6f9cf > b81b36 (all errors); 28aa6f8c two
#: erroring charge attempts, siblings under an OK "charge card".
TABLE: list[tuple[str, dict[str, int]]] = [
    ("{ status = error }", ERRORS),
    ("{ status = ok }", dict.fromkeys(CHARGE_TRACES, 1)),
    ("{ status = unset && name = \"charge card\" }", {}),
    ("{ status != error && kind = internal && name = \"load user features\" }",
     {"06d49c6a": 1, "3587c872": 1, "4580fa86": 1, "99bd035e": 1, "9a3360f2": 1, "e2cc15ac": 1,
      "e71b4ce9": 1, "ec55bd61": 1, "f9ec9edb": 1}),
    ("{ kind = producer }", dict.fromkeys([t for t in CHARGE_TRACES if t != "a379f02f"], 1)),
    # d34bc814 is rooted in fulfillment too, but at a carrier webhook (a server span).
    ("{ kind = consumer && trace:rootService = \"fulfillment\" }",
     dict.fromkeys([t for t in FULFILLMENT_TRACES if t != "d34bc814"], 1)),
    ("{ trace:rootService = \"fulfillment\" && kind = server && name = \"POST /webhooks/carrier\" }",
     {"d34bc814": 1}),
    ("{ trace:rootName = \"GET /api/orders/{orderId}\" && status = error }", {"1b9c99bf": 1, "1dd72201": 1}),
    ("{ duration > 500ms }", {"28aa6f8c": 6}),
    # Every server span of the one long trace (frontend, checkout, cart, inventory, payment).
    ("{ trace:duration > 500ms && kind = server }", {"28aa6f8c": 5}),
    ("{ name = \"POST /v1/charges\" && duration < 50ms }", {"28aa6f8c": 2}),
    ("{ name =~ \"POST /v1/.*\" && status = error }", {"28aa6f8c": 2}),
    ("{ resource.service.name =~ \"pay.*\" && name =~ \"charge.*\" }", dict.fromkeys(CHARGE_TRACES, 1)),
    ("{ name = \"charge card\" && name !~ \"charge.*\" }", {}),
    ("{ span.payment.attempts = 3 }", {"28aa6f8c": 1}),
    ("{ span.payment.attempts != 1 }", {"28aa6f8c": 1}),
    ("{ name = \"charge card\" && span.payment.charge_id = nil }", {}),
    ("{ name = \"charge card\" && span.payment.charge_id != nil }", dict.fromkeys(CHARGE_TRACES, 1)),
    ("{ .customer.id = \"CUST-49902\" }", {"052b722e": 1, "0e757124": 4, "2b897ff8": 4}),
    ("{ resource.service.version = \"0.12.4\" && status = error }", {"0e757124": 2}),
    # The unknown-order traces (1b9c99bf, 1dd72201) failed with 404, not 5xx.
    ("{ span.http.response.status_code >= 500 && kind = client }", {"28aa6f8c": 2, "a379f02f": 1}),
    ("{ span.http.response.status_code = 404 && kind = client }", {"1b9c99bf": 1, "1dd72201": 1}),
    ("{ status = error } !< { status = error }",
     {"0e757124": 1, "1b9c99bf": 1, "1dd72201": 1, "28aa6f8c": 2, "a379f02f": 1}),
    ("{ status = error } < { status = error }", {"0e757124": 2, "a379f02f": 3}),
    ("{ status = error } > { status = error }", {"0e757124": 2, "a379f02f": 3}),
    ("{ status = error } !> { status = error }",
     {"0e757124": 1, "1b9c99bf": 1, "1dd72201": 1, "28aa6f8c": 2, "a379f02f": 1}),
    ("{ status = error } !>> { status = error }",
     {"0e757124": 1, "1b9c99bf": 1, "1dd72201": 1, "28aa6f8c": 2, "a379f02f": 1}),
    ("{ status = error } !<< { status = error }",
     {"0e757124": 1, "1b9c99bf": 1, "1dd72201": 1, "28aa6f8c": 2, "a379f02f": 1}),
    ("{ status = error } ~ { status = error }", {"28aa6f8c": 2}),
    ("{ status = error } !~ { status = error }",
     {"0e757124": 3, "1b9c99bf": 1, "1dd72201": 1, "a379f02f": 4}),
    ("{ name = \"charge card\" } > { status = error }", {"28aa6f8c": 2}),
    ("{ resource.service.name = \"frontend\" } >> { status = error && resource.service.name = \"recommendation\" }",
     {"0e757124": 2}),
    ("{ status = error && resource.service.name = \"recommendation\" } << { kind = server && resource.service.name = \"frontend\" }",
     {"0e757124": 1}),
    ("{ status = error } && { kind = producer }", {"28aa6f8c": 3}),
    ("{ name = \"charge card\" && span.payment.attempts = 3 } || { status = error && kind = internal }",
     {"28aa6f8c": 1, "0e757124": 1}),
    ("{ name = \"POST /v1/charges\" } | count() > 1", {"28aa6f8c": 3}),
    ("{ name = \"POST /v1/charges\" } | max(duration) > 220ms", {"1be3f180": 1, "1dc74912": 1, "2b897ff8": 1}),
    ("{ name = \"POST /v1/charges\" } | min(duration) < 50ms", {"28aa6f8c": 3}),
    ("{ name = \"POST /v1/charges\" } | avg(duration) > 210ms",
     {"1be3f180": 1, "1dc74912": 1, "2b897ff8": 1, "31fbe3a6": 1}),
    ("{ !(status = unset) && !(status = ok) && kind != client && kind != server }", {"0e757124": 1}),
]  # fmt: skip

#: Ordering and regexes on attributes kept only in the protobuf: DuckDB decodes the spans
#: that carry the key, ClickHouse reads the value by byte arithmetic, otel_traces has maps.
DECODED: list[tuple[str, dict[str, int]]] = [
    ("{ span.payment.attempts > 1 }", {"28aa6f8c": 1}),
    ("{ span.payment.attempts <= 1 && name = \"charge card\" }",
     dict.fromkeys([t for t in CHARGE_TRACES if t != "28aa6f8c"], 1)),
    ("{ span.payment.charge_id =~ \"ch_3Q7913.*\" }", {"28aa6f8c": 1}),
    # order.total is a double: 129.0, 155.7, 238.9 and 189.0 reach 129.
    ("{ span.order.total >= 129 }", {"1be3f180": 1, "1dc74912": 1, "78b022f9": 1, "a379f02f": 1}),
    ("{ span.order.total > 50 && span.order.total < 52 }", {"2b897ff8": 1}),
]  # fmt: skip


@pytest.fixture(scope="module", params=["duckdb", "chdb", "otel_traces"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    if request.param == "duckdb":
        duck = DuckDBStore(tmp_path_factory.mktemp("query") / "samples.duckdb")
        load_samples(duck.write)
        yield duck
        duck.close()
        return
    require_chdb()
    maker = StoreMaker("chdb")
    if request.param == "otel_traces":  # the samples as the Collector's exporter writes them
        from test_clickhouse_otel import create_exporter_tables, export, sample_spans

        create_exporter_tables(maker, "current")
        export(maker, sample_spans())
        clickhouse = maker(read_only=True)
    else:
        clickhouse = maker()
        load_samples(clickhouse.write)
    yield clickhouse
    maker.teardown()


def answer(store: Any, text: str) -> dict[str, int]:
    total, traces = store.find_traces(parse(text), *EVERYTHING, 100)
    assert total == len(traces)
    return {t["trace_id"][:8]: t["matched_spans"] for t in traces}


@pytest.mark.parametrize(("text", "expected"), TABLE, ids=[t for t, _ in TABLE])
def test_query_table(store: Any, text: str, expected: dict[str, int]) -> None:
    assert answer(store, text) == expected
    ids = store.query_trace_ids(parse(text), *EVERYTHING)
    assert [i[:8] for i in ids] == sorted(expected)


@pytest.mark.parametrize(("text", "expected"), DECODED, ids=[t for t, _ in DECODED])
def test_decoded_attributes(store: Any, text: str, expected: dict[str, int]) -> None:
    assert answer(store, text) == expected


def test_find_rows(store: Any) -> None:
    total, traces = store.find_traces(parse("{ status = error }"), *EVERYTHING, 2)
    assert total == 5 and len(traces) == 2
    assert traces[0]["start_unix_nano"] >= traces[1]["start_unix_nano"]
    _, failed = store.find_traces(
        parse(
            '{ trace:rootName = "POST /api/checkout" && status = error && kind = server '
            '&& resource.service.name = "frontend" }'
        ),
        *EVERYTHING,
        10,
    )
    (row,) = failed
    assert row["outcome"] == "failed" and row["root_service"] == "frontend"
    assert row["root_operation"] == "POST /api/checkout" and row["matched_spans"] == 1


def test_trace_id_prefix(store: Any) -> None:
    assert store.trace_ids_with_prefix("1dd722018e15") == ["1dd722018e153afe0b5a9c61b05aa28b"]
    assert store.trace_ids_with_prefix("00000000") == []
    assert len(store.trace_ids_with_prefix("1")) >= 2  # several start with 1: all listed


def test_compare_reads_every_layout_alike(store: Any) -> None:
    from analyzer.source import LocalSource

    result = LocalSource(store).compare("{ status = error }", None, *EVERYTHING)
    assert (result["selection"]["spans"], result["baseline"]["spans"]) == (11, 489)
    shares = {(a["key"], a["value"]): a for a in result["attributes"]}
    # Two of the 11 error spans carry HTTP 503; no other span does.
    row = shares[("span.http.response.status_code", "503")]
    assert (row["selection_spans"], row["baseline_spans"]) == (2, 0)
    assert shares[("kind", "client")]["selection_spans"] == 7
