"""Trace files for ``seqtrace load``: every real file in shared/real_traces, each format,
the Jaeger -> OTLP mapping field by field, and one-line errors for what is not a trace."""

from __future__ import annotations

import base64
import gzip
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.trace.v1 import trace_pb2
from test_collector_support import make_request, open_store

from collector.files import (
    TraceFileError,
    batched,
    jaeger_trace_to_request,
    read_trace_file,
    requests_from_json,
)
from spanstore.model import Span
from spanstore.otlp import request_to_json, spans_from_request

REAL = Path(__file__).resolve().parents[1] / "data" / "real_traces"

# From shared/real_traces/README.md: file -> (spans, services, error spans, events)
REAL_FILES = {
    "otlp-proto-example-trace.json": (1, 1, 0, 0),
    "jaeger-petclinic-n-plus-one.json": (17, 2, 0, 0),
    "jaeger-issue115-follows-from.json": (2, 1, 0, 0),
    "jaegertracing-jaeger-hotrod-n_plus_one_full_concurrent.json": (40, 6, 3, 52),
    "jaegertracing-jaeger-otel-demo-error_timeout_masked.json": (26, 5, 1, 15),
    "jaegertracing-jaeger-ui-hotrod-v3-getTrace-response.json": (40, 6, 3, 52),
}


def spans_of(path: Path | str) -> list[Span]:
    return [span for request in read_trace_file(path) for span in spans_from_request(request)]


def test_every_real_file_is_listed() -> None:
    assert {p.name for p in REAL.glob("*.json")} == set(REAL_FILES)


@pytest.mark.parametrize("name", sorted(REAL_FILES))
def test_real_trace_file_loads_with_the_readme_counts(name: str, tmp_path: Path) -> None:
    spans_expected, services, errors, events = REAL_FILES[name]
    spans = spans_of(REAL / name)
    assert len(spans) == spans_expected
    assert len({s.service_name for s in spans}) == services
    assert sum(s.is_error for s in spans) == errors
    assert sum(len(s.events) for s in spans) == events
    for span in spans:
        assert len(span.trace_id) == 32 and span.trace_id == span.trace_id.lower()
        assert len(span.span_id) == 16
        assert span.end_unix_nano >= span.start_unix_nano > 10**18  # nanoseconds
    # And the real store takes every span.
    with open_store(tmp_path) as store:
        for request in read_trace_file(REAL / name):
            result = store.write(request, 10)
            assert result.rejected == 0
        assert store.stats().spans == spans_expected


def test_otlp_example_upper_case_ids_and_numeric_times() -> None:
    (span,) = spans_of(REAL / "otlp-proto-example-trace.json")
    doc = orjson.loads((REAL / "otlp-proto-example-trace.json").read_bytes())
    raw = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span.trace_id == raw["traceId"].lower()
    assert span.start_unix_nano == int(raw["startTimeUnixNano"])
    assert span.kind == "SERVER"
    assert span.service_name == "my.service"


def test_petclinic_31_digit_trace_id_is_padded_and_tree_is_whole() -> None:
    spans = spans_of(REAL / "jaeger-petclinic-n-plus-one.json")
    assert {s.trace_id for s in spans} == {"0df84e36b9e2ee3815d07f0867a5be1f"}
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.parent_span_id is None]
    assert (len(roots) == 1 and roots[0].name == "GET /owners") or roots[0].kind == "SERVER"
    assert all(s.parent_span_id in ids for s in spans if s.parent_span_id)
    assert sum(s.name == "HikariProxyPreparedStatement.executeQuery" for s in spans) == 14
    query = next(s for s in spans if s.name == "HikariProxyPreparedStatement.executeQuery")
    assert query.attributes["database"] == "jdbc:hsqldb:mem:testdb"
    assert "span.kind" not in roots[0].attributes  # folded into the kind
    assert not any(s.links for s in spans)  # CHILD_OF parents are not repeated as links


def test_follows_from_becomes_parent_and_link() -> None:
    spans = {s.name: s for s in spans_of(REAL / "jaeger-issue115-follows-from.json")}
    child, root = spans["thread"], spans["demo"]
    assert child.parent_span_id == root.span_id == "ea7cfaca83f0724b"
    (link,) = child.links
    assert (link.trace_id, link.span_id) == (root.trace_id, root.span_id)
    assert link.attributes == {"opentracing.ref_type": "follows_from"}
    assert child.start_unix_nano == 1509533706521220 * 1000
    assert child.end_unix_nano - child.start_unix_nano == 1173 * 1000
    assert root.parent_span_id is None


def test_v3_envelope_keeps_scopes() -> None:
    spans = spans_of(REAL / "jaegertracing-jaeger-ui-hotrod-v3-getTrace-response.json")
    assert {"otelhttp", "mysql", "redis-manual"} <= {
        s.scope_name.rsplit("/", 1)[-1] for s in spans
    } | {s.scope_name for s in spans}


# ------------------------------------------------------------------- Jaeger mapping

JAEGER_TRACE: dict[str, Any] = {
    "traceID": "abc123def4567890",  # a 64-bit Jaeger trace id
    "spans": [
        {
            "traceID": "abc123def4567890",
            "spanID": "1",
            "operationName": "POST /orders",
            "references": [],
            "startTime": 1700000000000001,
            "duration": 2500,
            "flags": 1,
            "processID": "p1",
            "tags": [
                {"key": "span.kind", "type": "string", "value": "server"},
                {"key": "http.status_code", "type": "int64", "value": 500},
                {"key": "order.id", "type": "string", "value": "o-42"},
                {"key": "retry", "type": "bool", "value": True},
                {"key": "ratio", "type": "float64", "value": 0.25},
                {"key": "blob", "type": "binary", "value": base64.b64encode(b"\x00\x01").decode()},
                {"key": "big", "type": "int64", "value": "9007199254740993"},
                {"key": "error", "type": "bool", "value": True},
                {"key": "otel.status_description", "type": "string", "value": "boom"},
                {"key": "otel.library.name", "type": "string", "value": "my-lib"},
                {"key": "otel.library.version", "type": "string", "value": "1.2.3"},
                {"key": "w3c.tracestate", "type": "string", "value": "vendor=x"},
            ],
            "logs": [
                {
                    "timestamp": 1700000000000100,
                    "fields": [
                        {"key": "event", "type": "string", "value": "exception"},
                        {"key": "exception.type", "type": "string", "value": "ValueError"},
                        {"key": "attempt", "type": "int64", "value": 2},
                    ],
                },
                {"timestamp": 1700000000000200, "fields": [{"key": "msg", "value": "no name"}]},
            ],
        },
        {
            "traceID": "abc123def4567890",
            "spanID": "00000000000000b2",
            "operationName": "SELECT orders",
            "references": [
                {"refType": "CHILD_OF", "traceID": "abc123def4567890", "spanID": "1"},
                {
                    "refType": "FOLLOWS_FROM",
                    "traceID": "ffffffffffffffff0000000000000001",
                    "spanID": "c3",
                },
            ],
            "startTime": 1700000000000500,
            "duration": 100,
            "process": {
                "serviceName": "db",
                "tags": [{"key": "db.system", "type": "string", "value": "postgresql"}],
            },
            "tags": [
                {"key": "span.kind", "type": "string", "value": "client"},
                {"key": "otel.status_code", "type": "string", "value": "OK"},
                {"key": "error", "type": "bool", "value": True},
            ],
        },
    ],
    "processes": {
        "p1": {
            "serviceName": "orders",
            "tags": [
                {"key": "hostname", "type": "string", "value": "host-1"},
                {"key": "pid", "type": "int64", "value": 4242},
            ],
        }
    },
}


def test_jaeger_mapping_field_by_field() -> None:
    request = jaeger_trace_to_request(JAEGER_TRACE)
    spans = {s.name: s for s in spans_from_request(request)}
    server, client = spans["POST /orders"], spans["SELECT orders"]

    assert server.trace_id == "0000000000000000abc123def4567890"
    assert server.span_id == "0000000000000001"
    assert server.kind == "SERVER"
    assert server.start_unix_nano == 1700000000000001000
    assert server.duration_ns == 2_500_000
    assert server.flags == 1
    assert server.status_code == "ERROR" and server.status_message == "boom"
    assert server.attributes == {
        "http.status_code": 500,
        "order.id": "o-42",
        "retry": True,
        "ratio": 0.25,
        "blob": b"\x00\x01",
        "big": 9007199254740993,
    }
    assert server.scope_name == "my-lib" and server.scope_version == "1.2.3"
    assert server.trace_state == "vendor=x"
    assert server.service_name == "orders"
    assert server.resource_attributes == {
        "service.name": "orders",
        "hostname": "host-1",
        "pid": 4242,
    }
    exception, unnamed = server.events
    assert exception.name == "exception"
    assert exception.time_unix_nano == 1700000000000100000
    assert exception.attributes == {"exception.type": "ValueError", "attempt": 2}
    assert unnamed.name == "" and unnamed.attributes == {"msg": "no name"}

    # otel.status_code wins over the error tag; the inline process is its own resource.
    assert client.status_code == "OK"
    assert client.kind == "CLIENT"
    assert client.parent_span_id == server.span_id
    (link,) = client.links
    assert link.trace_id == "ffffffffffffffff0000000000000001"
    assert link.span_id == "00000000000000c3"
    assert link.attributes == {"opentracing.ref_type": "follows_from"}
    assert client.service_name == "db"
    assert client.resource_attributes == {"service.name": "db", "db.system": "postgresql"}
    assert len(request.resource_spans) == 2


def test_jaeger_tag_with_wrong_type_is_kept_as_string() -> None:
    trace = orjson.loads(orjson.dumps(JAEGER_TRACE))
    trace["spans"][0]["tags"] = [{"key": "n", "type": "int64", "value": "not-a-number"}]
    (span, _) = spans_from_request(jaeger_trace_to_request(trace))
    assert span.attributes == {"n": "not-a-number"}


# -------------------------------------------------------------------------- formats


def test_jsonl_gzip_protobuf_and_lists(tmp_path: Path) -> None:
    one = request_to_json(make_request(spans=2, first=1))
    two = request_to_json(make_request(spans=3, first=10))

    jsonl = tmp_path / "spans.jsonl"
    jsonl.write_bytes(orjson.dumps(one) + b"\n\n" + orjson.dumps({"result": two}) + b"\n")
    assert len(spans_of(jsonl)) == 5

    gz = tmp_path / "spans.json.gz"
    gz.write_bytes(gzip.compress(orjson.dumps(one)))
    assert len(spans_of(gz)) == 2
    renamed = tmp_path / "download"  # detected by content, not by name
    renamed.write_bytes(gz.read_bytes())
    assert len(spans_of(renamed)) == 2

    for suffix in (".pb", ".binpb"):
        pb = tmp_path / f"spans{suffix}"
        traces = trace_pb2.TracesData()
        traces.ParseFromString(make_request(spans=4).SerializeToString())
        pb.write_bytes(traces.SerializeToString())
        assert len(spans_of(pb)) == 4

    jaeger_list = tmp_path / "traces.json"
    jaeger_list.write_bytes(orjson.dumps({"data": [JAEGER_TRACE, JAEGER_TRACE], "total": 2}))
    assert len(read_trace_file(jaeger_list)) == 2
    bare_list = tmp_path / "list.json"
    bare_list.write_bytes(orjson.dumps([JAEGER_TRACE, one]))
    assert len(spans_of(bare_list)) == 4

    empty = tmp_path / "empty.json"
    empty.write_bytes(b'{"data": [], "total": 0}')
    assert read_trace_file(empty) == []


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("notes.txt", b"hello, world\n", "not a trace file"),
        ("thing.json", b'{"foo": 1}', "unrecognised JSON object"),
        ("broken.json", b'{"resourceSpans": [', "malformed JSON"),
        (
            "bad-id.json",
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
            "not hex",
        ),
        ("garbage.pb", b"\x0a\xff\xff\xff\xff\x0f", "not a valid OTLP protobuf"),
        ("empty.json", b"", "empty file"),
        ("bad.jsonl", b'{"resourceSpans": []}\n{oops\n', "bad.jsonl:2"),
        ("corrupt.json.gz", b"\x1f\x8b\x08\x00broken", "corrupt gzip"),
        (
            "jaeger-bad.json",
            b'{"traceID": "1", "spans": [{"spanID": "zz", "startTime": 1}]}',
            "spanID",
        ),
        ("number.json", b"42", "not a trace file"),
        ("strings.json", b'["a"]', "not a trace document"),
    ],
)
def test_bad_files_get_one_line_errors_naming_the_file(
    tmp_path: Path, name: str, content: bytes, fragment: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TraceFileError) as info:
        read_trace_file(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert fragment in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TraceFileError, match="cannot read"):
        read_trace_file(tmp_path / "nope.json")


def test_sample_counts_by_kind() -> None:
    spans = spans_of(REAL / "jaegertracing-jaeger-otel-demo-error_timeout_masked.json")
    assert set(Counter(s.kind for s in spans)) == {"INTERNAL", "SERVER", "CLIENT"}


# ------------------------------------------------------------------------------ fuzzing

_JAEGER_KEYS = [
    "data",
    "result",
    "resourceSpans",
    "traceID",
    "spanID",
    "spans",
    "processes",
    "processID",
    "references",
    "refType",
    "tags",
    "logs",
    "fields",
    "key",
    "type",
    "value",
    "startTime",
    "duration",
    "timestamp",
    "serviceName",
    "process",
    "operationName",
    "flags",
]
_DOCS = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.sampled_from(["CHILD_OF", "FOLLOWS_FROM", "int64", "bool", "binary", "p1", "ab12", "zz"])
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(_JAEGER_KEYS), inner, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(doc=_DOCS)
def test_any_json_loads_or_fails_with_a_trace_file_error(doc: Any) -> None:
    try:
        requests = requests_from_json(doc)
    except TraceFileError as exc:
        assert "\n" not in str(exc)
        return
    for request in requests:
        request.SerializeToString()  # a well-formed protobuf message


_VALUES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["1", "00ff", "abc123def4567890", "2992f2a5b5d037a8aabffd08ef384237"])
)
_TAGS = st.lists(
    st.fixed_dictionaries(
        {"key": st.sampled_from(["span.kind", "error", "otel.status_code", "k", "event"])},
        optional={
            "type": st.sampled_from(["string", "bool", "int64", "float64", "binary", "x"]),
            "value": _VALUES,
        },
    ),
    max_size=3,
)
_JAEGER_SPAN = st.fixed_dictionaries(
    {
        "spanID": st.sampled_from(["1", "00ff", "abc123def4567890"]) | _VALUES,
        "startTime": st.integers(min_value=0, max_value=2**52) | _VALUES,
    },
    optional={
        "traceID": _VALUES,
        "duration": _VALUES,
        "operationName": _VALUES,
        "processID": st.sampled_from(["p1", "p2"]),
        "flags": _VALUES,
        "tags": _TAGS,
        "references": st.lists(
            st.fixed_dictionaries(
                {"spanID": _VALUES},
                optional={
                    "refType": st.sampled_from(["CHILD_OF", "FOLLOWS_FROM"]),
                    "traceID": _VALUES,
                },
            ),
            max_size=2,
        ),
        "logs": st.lists(
            st.fixed_dictionaries({"timestamp": _VALUES}, optional={"fields": _TAGS}), max_size=2
        ),
    },
)


@settings(max_examples=300, deadline=None)
@given(
    spans=st.lists(_JAEGER_SPAN, max_size=3),
    trace_id=st.just("abc123def4567890") | _VALUES,
    process_tags=_TAGS,
)
def test_any_jaeger_shaped_trace_loads_or_fails_cleanly(
    spans: list[dict[str, Any]], trace_id: Any, process_tags: list[dict[str, Any]]
) -> None:
    doc = {
        "data": [
            {
                "traceID": trace_id,
                "spans": spans,
                "processes": {"p1": {"serviceName": "svc", "tags": process_tags}},
            }
        ]
    }
    try:
        requests = requests_from_json(doc)
    except TraceFileError as exc:
        assert "\n" not in str(exc)
        return
    for request in requests:
        request.SerializeToString()


def test_batched_merges_small_requests_and_keeps_every_span(tmp_path: Path) -> None:
    requests = [make_request(spans=3, first=10 * n) for n in range(1, 8)] + [
        make_request(spans=20, first=1000)
    ]
    batches = list(batched(requests, max_spans=10))
    assert [sum(1 for _ in spans_from_request(b)) for b in batches] == [9, 9, 3, 20]
    with open_store(tmp_path) as store:
        for batch in batches:
            store.write(batch, 10)
        assert store.stats().spans == 41


def test_a_tag_integer_past_64_bits_is_kept_as_text() -> None:
    """Found by the property above: orjson refuses such integers; the value must survive."""
    big = 2**70
    doc = {
        "data": [
            {
                "traceID": "abc123def4567890",
                "spans": [
                    {
                        "traceID": "abc123def4567890",
                        "spanID": "1",
                        "operationName": "op",
                        "startTime": 1,
                        "duration": 1,
                        "processID": "p1",
                        "tags": [{"key": "n", "type": "int64", "value": big}],
                    }
                ],
                "processes": {"p1": {"serviceName": "svc", "tags": [{"key": "m", "value": [big]}]}},
            }
        ]
    }
    (request,) = requests_from_json(doc)
    resource_spans = request.resource_spans[0]
    resource_tags = {kv.key: kv.value for kv in resource_spans.resource.attributes}
    span_tags = {kv.key: kv.value for kv in resource_spans.scope_spans[0].spans[0].attributes}
    assert span_tags["n"].string_value == str(big)
    assert resource_tags["m"].string_value == f"[{big}]"
