"""Contract files: the Mermaid subset parses; anything outside it fails at its line and column."""

from __future__ import annotations

import pytest

from analyzer.contracts import ContractSyntaxError, parse_contract
from analyzer.contracts.model import CBlock, CMessage

GOOD = """\
---
title: checkout
---
%% a comment
%%{init: {"theme": "neutral"}}%%
sequenceDiagram
    autonumber
    title Checkout
    actor client
    participant orders_db@{ "type": "database" } as orders-db
    database cache as redis-cache
    queue events as order-events
    box Shop
    participant frontend as frontend
    end
    client->>+frontend: POST /api/checkout
    activate frontend
    Note over client,frontend: notes are ignored
    frontend->checkout: POST /api/orders
    checkout-->>-frontend: 201
    checkout--xfrontend: a failed return is read and dropped
    rect rgb(240, 240, 255)
        checkout->>orders_db: INSERT orders
    end
    loop retry
        payment->>payprovider: POST /v1/charges
    end
    opt cache warm
        checkout->>cache: GET
    end
    alt published
        checkout-)events: publish order-events
    else broker down
        checkout-xevents: publish order-events
    end
    par
        frontend->>cart: GetCart; frontend->>recs: ListRecommendations
    and
        frontend--)audit: page viewed
    end
    api-xyz->>orders-db: hyphens #35;1 #lt;b#gt; #59; done
"""


def test_the_subset_parses() -> None:
    contract = parse_contract(GOOD, "checkout.mmd")
    names = [(m.source, m.target, m.label, m.kind, m.expect) for m in contract.messages]
    assert names == [
        ("client", "frontend", "POST /api/checkout", "sync", "ok"),
        ("frontend", "checkout", "POST /api/orders", "sync", "ok"),
        ("checkout", "orders_db", "INSERT orders", "sync", "ok"),
        ("payment", "payprovider", "POST /v1/charges", "sync", "ok"),
        ("checkout", "cache", "GET", "sync", "ok"),
        ("checkout", "events", "publish order-events", "async", "ok"),
        ("checkout", "events", "publish order-events", "any", "error"),
        ("frontend", "cart", "GetCart", "sync", "ok"),
        ("frontend", "recs", "ListRecommendations", "sync", "ok"),
        ("frontend", "audit", "page viewed", "async", "ok"),
        ("api-xyz", "orders-db", "hyphens #1 <b> ; done", "sync", "ok"),
    ]
    kinds = [item.kind for item in contract.items if isinstance(item, CBlock)]
    assert kinds == ["loop", "opt", "alt", "par"]
    par = next(item for item in contract.items if isinstance(item, CBlock) and item.kind == "par")
    assert [len(branch) for branch in par.branches] == [2, 1]
    shapes = {p.alias: (p.shape, p.label) for p in contract.participants}
    assert shapes["orders_db"] == ("database", "orders-db")
    assert shapes["cache"] == ("database", "redis-cache")
    assert shapes["events"] == ("queue", "order-events")
    assert shapes["client"] == ("actor", None)
    assert contract.loops[3] == (0,) and contract.loop_members[0] == frozenset({3})
    first = contract.messages[0]
    assert isinstance(first, CMessage) and (first.line, first.column) == (16, 11)


# (file text, line, column, message part)
BAD = [
    ("sequenceDiagram\n    A-->>>B: x\n", 2, 6, "unknown arrow '-->>>'; use ->>, -->>, -) or -x"),
    ("sequenceDiagram\n    A->>>B: x\n", 2, 6, "unknown arrow '->>>'"),
    (
        "sequenceDiagram\n  A<<->>B: x\n",
        2,
        4,
        "bidirectional arrow '<<->>' is outside the contract subset",
    ),
    ("sequenceDiagram\n  A-|\\B: x\n", 2, 4, "half arrow '-|\\'"),
    ("flowchart LR\n  A --> B\n", 1, 1, "expected 'sequenceDiagram' first"),
    ("\n\n", 1, 1, "empty contract"),
    ("sequenceDiagram extra\n", 1, 17, "nothing may follow 'sequenceDiagram'"),
    ("sequenceDiagram\n  loop retry\n    A->>B: x\n", 2, 3, "'loop' is never closed with 'end'"),
    ("sequenceDiagram\n  A->>B: x\n  end\n", 3, 3, "'end' without an open block"),
    ("sequenceDiagram\n  loop\n  A->>B: x\n  end now\n", 4, 7, "nothing may follow 'end'"),
    (
        "sequenceDiagram\n  A->>B: x\n  else\n",
        3,
        3,
        "'else' belongs to 'alt' blocks, found outside any block",
    ),
    (
        "sequenceDiagram\n  alt x\n  A->>B: y\n  and\n  end\n",
        4,
        3,
        "'and' belongs to 'par' blocks, found inside 'alt'",
    ),
    (
        "sequenceDiagram\n  critical x\n  A->>B: y\n  end\n",
        2,
        3,
        "'critical' blocks are outside the contract subset",
    ),
    ("sequenceDiagram\n  break x\n  end\n", 2, 3, "'break' blocks are outside"),
    ("sequenceDiagram\n  A->>B\n", 2, 8, "a message needs a label"),
    ("sequenceDiagram\n  ->>B: x\n", 2, 3, "missing participant before '->>'"),
    ("sequenceDiagram\n  A->>: x\n", 2, 4, "missing participant after '->>'"),
    ("sequenceDiagram\n  A->>B: issue #5\n", 2, 16, "'#' starts a comment in Mermaid"),
    ("sequenceDiagram\n  hello world\n", 2, 3, "unknown statement 'hello'"),
    ("sequenceDiagram\n  participant\n", 2, 3, "'participant' needs a name"),
    ("sequenceDiagram\n  participant a:b\n  a->>c: x\n", 2, 15, "may not contain ':'"),
    ('sequenceDiagram\n  participant db@{ "type": "database" \n', 2, 17, "'@{' is never closed"),
    ("sequenceDiagram\n  participant a\n  participant a\n", 3, 15, "declared twice"),
    ("sequenceDiagram\n  A-->>B: only a return\n", 2, 1, "draws no call or async message"),
    ("sequenceDiagram\n  sequenceDiagram\n", 2, 3, "may appear only once"),
    ("---\ntitle: x\nsequenceDiagram\n", 1, 1, "front matter opened with '---' is never closed"),
    (
        "sequenceDiagram\n  par\n  A->>B: 1\n" + "  and\n  A->>B: n\n" * 6 + "  end\n",
        14,
        3,
        "at most 6 branches",
    ),
]


@pytest.mark.parametrize(("text", "line", "column", "message"), BAD)
def test_errors_name_line_and_column(text: str, line: int, column: int, message: str) -> None:
    with pytest.raises(ContractSyntaxError) as caught:
        parse_contract(text, "order.mmd")
    error = caught.value
    assert (error.line, error.column) == (line, column), str(error)
    assert message in error.message
    assert str(error).startswith(f"order.mmd:{line}:{column}: ")
    assert "\n" not in str(error)
    assert isinstance(error, ValueError)  # the CLI exits 2 and the API answers 400


def test_the_brief_example() -> None:
    text = "sequenceDiagram\n" + "  a->>b: x\n" * 5 + "    a-->>>b: x\n"
    with pytest.raises(
        ContractSyntaxError,
        match=r"^order\.mmd:7:6: unknown arrow '-->>>'; use ->>, -->>, -\) or -x$",
    ):
        parse_contract(text, "order.mmd")


def test_returns_and_styling_do_not_count() -> None:
    plain = parse_contract("sequenceDiagram\n  a->>b: x\n  b-->>a: ok\n", "a.mmd")
    styled = parse_contract(
        "sequenceDiagram\n  autonumber\n  rect rgba(0,0,0,0.1)\n  a->>b: x\n  end\n"
        "  Note left of a: hi\n",
        "b.mmd",
    )
    assert [(m.source, m.target, m.label) for m in plain.messages] == [
        (m.source, m.target, m.label) for m in styled.messages
    ]


def test_statement_separator_respects_entity_codes() -> None:
    contract = parse_contract("sequenceDiagram\n  a->>b: x#59;y; b->>c: z\n", "s.mmd")
    assert [m.label for m in contract.messages] == ["x;y", "z"]
    assert contract.messages[1].column == 19  # the arrow
