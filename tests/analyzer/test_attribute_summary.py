"""``attribute_summary`` visits only the summary keys a span carries (it runs for every
message drawn): for any spans, it must answer what visiting every summary key in order
answers (hypothesis), the first span winning per key."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.diagram.semantics import SUMMARY_KEYS, attribute_summary
from analyzer.diagram.text import ATTRIBUTE_LIMIT, label_text
from spanstore.model import Span

KEYS = st.sampled_from([*SUMMARY_KEYS, "span.name", "customer.id", "http.method", ""])
VALUES = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.text(min_size=ATTRIBUTE_LIMIT, max_size=ATTRIBUTE_LIMIT + 5),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.binary(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


def _every_key_in_order(*spans: Span) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    for span in spans:
        if "span.name" not in seen:
            seen["span.name"] = label_text(span.name, ATTRIBUTE_LIMIT)
        for key in SUMMARY_KEYS:
            if key in seen:
                continue
            value = span.attributes.get(key)
            if value is None or isinstance(value, (list, dict, bytes)):
                continue
            seen[key] = label_text(value, ATTRIBUTE_LIMIT)
    return tuple(seen.items())


def _span(name: str, attributes: dict[str, Any]) -> Span:
    return Span("t", "s", None, name, "CLIENT", 0, 1, "svc", attributes=attributes)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(max_size=6), st.dictionaries(KEYS, VALUES, max_size=10)),
        min_size=1,
        max_size=2,
    )
)
def test_same_as_every_key_in_order(spans: list[tuple[str, dict[str, Any]]]) -> None:
    made = [_span(name, attributes) for name, attributes in spans]
    assert attribute_summary(*made) == _every_key_in_order(*made)


def test_summary_key_order_not_attribute_order() -> None:
    client = _span("GET", {"server.address": "db", "http.route": "/a", "db.system": "pg"})
    server = _span("srv", {"http.route": "/b", "http.request.method": "GET", "x": "y"})
    assert attribute_summary(client, server) == (
        ("span.name", "GET"),
        ("http.route", "/a"),
        ("db.system", "pg"),
        ("server.address", "db"),
        ("http.request.method", "GET"),
    )
