"""Contracts on the sample shop: init, check (entity and key), the API body, SPEC's JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analyzer.contracts import (
    ContractSyntaxError,
    check_request,
    contract_check,
    contract_init,
    parse_contract,
    render_check_text,
)
from analyzer.source import LocalSource, SourceError, open_database
from tests.conftest import assert_golden, sample_files

HOUR = 3_600_000_000_000
#: The incident hour of the sample shop: 2026-11-20 09:00-10:00 UTC.
INCIDENT = (1_795_165_200_000_000_000, 1_795_165_200_000_000_000 + HOUR)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSource]:
    from collector.files import read_trace_file
    from spanstore.duckdb_store import DuckDBStore

    path = tmp_path_factory.mktemp("contracts") / "shop.duckdb"
    with DuckDBStore(path) as store:
        for file in sample_files():
            for request in read_trace_file(file):
                store.write(request)
    source = open_database(str(path))
    yield source
    source.reader.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def happy(shop: LocalSource) -> str:
    """The happy order's contract: ORD-1003's sequence (checkout and fulfillment)."""
    return contract_init(shop, "order.id=ORD-1003")


def golden(name: str, text: str) -> None:
    assert_golden(f"contracts/{name}", text)


def check(source: LocalSource, text: str, **scope: Any) -> dict[str, Any]:
    return contract_check(source, [("happy.mmd", text)], **scope)


def kinds(result: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    return [(v["kind"], v["expected"], v["observed"]) for v in result["contracts"][0]["violations"]]


# --- init ---------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["ORD-1003", "ORD-1002", "ORD-1004", "ORD-1005"])
def test_init_is_deterministic_and_matches_its_golden(shop: LocalSource, order: str) -> None:
    text = contract_init(shop, f"order.id={order}")
    assert text == contract_init(shop, f"order.id={order}")
    golden(f"init-{order}.mmd", text)
    assert "-->>" not in text and " ms" not in text  # returns and timings dropped
    contract = parse_contract(text, f"{order}.mmd")  # what init writes, check reads
    assert contract.messages


def test_init_draws_retries_as_a_loop_and_failures_as_expected(shop: LocalSource) -> None:
    retried = contract_init(shop, "order.id=ORD-1002")
    assert "    loop retry\n        payment->>payprovider: POST /v1/charges\n    end\n" in retried
    assert retried.count("POST /v1/charges") == 1
    failed = contract_init(shop, "order.id=ORD-1005")
    assert "checkout-xorders_db: INSERT orders" in failed
    degraded = contract_init(shop, "order.id=ORD-1004")
    assert "par concurrent" in degraded and "\n    and\n" in degraded


@pytest.mark.parametrize(
    "order", ["ORD-1001", "ORD-1002", "ORD-1003", "ORD-1004", "ORD-1005", "ORD-1666"]
)
def test_every_entity_conforms_to_its_own_contract(shop: LocalSource, order: str) -> None:
    text = contract_init(shop, f"order.id={order}")
    result = check(shop, text, entity=f"order.id={order}")
    assert result["conforming"], kinds(result)


# --- check --------------------------------------------------------------------------------


def test_the_happy_contract_accepts_the_happy_orders(shop: LocalSource, happy: str) -> None:
    result = check(shop, happy, key="order.id", start=INCIDENT[0], end=INCIDENT[1])
    rows = {r["entity"]["value"]: r for r in result["contracts"][0]["entities"]}
    for order in ("ORD-1001", "ORD-1003", "ORD-1006", "ORD-1008"):
        assert rows[order]["conforming"], order
    assert not rows["ORD-1005"]["conforming"]
    assert result["conforming"] is False


def test_the_happy_contract_rejects_the_failed_order(shop: LocalSource, happy: str) -> None:
    result = check(shop, happy, entity="order.id=ORD-1005")
    found = kinds(result)
    statuses = [(e, o) for k, e, o in found if k == "status"]
    assert statuses == [
        ("client->frontend: POST /api/checkout", "client->frontend: POST /api/checkout"),
        ("frontend->checkout: POST /api/orders", "frontend->checkout: POST /api/orders"),
        ("checkout->orders-db: INSERT orders", "checkout->orders-db: INSERT orders"),
    ]
    missing = [e for k, e, _ in found if k == "missing"]
    assert missing[:3] == [
        "checkout->orders-db: INSERT order_items",
        "checkout->>order-events: publish order-events",  # async: ->>
        "order-events->>fulfillment: process order-events",
    ]
    assert len(missing) == 8  # nothing published, so no fulfillment
    unexpected = [o for k, _, o in found if k == "unexpected"]
    assert unexpected == [
        "checkout->payment: POST /api/payments/{paymentId}/void",
        "payment->payprovider: POST /v1/charges/{chargeId}/void",
        "payment->orders-db: UPDATE payments",
    ]
    violation = result["contracts"][0]["violations"][2]
    assert "DeadlockDetected" in violation["message"]
    assert violation["line"] and violation["trace_id"] and violation["span_id"]
    assert result["contracts"][0]["checked"] == 1 and result["contracts"][0]["conforming"] == 0


def test_a_retry_needs_a_loop(shop: LocalSource, happy: str) -> None:
    without = check(shop, happy, entity="order.id=ORD-1002")
    assert kinds(without) == [
        ("unexpected", None, "payment->payprovider: POST /v1/charges"),
        ("unexpected", None, "payment->payprovider: POST /v1/charges"),
    ]
    assert "loop" in without["contracts"][0]["violations"][0]["message"]  # a hint
    looped = happy.replace(
        "    payment->>payprovider: POST /v1/charges\n",
        "    loop retries\n        payment->>payprovider: POST /v1/charges\n    end\n",
    )
    assert looped != happy
    accepted = check(shop, looped, entity="order.id=ORD-1002")
    assert accepted["conforming"], kinds(accepted)
    assert check(shop, looped, entity="order.id=ORD-1003")["conforming"]  # one attempt is fine


def test_a_loop_does_not_excuse_a_failure_that_never_recovered(shop: LocalSource) -> None:
    contract = "sequenceDiagram\n    loop\n        checkout->>orders_db: INSERT orders\n    end\n"
    text = contract.replace("orders_db", "orders-db")
    result = contract_check(
        shop, [("c.mmd", text)], key="order.id", start=INCIDENT[0], end=INCIDENT[1]
    )
    statuses = [v for v in result["contracts"][0]["violations"] if v["kind"] == "status"]
    assert [v["entity"]["value"] for v in statuses] == ["ORD-1005"]
    assert "no later attempt in its loop succeeded" in statuses[0]["message"]


def test_blocks_opt_alt_and_kind(shop: LocalSource, happy: str) -> None:
    # ORD-1007 also looked at its order: an optional status lookup accepts it
    lookup = (
        "    opt status lookup\n"
        "        client->>frontend: GET /api/orders/{orderId}\n"
        "        frontend->>checkout: GET /api/orders/{orderId}\n"
        "        checkout->>orders_db: SELECT orders\n"
        "    end\n"
    )
    with_lookup = happy + lookup
    assert not check(shop, happy, entity="order.id=ORD-1007")["conforming"]
    assert check(shop, with_lookup, entity="order.id=ORD-1007")["conforming"]
    assert check(shop, with_lookup, entity="order.id=ORD-1003")["conforming"]
    # the contract draws the publish as a call: a kind violation
    sync = happy.replace("checkout-)order_events", "checkout->>order_events")
    found = kinds(check(shop, sync, entity="order.id=ORD-1003"))
    assert found == [
        (
            "kind",
            "checkout->order-events: publish order-events",
            "checkout->>order-events: publish order-events",
        )
    ]
    # alt: either payment path
    alt = happy.replace(
        "    payment->>payprovider: POST /v1/charges\n",
        "    alt card\n        payment->>payprovider: POST /v1/charges\n"
        "    else wallet\n        payment->>wallet: POST /pay\n    end\n",
    )
    assert check(shop, alt, entity="order.id=ORD-1003")["conforming"]


def test_order_violation(shop: LocalSource, happy: str) -> None:
    lines = happy.splitlines(keepends=True)
    one = lines.index("    checkout->>orders_db: INSERT orders\n")
    lines[one], lines[one + 1] = lines[one + 1], lines[one]
    found = kinds(check(shop, "".join(lines), entity="order.id=ORD-1003"))
    assert len(found) == 1 and found[0][0] == "order", found
    assert found[0][1] == found[0][2]
    # Of the two swapped calls the alignment keeps the one observed first (INSERT orders)
    # in place and reports the other as out of order: one answer, the same on every run.
    assert found[0][1] == "checkout->orders-db: INSERT order_items", found


def test_spec_json_shape(shop: LocalSource, happy: str) -> None:
    result = check(shop, happy, key="order.id", start=INCIDENT[0], end=INCIDENT[1])
    json.dumps(result)
    assert set(result["contracts"][0]) >= {"file", "checked", "conforming", "violations"}
    for violation in result["contracts"][0]["violations"]:
        assert set(violation) >= {"entity", "kind", "expected", "observed", "message"}
        assert set(violation["entity"]) == {"key", "value"}
        assert violation["kind"] in ("missing", "unexpected", "order", "kind", "status")
        for name in (violation["expected"], violation["observed"]):
            assert name is None or ("->" in name and ": " in name)
    report = result["contracts"][0]
    assert report["checked"] == len(report["entities"])
    assert report["conforming"] == sum(1 for r in report["entities"] if r["conforming"])


def test_default_window_is_the_day_before_the_newest_span(shop: LocalSource, happy: str) -> None:
    result = check(shop, happy, key="order.id")
    newest = shop.stats()["last_unix_nano"]
    assert result["scope"]["to_unix_nano"] == newest + 1
    assert result["scope"]["from_unix_nano"] == newest + 1 - 24 * HOUR
    assert [r["entity"]["value"] for r in result["contracts"][0]["entities"]] == ["ORD-1001"]


def test_key_check_equals_entity_by_entity(shop: LocalSource, happy: str) -> None:
    """The bulk path (one diagram per shape) finds what the per-entity path finds."""
    bulk = check(shop, happy, key="order.id", start=INCIDENT[0], end=INCIDENT[1])
    for row in bulk["contracts"][0]["entities"]:
        entity = f"order.id={row['entity']['value']}"
        one = check(shop, happy, entity=entity, start=INCIDENT[0], end=INCIDENT[1])
        mine = [v for v in bulk["contracts"][0]["violations"] if v["entity"] == row["entity"]]
        assert mine == one["contracts"][0]["violations"], entity


def test_text_report(shop: LocalSource, happy: str) -> None:
    text = render_check_text(check(shop, happy, entity="order.id=ORD-1005"))
    assert "✗ order.id=ORD-1005" in text
    assert "- checkout->orders-db: INSERT order_items" in text
    assert "+ checkout->payment: POST /api/payments/{paymentId}/void" in text
    assert "~ checkout->orders-db: INSERT orders" in text and "DeadlockDetected" in text
    assert text.rstrip().endswith("FAILED: contract violations found")
    ok = render_check_text(check(shop, happy, entity="order.id=ORD-1003"))
    assert ok.rstrip().endswith("conforms to every contract")
    many = render_check_text(check(shop, happy, key="order.id", start=INCIDENT[0], end=INCIDENT[1]))
    assert "conform: ORD-1001, ORD-1003" in many


def test_errors(shop: LocalSource, happy: str) -> None:
    with pytest.raises(SourceError, match="either --entity"):
        contract_check(shop, [("a.mmd", happy)])
    with pytest.raises(SourceError) as missing:
        check(shop, happy, entity="order.id=ORD-0000")
    assert missing.value.status == 404
    with pytest.raises(ContractSyntaxError, match=r"^bad\.mmd:2:"):
        contract_check(
            shop, [("bad.mmd", "sequenceDiagram\n  a=>b: x\n")], entity="order.id=ORD-1003"
        )


def test_api_body(shop: LocalSource, happy: str) -> None:
    raw = check_request(shop, happy.encode(), entity="order.id=ORD-1005", file="happy.mmd")
    assert raw["contracts"][0]["file"] == "happy.mmd"
    body = json.dumps(
        {"contracts": [{"file": "a.mmd", "text": happy}, {"file": "b.mmd", "text": happy}]}
    )
    both = check_request(shop, body.encode(), key="order.id", start=INCIDENT[0], end=INCIDENT[1])
    assert [c["file"] for c in both["contracts"]] == ["a.mmd", "b.mmd"]
    with pytest.raises(SourceError):
        check_request(shop, b"", entity="order.id=ORD-1005")


def test_http_source_without_the_endpoint_falls_back(tmp_path: Path, happy: str) -> None:
    """Through a running server's query API: until the contracts endpoint is wired the
    check reads the diagrams through the API and gives the same answer."""
    from analyzer.source import HttpSource
    from collector.files import read_trace_file
    from spanstore.duckdb_store import DuckDBStore
    from tests.conftest import start_server

    db = tmp_path / "served.duckdb"
    with DuckDBStore(db) as store:
        for file in sample_files():
            for request in read_trace_file(file):
                store.write(request)
    local = open_database(str(db))
    expected = check(local, happy, key="order.id", start=INCIDENT[0], end=INCIDENT[1])
    local.reader.close()  # type: ignore[attr-defined]
    server = start_server(db)
    try:
        remote = HttpSource(server.api)
        got = check(remote, happy, key="order.id", start=INCIDENT[0], end=INCIDENT[1])
        assert kinds(got) == kinds(expected)
        assert got["contracts"][0]["conforming"] == expected["contracts"][0]["conforming"]
        one = check(remote, happy, entity="order.id=ORD-1005")
        assert len(one["contracts"][0]["violations"]) == 14
    finally:
        server.stop()


def test_the_reader_method_and_the_fallbacks_agree(shop: LocalSource) -> None:
    """`entity_rows` runs the store's bulk query (``entity_traces_in_range``), a reader
    method of that name on any reader, or reads per value through the SpanReader
    protocol."""
    from analyzer.contracts.fetch import entity_rows

    store = shop.reader
    direct = entity_rows(store, "order.id", *INCIDENT)

    class WithMethod:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def entity_traces_in_range(self, key: str, start: int, end: int) -> list[Any]:
            return store.entity_traces_in_range(key, start, end)  # type: ignore[attr-defined,no-any-return]

    class Plain:
        def __getattr__(self, name: str) -> Any:
            if name == "entity_traces_in_range":
                raise AttributeError(name)
            return getattr(store, name)

    assert entity_rows(WithMethod(), "order.id", *INCIDENT) == direct  # type: ignore[arg-type]
    plain = entity_rows(Plain(), "order.id", *INCIDENT)  # type: ignore[arg-type]
    assert {v: sorted(r.trace_id for r in rows) for v, rows in plain.items()} == {
        v: sorted(r.trace_id for r in rows) for v, rows in direct.items()
    }
    assert all(row.shape for rows in direct.values() for row in rows)
