"""Hostile input the other collector tests do not cover (they have the gzip bomb, bodies
over the limit, malformed protobuf/JSON and bad ids in protobuf): deep nesting, invalid
UTF-8, ids of the wrong length in OTLP/JSON and in links, chunked bodies over the limit,
and the attribute limits end to end (too many attributes, values too long or too deep).
"""

from __future__ import annotations

import gzip
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import orjson
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from test_collector_support import EXPORT, http_call, make_request, running_collector

from collector import Collector
from spanstore.duckdb_store import DuckDBStore
from spanstore.otlp import request_to_json
from spanstore.policy import TRUNCATED_ATTRIBUTE, IngestPolicy, Limits

PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}
LIMITS = Limits(max_attributes=64, max_value_bytes=4096, max_depth=4)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    # Decoder processes, as `seqtrace serve` runs: hostile bytes are parsed there.
    with DuckDBStore(
        tmp_path / "hostile.duckdb", decoder_processes=1, policy=IngestPolicy(LIMITS)
    ) as s:
        yield s


@pytest.fixture
def collector(store: DuckDBStore) -> Iterator[Collector]:
    with running_collector(store, max_http_body_bytes=2 * 1024 * 1024) as c:
        yield c


def grpc_code(collector: Collector, body: bytes) -> grpc.StatusCode:
    with grpc.insecure_channel(collector.addresses["otlp-grpc"]) as channel:
        try:
            channel.unary_unary(EXPORT)(body, timeout=20)
        except grpc.RpcError as err:
            return err.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def nested(depth: int, leaf: str = "leaf") -> AnyValue:
    value = AnyValue(string_value=leaf)
    for level in range(depth):
        outer = AnyValue()
        if level % 2:
            outer.array_value.values.add().CopyFrom(value)
        else:
            outer.kvlist_value.values.add(key="k").value.CopyFrom(value)
        value = outer
    return value


def test_invalid_utf8_is_refused_whole_on_both_protocols(
    collector: Collector, store: DuckDBStore
) -> None:
    body = make_request(spans=2).SerializeToString().replace(b"op-1", b"op\xff1")
    status, _, answer = http_call(collector.addresses["otlp-http"], body, PB)
    assert status == 400
    assert "UTF-8" in status_pb2.Status.FromString(answer).message
    assert grpc_code(collector, body) == grpc.StatusCode.INVALID_ARGUMENT
    # JSON with bytes that are not UTF-8 at all, and with a lone surrogate escape.
    text = orjson.dumps(request_to_json(make_request(spans=1)))
    status, _, _ = http_call(collector.addresses["otlp-http"], text.replace(b"op-1", b"op\xc3"), JS)
    assert status == 400
    status, _, _ = http_call(
        collector.addresses["otlp-http"], text.replace(b"op-1", b"op\\ud800"), JS
    )
    assert status in (200, 400)  # a lone surrogate: refused, or stored as the JSON said
    assert store.stats().spans == (1 if status == 200 else 0)


def test_ids_of_the_wrong_length_in_json_and_links(
    collector: Collector, store: DuckDBStore
) -> None:
    doc = request_to_json(make_request(spans=3))
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[0]["traceId"] = "ab" * 17  # 34 hex digits: too long
    spans[1]["spanId"] = "cd" * 9
    spans[2]["links"] = [{"traceId": "01" * 20, "spanId": "02" * 8}]  # 20 bytes: bad
    status, _, body = http_call(collector.addresses["otlp-http"], orjson.dumps(doc), JS)
    assert status == 200
    assert orjson.loads(body)["partialSuccess"]["rejectedSpans"] == "2"
    assert store.stats().spans == 1  # the span with the bad link is kept, the link is not
    stored = store.spans([spans[2]["traceId"]])
    assert len(stored) == 1 and stored[0].links[0].trace_id == "01" * 20  # kept as sent
    assert store.linked_trace_ids([spans[2]["traceId"]]) == []  # but not indexed
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"] = [{**spans[2], "spanId": 12345}]
    status, _, _ = http_call(collector.addresses["otlp-http"], orjson.dumps(doc), JS)
    assert status == 400  # an id that is not a hex string


def test_deep_nesting(collector: Collector, store: DuckDBStore) -> None:
    address = collector.addresses["otlp-http"]
    # JSON nested 100 000 deep: refused by the parser, at once and in bounded memory.
    bomb = b'{"resourceSpans":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    started = time.monotonic()
    assert http_call(address, bomb, JS)[0] == 400
    assert http_call(address, gzip.compress(bomb), {**JS, "Content-Encoding": "gzip"})[0] == 400
    # OTLP/JSON attribute values nested deeper than protobuf allows (~46 levels).
    doc = request_to_json(make_request(spans=1))
    value: dict[str, object] = {"stringValue": "leaf"}
    for _ in range(300):
        value = {"arrayValue": {"values": [value]}}
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"] = [
        {"key": "deep", "value": value}
    ]
    assert http_call(address, json.dumps(doc).encode(), JS)[0] == 400
    # Protobuf nested past upb's depth limit (100 messages): malformed, on both protocols.
    request = make_request(spans=1)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.add(key="deep").value.CopyFrom(nested(60))
    body = request.SerializeToString()
    assert http_call(address, body, PB)[0] == 400
    assert grpc_code(collector, body) == grpc.StatusCode.INVALID_ARGUMENT
    assert time.monotonic() - started < 10
    assert store.stats().spans == 0
    # Nesting the parsers take but the limit does not (4): stored, flattened, recorded.
    request = make_request(spans=1, first=70)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.add(key="deep").value.CopyFrom(nested(12, leaf="secret-leaf"))
    span.attributes.add(key="shallow").value.CopyFrom(nested(3))
    assert http_call(address, request.SerializeToString(), PB)[0] == 200
    got = store.spans([f"{70:032x}"])[0]
    assert got.attributes[TRUNCATED_ATTRIBUTE] == 1
    assert "nested deeper than 4" in json.dumps(got.attributes["deep"])
    assert "secret-leaf" not in json.dumps(got.attributes["deep"])
    assert got.attributes["shallow"] == {"k": ["leaf"]} or "leaf" in json.dumps(
        got.attributes["shallow"]
    )


def test_attribute_count_and_value_length_limits_end_to_end(
    collector: Collector, store: DuckDBStore
) -> None:
    request = make_request(spans=2, attrs=200)  # over the limit of 64
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].attributes[0].value.string_value = "x" * 100_000  # over 4096 bytes
    spans[0].events.add(name="e").attributes.add(key="stack").value.string_value = "s" * 9000
    spans[1].links.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8).attributes.add(
        key="blob"
    ).value.bytes_value = b"\x00" * 5000
    answer = grpc_answer(collector, request.SerializeToString())
    assert not answer.HasField("partial_success")  # limits are not rejections
    first, second = store.spans([f"{1:032x}"])
    assert len(first.attributes) == 65  # 64 kept + seqtrace.truncated
    assert first.dropped_attributes_count == 200 - 64
    assert first.attributes["attr.0"] == "x" * 4096
    assert first.events[0].attributes["stack"] == "s" * 4096
    assert first.attributes[TRUNCATED_ATTRIBUTE] == 2
    assert len(second.links[0].attributes["blob"]) == 4096  # type: ignore[arg-type]
    assert second.attributes[TRUNCATED_ATTRIBUTE] == 1
    policy = store.ingest_stats()["policy"]
    assert policy["dropped_attributes"] == 2 * (200 - 64)
    assert policy["truncated_values"] == 3


def grpc_answer(collector: Collector, body: bytes) -> ExportTraceServiceResponse:
    with grpc.insecure_channel(collector.addresses["otlp-grpc"]) as channel:
        return ExportTraceServiceResponse.FromString(channel.unary_unary(EXPORT)(body, timeout=20))


def test_chunked_body_over_the_limit_is_413_without_reading_it_all(
    collector: Collector, store: DuckDBStore
) -> None:
    host, port = collector.addresses["otlp-http"].rsplit(":", 1)
    chunk = b"\x0a" * 65536
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        started = time.monotonic()
        reply = b""
        try:
            for _ in range(2000):  # up to 128 MiB, far over the 2 MiB limit
                sock.sendall(b"10000\r\n" + chunk + b"\r\n")
        except OSError:
            pass  # the server answered and closed
        sock.settimeout(5)
        with pytest.raises(OSError):
            while True:
                piece = sock.recv(65536)
                if not piece:
                    break
                reply += piece
            raise OSError("closed")
    assert reply.startswith(b"HTTP/1.1 413"), reply[:80]
    assert time.monotonic() - started < 10
    assert store.stats().spans == 0


def test_many_resources_and_scopes_in_one_request(collector: Collector, store: DuckDBStore) -> None:
    """Thousands of tiny resource/scope groups: the store's per-group work stays bounded."""
    request = ExportTraceServiceRequest()
    for n in range(3000):
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.add(key="service.name").value.string_value = f"s{n}"
        span = resource_spans.scope_spans.add().spans.add()
        span.trace_id = (n + 1).to_bytes(16, "big")
        span.span_id = (n + 1).to_bytes(8, "big")
        span.name = "x"
    started = time.monotonic()
    status, _, _ = http_call(collector.addresses["otlp-http"], request.SerializeToString(), PB)
    assert status == 200 and time.monotonic() - started < 15
    assert store.stats().spans == 3000
