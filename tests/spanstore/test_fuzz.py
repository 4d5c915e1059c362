"""A bounded fuzz pass over the decoders and the diagram renderers (hypothesis).

Every file in ``tests/fuzz/corpus/`` is replayed as it is, then mutated: bytes flipped,
inserted, cut and spliced (protobuf), values replaced anywhere in the document (JSON), span
trees broken (cycles, self-parents, parents in other traces, absurd times) for the
diagrams. The properties: decoding either succeeds or fails with the one documented error
(never a crash), whatever decodes goes through the ingest policy and into the store, and
every diagram renders in every format, with well-formed SVG.

``SEQTRACE_FUZZ_EXAMPLES`` raises the number of examples per target (default 100, a few
seconds); ``tests/fuzz/fuzz.py run`` fuzzes for minutes and saves failing inputs to the
corpus, which this file then replays on every run.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from analyzer.diagram import FORMATS, build_diagram, render, to_dict
from spanstore.base import InvalidRequest
from spanstore.decode.pool import prepare_serialized
from spanstore.decode.prepare import KeyClassifier, prepare_request
from spanstore.duckdb_store import DuckDBStore
from spanstore.model import Span
from spanstore.otlp import OtlpJsonError, request_from_json, spans_from_request
from spanstore.policy import IngestPolicy, Limits, PolicyEngine, RedactionRule

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus"
JSON_SEEDS = sorted((CORPUS / "otlp_json").glob("*.json"))
PROTO_SEEDS = sorted((CORPUS / "otlp_proto").glob("*.binpb"))
EXAMPLES = int(os.environ.get("SEQTRACE_FUZZ_EXAMPLES", "100"))
SAVE = bool(os.environ.get("SEQTRACE_FUZZ_SAVE"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
POLICY = IngestPolicy(
    limits=Limits(max_attributes=16, max_value_bytes=256, max_depth=3),
    rules=(
        RedactionRule("emails", ("*.email",), "hash"),
        RedactionRule("drop-x", ("x",), "drop"),
        RedactionRule("mask-s", ("s*",), "mask", keep_last=2),
    ),
    hash_key=b"fuzzing-hash-key-0123",
)


def keys() -> KeyClassifier:
    return KeyClassifier(frozenset({"order.id", "s"}))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBStore]:
    with DuckDBStore(tmp_path_factory.mktemp("fuzz") / "fuzz.duckdb", policy=POLICY) as s:
        yield s


def saved(target: str, data: bytes, suffix: str) -> None:
    if SAVE:
        from tests.fuzz.fuzz import save_crash

        save_crash(target, data, suffix)


# ------------------------------------------------------------------------------ targets


def check_protobuf(data: bytes, store: DuckDBStore | None = None) -> None:
    """Bytes from the wire: parse + policy + columns, then (optionally) the store."""
    try:
        try:
            batch = prepare_serialized(data, keys(), PolicyEngine(POLICY))
        except InvalidRequest:
            return
        # Every span of the request is accounted for, once: stored, rejected or a repeat.
        request = ExportTraceServiceRequest.FromString(data)
        sent = sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        assert batch.size + batch.rejected + batch.duplicates == sent
        assert len(batch.span_keys) == batch.size
        assert batch.messages or not batch.rejected  # a rejection always says why
        if store is not None:
            store.write(data)
    except Exception:
        saved("otlp_proto", data, ".binpb")
        raise


def check_json(data: bytes) -> None:
    """An OTLP/HTTP JSON body: orjson, OTLP/JSON, the policy, the read model, a diagram."""
    try:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        try:
            request = request_from_json(doc)
        except (OtlpJsonError, RecursionError):
            return  # both are answered 400 by the receiver
        prepare_request(request, keys(), PolicyEngine(POLICY))
        spans = list(spans_from_request(request))
        check_diagram(spans[:200])
    except Exception:
        saved("otlp_json", data, ".json")
        raise


def check_diagram(spans: list[Span]) -> None:
    entity = None
    for span in spans:
        for key, value in span.attributes.items():
            if isinstance(value, str):
                entity = (key, value)
                break
    for chosen in (entity, None):
        diagram = build_diagram(spans, chosen, show_internal=True, max_messages=100)
        json.dumps(to_dict(diagram))
        for fmt in FORMATS:
            text = render(diagram, fmt)
            assert isinstance(text, str)
            if fmt == "svg":
                root = ET.fromstring(text)  # well-formed XML, whatever the labels held
                assert not any(el.tag.endswith("script") for el in root.iter())
            if fmt == "json":
                json.loads(text)


# ---------------------------------------------------------------------------- the seeds


@pytest.mark.parametrize("path", PROTO_SEEDS, ids=lambda p: p.name)
def test_protobuf_corpus_replays(path: Path, store: DuckDBStore) -> None:
    check_protobuf(path.read_bytes(), store)


@pytest.mark.parametrize("path", JSON_SEEDS, ids=lambda p: p.name)
def test_json_corpus_replays(path: Path) -> None:
    check_json(path.read_bytes())


def test_corpus_is_there() -> None:
    assert len(JSON_SEEDS) >= 8 and len(PROTO_SEEDS) >= 8


# ----------------------------------------------------------------------------- mutators


@st.composite
def mutated_bytes(draw: st.DrawFn, seeds: list[Path]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)).read_bytes())
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "splice", "cut", "varint"]))
        at = draw(st.integers(0, max(0, len(data))))
        if op == "flip" and data:
            data[at % len(data)] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[at : at + draw(st.integers(1, 16))]
        elif op == "splice":
            other = draw(st.sampled_from(seeds)).read_bytes()
            data[at:] = other[draw(st.integers(0, len(other))) :]
        elif op == "cut":
            del data[at:]
        elif op == "varint":  # a huge length or value where a varint may be
            data[at:at] = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"
    return bytes(data)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["", "0" * 32, "ff" * 8, "zz", "-1", "1e400", "\ud7ff", "<script>"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "traceId",
                    "spanId",
                    "parentSpanId",
                    "stringValue",
                    "intValue",
                    "arrayValue",
                    "kvlistValue",
                    "values",
                    "key",
                    "value",
                    "attributes",
                    "kind",
                    "status",
                    "code",
                    "events",
                    "links",
                    "startTimeUnixNano",
                    "name",
                    "x",
                ]
            ),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _paths(value, (*prefix, index))


@st.composite
def mutated_json(draw: st.DrawFn) -> bytes:
    doc = json.loads(draw(st.sampled_from(JSON_SEEDS)).read_text())
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(doc))[:2000]
        path = draw(st.sampled_from(paths))
        if not path:
            continue
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return json.dumps(doc).encode()


# ------------------------------------------------------------------------------ fuzzing


@FUZZ
@given(data=st.one_of(mutated_bytes(PROTO_SEEDS), st.binary(max_size=512)))
def test_fuzz_protobuf_decoding_and_storing(data: bytes, store: DuckDBStore) -> None:
    check_protobuf(data, store)


@FUZZ
@given(data=st.one_of(mutated_json(), mutated_bytes(JSON_SEEDS)))
def test_fuzz_otlp_json_decoding(data: bytes) -> None:
    check_json(data)


def _seed_spans() -> list[Span]:
    spans: list[Span] = []
    for path in JSON_SEEDS:
        try:
            spans.extend(spans_from_request(request_from_json(json.loads(path.read_text()))))
        except OtlpJsonError:
            continue
    return spans


SEED_SPANS = _seed_spans()
HOSTILE_TEXT = st.sampled_from(
    [
        "",
        "a->>b: c",
        "</text><script>x</script>",
        "%%{init}%%",
        "end",
        "\n",
        "\x00\x1f",
        "Zoë",
        "x" * 300,
        "participant A",
        '"',
        "]]>",
        "&amp;",
        "\u202e",
    ]
) | st.text(max_size=20)


@st.composite
def broken_span_trees(draw: st.DrawFn) -> list[Span]:
    pool = draw(st.lists(st.sampled_from(SEED_SPANS), min_size=1, max_size=25))
    ids = [s.span_id for s in pool] + ["0" * 16, "f" * 16]
    traces = [s.trace_id for s in pool] + ["0" * 32]
    spans = []
    for span in pool:
        change = draw(st.sampled_from(["none", "parent", "self", "time", "kind", "text", "trace"]))
        if change == "parent":
            span = replace(span, parent_span_id=draw(st.sampled_from(ids)))
        elif change == "self":
            span = replace(span, parent_span_id=span.span_id)  # a cycle of one
        elif change == "time":
            start = draw(st.integers(-(2**63), 2**63 - 1))
            end = draw(st.integers(-(2**63), 2**63 - 1))
            span = replace(span, start_unix_nano=start, end_unix_nano=end)
        elif change == "kind":
            span = replace(
                span,
                kind=draw(
                    st.sampled_from(
                        ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]
                    )
                ),
                status_code=draw(st.sampled_from(["UNSET", "OK", "ERROR"])),
            )
        elif change == "text":
            span = replace(
                span,
                name=draw(HOSTILE_TEXT),
                service_name=draw(HOSTILE_TEXT),
                status_message=draw(HOSTILE_TEXT),
                attributes={
                    draw(HOSTILE_TEXT): draw(HOSTILE_TEXT),
                    "peer.service": draw(HOSTILE_TEXT),
                },
            )
        elif change == "trace":
            span = replace(span, trace_id=draw(st.sampled_from(traces)))
        spans.append(span)
    return spans


@FUZZ
@given(spans=broken_span_trees())
def test_fuzz_diagram_builder_and_renderers(spans: list[Span]) -> None:
    assume(spans)
    check_diagram(spans)
