"""``attributes_to_dict`` reads string values without a call (it runs for every span
read): whatever the values, it must answer exactly as the plain conversion of each
value does (hypothesis over every AnyValue kind, nested, with repeated keys)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)

from spanstore.otlp import anyvalue_to_python, attributes_to_dict

KEYS = st.sampled_from(["http.route", "db.system", "k", "", "k\x00", "é"])


def _scalar() -> st.SearchStrategy[AnyValue]:
    return st.one_of(
        st.just(AnyValue()),  # no value set
        st.text(max_size=8).map(lambda v: AnyValue(string_value=v)),
        st.booleans().map(lambda v: AnyValue(bool_value=v)),
        st.integers(-(2**63), 2**63 - 1).map(lambda v: AnyValue(int_value=v)),
        st.floats(allow_nan=False).map(lambda v: AnyValue(double_value=v)),
        st.binary(max_size=8).map(lambda v: AnyValue(bytes_value=v)),
    )


def _nested(children: st.SearchStrategy[AnyValue]) -> st.SearchStrategy[AnyValue]:
    array = st.lists(children, max_size=3).map(
        lambda values: AnyValue(array_value=ArrayValue(values=values))
    )
    kvlist = st.lists(st.tuples(KEYS, children), max_size=3).map(
        lambda pairs: AnyValue(
            kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in pairs])
        )
    )
    return st.one_of(array, kvlist)


VALUES = st.recursive(_scalar(), _nested, max_leaves=6)


def _plain(attributes: list[KeyValue]) -> dict[str, Any]:
    return {kv.key: anyvalue_to_python(kv.value) for kv in attributes}


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(KEYS, VALUES), max_size=8))
def test_same_as_the_plain_conversion(pairs: list[tuple[str, AnyValue]]) -> None:
    attributes = [KeyValue(key=key, value=value) for key, value in pairs]
    got = attributes_to_dict(attributes)
    want = _plain(attributes)
    assert got == want
    assert list(got) == list(want)  # the same key order (last repeated key wins)
    assert [type(v) for v in got.values()] == [type(v) for v in want.values()]


def test_string_values_and_the_others() -> None:
    attributes = [
        KeyValue(key="s", value=AnyValue(string_value="GET /a")),
        KeyValue(key="empty", value=AnyValue(string_value="")),
        KeyValue(key="unset", value=AnyValue()),
        KeyValue(key="n", value=AnyValue(int_value=7)),
        KeyValue(key="s", value=AnyValue(bool_value=True)),
    ]
    assert attributes_to_dict(attributes) == {"s": True, "empty": "", "unset": None, "n": 7}
