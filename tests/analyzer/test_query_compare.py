"""compare finds a planted over-represented attribute value among noise; find and
compare through LocalSource; trace ids resolved from a pasted prefix."""

from __future__ import annotations

import random

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from test_clickhouse import load_samples

from analyzer.source import LocalSource, SourceError
from spanstore.duckdb_store import DuckDBStore

T0 = 1_800_000_000_000_000_000


def noisy_request(rng: random.Random) -> ExportTraceServiceRequest:
    """600 spans: 'region' and 'tier' are noise everywhere; the failing spans (status
    error, 1 in 6) carry feature_flag=new-checkout 90% of the time, the others 10%."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add()
    kv = scope.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "shop"
    spans = scope.scope_spans.add()
    for i in range(600):
        span = spans.spans.add()
        span.trace_id = rng.randbytes(16)
        span.span_id = rng.randbytes(8)
        span.name = "checkout"
        failing = i % 6 == 0
        span.status.code = 2 if failing else 0
        span.start_time_unix_nano = T0 + i * 1_000_000
        span.end_time_unix_nano = span.start_time_unix_nano + (900 if failing else 100) * 1_000_000
        flagged = rng.random() < (0.9 if failing else 0.1)
        for key, value in (
            ("region", rng.choice(["eu", "us", "ap"])),
            ("tier", rng.choice(["free", "pro"])),
            ("feature_flag", "new-checkout" if flagged else "old-checkout"),
            ("request.uuid", f"{rng.getrandbits(64):x}"),
        ):
            a = span.attributes.add()
            a.key, a.value.string_value = key, value
    return request


def test_compare_finds_the_planted_value(tmp_path: pytest.TempPathFactory) -> None:
    store = DuckDBStore(tmp_path / "noise.duckdb")  # type: ignore[operator]
    try:
        store.write(noisy_request(random.Random(17)))
        source = LocalSource(store)
        result = source.compare("{ status = error }", None, T0, T0 + 10**12)
        assert result["selection"]["spans"] == 100 and result["baseline"]["spans"] == 500
        top = result["attributes"][0]
        assert (top["key"], top["value"]) == ("span.feature_flag", "new-checkout")
        assert top["selection_fraction"] > 0.8 and top["baseline_fraction"] < 0.2
        keys = {a["key"] for a in result["attributes"]}
        assert "span.request.uuid" not in keys  # one value per span: explains nothing
        durations = result["durations"]
        assert durations["selection"]["p50_ns"] == 900_000_000
        assert durations["baseline"]["p50_ns"] == 100_000_000
    finally:
        store.close()


def test_find_and_prefixes_through_local_source(tmp_path: pytest.TempPathFactory) -> None:
    store = DuckDBStore(tmp_path / "samples.duckdb")  # type: ignore[operator]
    try:
        load_samples(store.write)
        source = LocalSource(store)
        result = source.find("{ status = error } !< { status = error }", 0, 1 << 62, limit=3)
        assert result["total"] == 5 and len(result["traces"]) == 3
        assert all("entities" in t for t in result["traces"])
        with pytest.raises(SourceError) as bad:
            source.find('{ duration > "x" }', 0, 1 << 62)
        assert bad.value.status == 400 and "position 14" in str(bad.value)
        trace = source.trace("1dd722018e15")
        assert trace["trace_id"] == "1dd722018e153afe0b5a9c61b05aa28b"
        with pytest.raises(SourceError) as many:
            source.trace("1")  # legacy: short ids are zero-padded, and then not found
        assert many.value.status == 404
        ids = source.query_trace_ids("{ status = error }", 0, 1 << 62)
        assert [i[:8] for i in ids] == ["0e757124", "1b9c99bf", "1dd72201", "28aa6f8c", "a379f02f"]
    finally:
        store.close()


def test_an_ambiguous_prefix_lists_the_candidates(tmp_path: pytest.TempPathFactory) -> None:
    store = DuckDBStore(tmp_path / "twins.duckdb")  # type: ignore[operator]
    try:
        request = ExportTraceServiceRequest()
        spans = request.resource_spans.add().scope_spans.add()
        for tail in ("aa", "bb"):
            span = spans.spans.add()
            span.trace_id = bytes.fromhex("abcdef0123" + tail + "00" * 10)
            span.span_id = bytes.fromhex("01" * 8)
            span.name = "twin"
            span.start_time_unix_nano = T0
            span.end_time_unix_nano = T0 + 1
        store.write(request)
        source = LocalSource(store)
        with pytest.raises(SourceError) as many:
            source.trace("abcdef0123")
        assert many.value.status == 409
        assert str(many.value) == (
            "trace id prefix 'abcdef0123' matches several traces: "
            "abcdef0123aa00000000000000000000, abcdef0123bb00000000000000000000; give more digits"
        )
        assert source.trace("abcdef0123bb")["trace_id"] == "abcdef0123bb" + "00" * 10
        with pytest.raises(SourceError, match="hex digits"):
            source.trace("abcdef01zz")
    finally:
        store.close()
