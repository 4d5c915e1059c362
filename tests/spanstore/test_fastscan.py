"""The C fast path of ingest (spanstore/decode/_otlpscan.c, spanstore/decode/scan.py) gives exactly
the batch spanstore.decode.prepare.prepare_request gives, or leaves the request to it.

Every comparison prepares the same bytes both ways: ``prepare_serialized`` (the fast path
where it applies) and ``prepare_request`` on a fresh upb parse (the reference), and
compares every column row by row; ``raw`` is compared as the Span it reads back as
(parsed, the ids put back as the stores' read path does), since the two paths may store
different bytes for the same span. Requests are hand-written on the wire where upb would
never write them so: fields out of order, scalars repeated, messages repeated (merged),
unknown fields, wrong wire types.
"""

from __future__ import annotations

import logging
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.files import read_trace_file
from spanstore.decode import pool as decoder
from spanstore.decode import scan as fastscan
from spanstore.decode.prepare import SPAN_COLUMNS, KeyClassifier, PreparedBatch, prepare_request
from spanstore.policy import IngestPolicy, Limits, PolicyEngine, RedactionRule
from spanstore.semconv import KEY_TO_COLUMN
from tests.conftest import REAL_TRACES, ROOT, sample_files

sys.path.insert(0, str(ROOT / "bench"))
from bench_ingest import Stamper, build_templates

ENTITY_KEYS = frozenset({"order.id", "s"})
#: The policy every store has when none is configured.
DEFAULT = IngestPolicy()
#: Tight limits and rules: most requests then need the Python path, which must still
#: give the same batch through prepare_serialized.
STRICT = IngestPolicy(
    limits=Limits(max_attributes=4, max_value_bytes=300, max_depth=2),
    rules=(
        RedactionRule("emails", ("*.email",), "hash"),
        RedactionRule("drop-x", ("x.secret",), "drop"),
    ),
    hash_key=b"test-hash-key-0123456789",
)
PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def keys() -> KeyClassifier:
    return KeyClassifier(ENTITY_KEYS)


# ------------------------------------------------------------------------ comparison


def read_back(batch: PreparedBatch) -> list[Span]:
    """Each row's Span as the stores read it: parse raw, then put the ids back."""
    columns = [batch.spans.column(name).to_pylist() for name in ("trace_id", "span_id")]
    parents = batch.spans.column("parent_span_id").to_pylist()
    out = []
    for trace_id, span_id, parent, raw in zip(
        *columns, parents, batch.spans.column("raw").to_pylist(), strict=True
    ):
        span = Span.FromString(raw)
        span.trace_id = trace_id
        span.span_id = span_id
        if parent:
            span.parent_span_id = parent
        out.append(span)
    return out


def assert_same_batch(fast: PreparedBatch, reference: PreparedBatch) -> None:
    assert fast.spans.schema == reference.spans.schema
    assert fast.entities.schema == reference.entities.schema
    assert fast.links.schema == reference.links.schema
    for name in SPAN_COLUMNS:
        if name != "raw":
            got = fast.spans.column(name).to_pylist()
            assert got == reference.spans.column(name).to_pylist(), name
    got_spans, want_spans = read_back(fast), read_back(reference)
    assert got_spans == want_spans
    assert [s.SerializeToString(deterministic=True) for s in got_spans] == [
        s.SerializeToString(deterministic=True) for s in want_spans
    ]
    assert fast.entities.to_pylist() == reference.entities.to_pylist()
    assert fast.links.to_pylist() == reference.links.to_pylist()
    assert fast.resources == reference.resources
    assert fast.scopes == reference.scopes
    assert fast.span_keys == reference.span_keys
    assert (fast.min_start, fast.max_start) == (reference.min_start, reference.max_start)
    assert (fast.rejected, fast.duplicates) == (reference.rejected, reference.duplicates)
    assert fast.messages == reference.messages
    assert fast.counts == reference.counts
    for table in (fast.spans, fast.entities, fast.links):
        table.validate(full=True)  # offsets, UTF-8 and bitmaps as Arrow wants them


def reference_outcome(data: bytes, policy: IngestPolicy | None) -> PreparedBatch | str:
    """prepare_request's batch, or the error prepare_serialized must raise."""
    engine = PolicyEngine(policy) if policy is not None else None
    try:
        request = ExportTraceServiceRequest.FromString(data)
    except DecodeError as exc:
        return f"InvalidRequest: malformed ExportTraceServiceRequest: {exc}"
    try:
        return prepare_request(request, keys(), engine)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def check_same(data: bytes, policy: IngestPolicy | None = DEFAULT) -> bool:
    """prepare_serialized == prepare_request for ``data``; True if the fast path took it."""
    engine = PolicyEngine(policy) if policy is not None else None
    want = reference_outcome(data, policy)
    try:
        got: PreparedBatch | str = decoder.prepare_serialized(data, keys(), engine)
    except Exception as exc:
        got = f"{type(exc).__name__}: {exc}"
    if isinstance(want, str) or isinstance(got, str):
        assert got == want
        return False
    assert_same_batch(got, want)
    try:
        request = ExportTraceServiceRequest.FromString(data)
    except DecodeError:
        return False
    engine = PolicyEngine(policy) if policy is not None else None
    return fastscan.prepare_fast(data, request, keys(), engine) is not None


# ------------------------------------------------------------------ the extension


def test_the_extension_is_built_and_used() -> None:
    """No silent fallback: CI must run the C path (make install builds it in place)."""
    import spanstore.decode._otlpscan as scanner

    assert Path(scanner.__file__).parent == ROOT / "spanstore" / "decode"
    assert fastscan.available()


def test_benchmark_requests_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    payload = Stamper(build_templates(1, 512, 10), 0).next()

    def no_python_path(*args: Any, **kwargs: Any) -> PreparedBatch:
        raise AssertionError("prepare_request was called: the fast path was not taken")

    monkeypatch.setattr(decoder, "prepare_request", no_python_path)
    batch = decoder.prepare_serialized(payload, keys(), PolicyEngine(DEFAULT))
    assert batch.size == 512


def test_benchmark_requests_give_the_same_batch() -> None:
    stamper = Stamper(build_templates(8, 512, 10), 0)
    for _ in range(8):
        payload = stamper.next()
        assert check_same(payload)
        assert check_same(payload, None)


def test_a_live_flood_sends_now_with_random_ids() -> None:
    """``bench_ingest.py client --live``: each send moves its spans to now (a trace's within
    a second of its root, the roots 1-3 s before the send) and takes random trace ids; the
    requests still decode the same both ways."""
    import time

    stamper = Stamper(build_templates(2, 510, 10, live=True), 0)
    prefixes = set()
    for _ in range(4):
        time.sleep(0.05)  # the times move with the clock, not with the template
        payload = stamper.next()
        sent = time.time_ns()
        assert check_same(payload)
        request = ExportTraceServiceRequest.FromString(payload)
        spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
        assert len(spans) == 510
        ages = [(sent - s.start_time_unix_nano) / 1e9 for s in spans]
        assert min(ages) > 0 and max(ages) < 3.1
        assert all(s.end_time_unix_nano > s.start_time_unix_nano for s in spans)
        by_trace: dict[bytes, list[int]] = {}
        for s in spans:
            by_trace.setdefault(s.trace_id, []).append(s.start_time_unix_nano)
        assert max(max(t) - min(t) for t in by_trace.values()) <= 10**9
        prefixes |= {trace_id[:8] for trace_id in by_trace}
    assert len(prefixes) == 4  # a random id prefix per send, not a counter


@pytest.mark.parametrize(
    "path",
    [*sample_files(), *sorted(REAL_TRACES.glob("*.json"))],
    ids=lambda p: p.name,
)
def test_trace_files_give_the_same_batch(path: Path) -> None:
    requests = read_trace_file(path)
    assert requests
    for request in requests:
        data = request.SerializeToString()
        assert check_same(data)
        check_same(data, STRICT)
        assert check_same(data, None)


def test_both_encodings_of_raw_read_back_the_same_through_the_store(tmp_path: Path) -> None:
    """The sample traces written as bytes (the fast path) and as messages (prepare_request)
    give the same traces back from DuckDB."""
    from spanstore.duckdb_store import DuckDBStore

    requests = [r for path in sample_files() for r in read_trace_file(path)]
    with (
        DuckDBStore(tmp_path / "fast.duckdb") as fast,
        DuckDBStore(tmp_path / "python.duckdb") as python,
    ):
        for request in requests:
            fast.write(request.SerializeToString())
            python.write(request)
        trace_ids = {span.trace_id.hex() for r in requests for span in iter_spans(r)}
        assert fast.stats().spans == python.stats().spans > 0
        for trace_id in sorted(trace_ids):
            assert fast.trace_request(trace_id) == python.trace_request(trace_id)


def iter_spans(request: ExportTraceServiceRequest) -> list[Span]:
    return [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]


def test_unavailable_extension_warns_once_and_uses_python(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(
        fastscan, "_unusable", "spanstore.decode._otlpscan cannot be imported (test)"
    )
    monkeypatch.setattr(fastscan, "_warned", False)
    data = Stamper(build_templates(1, 16, 10), 0).next()
    with caplog.at_level(logging.WARNING, logger="spanstore.decode.scan"):
        for _ in range(3):
            batch = decoder.prepare_serialized(data, keys(), PolicyEngine(DEFAULT))
            assert batch.size == 16
    warnings = [r for r in caplog.records if r.name == "spanstore.decode.scan"]
    assert len(warnings) == 1 and "cannot be imported" in warnings[0].getMessage()


# ------------------------------------------------------------------ the wire, by hand

MASK64 = (1 << 64) - 1


def varint(n: int) -> bytes:
    n &= MASK64
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if not n:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def ld(number: int, payload: bytes) -> bytes:
    return tag(number, 2) + varint(len(payload)) + payload


def vi(number: int, value: int) -> bytes:
    return tag(number, 0) + varint(value)


def f64(number: int, value: int) -> bytes:
    return tag(number, 1) + struct.pack("<Q", value & MASK64)


def f32(number: int, value: int) -> bytes:
    return tag(number, 5) + struct.pack("<I", value & 0xFFFFFFFF)


def dbl(number: int, value: float) -> bytes:
    return tag(number, 1) + struct.pack("<d", value)


def kv(key: str, value: bytes) -> bytes:
    return ld(1, key.encode()) + ld(2, value)


#: Fields no OTLP message here declares: unknown everywhere, kept in raw.
UNKNOWN = st.one_of(
    st.builds(vi, st.integers(50, 60), st.integers(0, MASK64)),
    st.builds(f64, st.integers(50, 60), st.integers(0, MASK64)),
    st.builds(f32, st.integers(50, 60), st.integers(0, 2**32 - 1)),
    st.builds(ld, st.integers(50, 60), st.binary(max_size=6)),
)
TEXT = st.text(max_size=10) | st.sampled_from(
    ["", "200", "0042", "503", "٣", "²", "9" * 19, "9" * 18, "0" * 30 + "7", "x1", "exception"]
)
KEYS = st.sampled_from(
    [
        *KEY_TO_COLUMN,
        "order.id",
        "customer.id",
        "cart_id",
        "s",
        "host.id",
        "thread.id",
        "service.name",
        "exception.type",
        "exception.message",
        "user.email",
        "x.secret",
    ]
) | st.text(max_size=6)
INT64 = st.integers(-(2**63), 2**63 - 1)
DOUBLES = st.floats() | st.sampled_from([0.1, 1e16, 1e22, -0.0, 5e-324, 1.5, 123.0])

SCALAR_MEMBER = st.one_of(
    TEXT.map(lambda s: ld(1, s.encode())),
    st.booleans().map(lambda b: vi(2, int(b))),
    st.integers(0, MASK64).map(lambda n: vi(2, n)),  # a bool written as a wide varint
    INT64.map(lambda n: vi(3, n)),
    st.sampled_from([0, 200, 404, 500]).map(lambda n: vi(3, n)),
    DOUBLES.map(lambda x: dbl(4, x)),
    st.binary(max_size=6).map(lambda b: ld(7, b)),
    st.integers(0, 2**31 - 1).map(lambda n: vi(8, n)),  # string_value_strindex
    st.sampled_from([vi(1, 5), ld(3, b"x"), vi(5, 1)]),  # wrong wire types: unknown fields
    UNKNOWN,
)


def _nested(inner: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    array = st.lists(inner, max_size=3).map(lambda vs: ld(5, b"".join(ld(1, v) for v in vs)))
    kvlist = st.lists(st.tuples(KEYS, inner), max_size=3).map(
        lambda pairs: ld(6, b"".join(ld(1, kv(k, v)) for k, v in pairs))
    )
    # An AnyValue of several members: upb keeps the last oneof member it read.
    return st.lists(st.one_of(SCALAR_MEMBER, array, kvlist), max_size=3).map(b"".join)


ANY_VALUE = st.recursive(st.lists(SCALAR_MEMBER, max_size=2).map(b"".join), _nested, max_leaves=6)


@st.composite
def key_values(draw: st.DrawFn, keys: st.SearchStrategy[str] = KEYS) -> bytes:
    """A KeyValue; sometimes with its key twice (the last wins), its value twice (merged),
    key_strindex or unknown fields, in any order."""
    parts = [ld(1, draw(keys).encode()), ld(2, draw(ANY_VALUE))]
    if draw(st.integers(0, 9)) == 0:
        parts.append(ld(1, draw(keys).encode()))
    if draw(st.integers(0, 4)) == 0:
        parts.append(ld(2, draw(ANY_VALUE)))
    if draw(st.integers(0, 9)) == 0:
        parts.append(vi(3, draw(st.integers(0, 100))))
    if draw(st.integers(0, 9)) == 0:
        parts.append(draw(UNKNOWN))
    return b"".join(draw(st.permutations(parts)) if draw(st.booleans()) else parts)


TRACE_POOL = [bytes([n]) * 16 for n in range(1, 4)]
SPAN_POOL = [bytes([n]) * 8 for n in range(1, 4)]
#: Mostly valid ids (so most spans are kept), some from a small pool (duplicates), some
#: all zero or of the wrong length (rejected).
TRACE_IDS = st.integers(0, 19).flatmap(
    lambda n: (
        st.binary(min_size=16, max_size=16)
        if n < 16
        else st.sampled_from([*TRACE_POOL, bytes(16)])
        if n < 18
        else st.binary(max_size=20)
    )
)
SPAN_IDS = st.integers(0, 19).flatmap(
    lambda n: (
        st.binary(min_size=8, max_size=8)
        if n < 16
        else st.sampled_from([*SPAN_POOL, bytes(8)])
        if n < 18
        else st.binary(max_size=10)
    )
)
TIMES = st.one_of(
    st.integers(1_700_000_000 * 10**9, 1_800_000_000 * 10**9),
    st.integers(0, MASK64),
    st.sampled_from([0, 2**63 - 1, 2**63, MASK64]),
)
ENUMS = st.sampled_from([0, 1, 2, 2, 2, 3, 4, 5, 6, 99, -1, 2**31, 2**32 + 2, MASK64])


@st.composite
def events(draw: st.DrawFn) -> bytes:
    exception_keys = st.sampled_from(["exception.type", "exception.message", "other"])
    parts = [
        f64(1, draw(TIMES)),
        ld(2, draw(st.sampled_from(["exception", "retry", "", "Exception"])).encode()),
        *(ld(3, a) for a in draw(st.lists(key_values(exception_keys), max_size=4))),
    ]
    if draw(st.integers(0, 4)) == 0:
        parts.append(ld(2, draw(st.sampled_from(["exception", "other"])).encode()))
    if draw(st.integers(0, 4)) == 0:
        parts.append(vi(4, draw(st.integers(0, 9))))
    return b"".join(draw(st.permutations(parts)))


@st.composite
def links(draw: st.DrawFn) -> bytes:
    parts = [ld(1, draw(TRACE_IDS)), ld(2, draw(SPAN_IDS))]
    parts += [ld(4, a) for a in draw(st.lists(key_values(), max_size=2))]
    if draw(st.booleans()):
        parts.append(ld(3, b"k=v"))
    if draw(st.integers(0, 4)) == 0:
        parts.append(ld(1, draw(TRACE_IDS)))  # the last trace_id wins
    if draw(st.integers(0, 4)) == 0:
        parts += [vi(5, 1), f32(6, 0x100)]
    return b"".join(draw(st.permutations(parts)))


@st.composite
def statuses(draw: st.DrawFn) -> bytes:
    parts = []
    if draw(st.booleans()):
        parts.append(ld(2, draw(TEXT).encode()))
    if draw(st.integers(0, 3)):
        parts.append(vi(3, draw(st.sampled_from([2, 2, 1]) | ENUMS)))  # often an error
    if draw(st.integers(0, 5)) == 0:
        parts.append(draw(UNKNOWN))
    return b"".join(parts)


@st.composite
def spans(draw: st.DrawFn) -> bytes:
    """A Span's bytes: usually in upb's order, sometimes shuffled, with repeated scalars
    (the last one wins), repeated statuses (merged), wrong wire types, unknown fields."""
    parts: list[bytes] = []
    if draw(st.integers(0, 20)):
        parts.append(ld(1, draw(TRACE_IDS)))
    if draw(st.integers(0, 20)):
        parts.append(ld(2, draw(SPAN_IDS)))
    if draw(st.booleans()):
        parts.append(ld(3, b"vendor=x"))
    if draw(st.booleans()):
        parts.append(ld(4, draw(st.one_of(st.binary(min_size=8, max_size=8), SPAN_IDS))))
    parts.append(ld(5, draw(TEXT).encode()))
    if draw(st.booleans()):
        parts.append(vi(6, draw(ENUMS)))
    parts += [f64(7, draw(TIMES)), f64(8, draw(TIMES))]
    parts += [ld(9, a) for a in draw(st.lists(key_values(), max_size=8))]
    if draw(st.integers(0, 3)) == 0:
        parts.append(vi(10, draw(st.integers(0, 5))))
    parts += [ld(11, e) for e in draw(st.lists(events(), max_size=2))]
    parts += [ld(13, link) for link in draw(st.lists(links(), max_size=2))]
    parts += [ld(15, s) for s in draw(st.lists(statuses(), max_size=2))]
    if draw(st.integers(0, 3)) == 0:  # an error with its exception event
        exception = ld(2, b"exception")
        for key in draw(st.lists(st.sampled_from(["exception.type", "exception.message"]))):
            exception += ld(3, kv(key, draw(ANY_VALUE)))
        parts += [ld(15, vi(3, 2)), ld(11, exception)]
    if draw(st.booleans()):
        parts.append(f32(16, 0x301))
    for _ in range(draw(st.integers(0, 2))):  # repeated scalars, written by hand
        parts.append(
            draw(
                st.one_of(
                    st.builds(lambda v: ld(1, v), TRACE_IDS),
                    st.builds(lambda v: ld(2, v), SPAN_IDS),
                    st.builds(lambda v: ld(4, v), SPAN_IDS),
                    st.builds(lambda v: ld(5, v.encode()), TEXT),
                    st.builds(lambda v: vi(6, v), ENUMS),
                    st.builds(lambda v: f64(7, v), TIMES),
                    st.builds(lambda v: f64(8, v), TIMES),
                )
            )
        )
    if draw(st.integers(0, 5)) == 0:  # known numbers, wrong wire types: unknown fields
        parts.append(
            draw(st.sampled_from([vi(1, 7), vi(5, 3), ld(6, b"\x02"), vi(7, 9), ld(9, b"")]))
        )
    if draw(st.integers(0, 4)) == 0:
        parts.append(draw(UNKNOWN))
    if draw(st.integers(0, 3)) == 0:
        parts = draw(st.permutations(parts))
    return b"".join(parts)


RESOURCE_KEYS = st.sampled_from(["service.name", "order.id", "tenant.id", "host.id", "s"]) | KEYS


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """An ExportTraceServiceRequest's bytes, with duplicate spans across scopes."""
    drawn_spans: list[bytes] = []
    out = []
    for _ in range(draw(st.integers(0, 3))):
        resource = b"".join(ld(1, a) for a in draw(st.lists(key_values(RESOURCE_KEYS), max_size=4)))
        parts = [ld(1, resource)]
        if draw(st.integers(0, 5)) == 0:
            parts.append(ld(1, ld(1, kv("service.name", ld(1, b"merged")))))  # merged
        for _ in range(draw(st.integers(0, 3))):
            scope = ld(1, b"lib") + ld(2, b"1.0")
            scope += b"".join(ld(3, a) for a in draw(st.lists(key_values(), max_size=2)))
            scope_parts = [ld(1, scope)]
            for _ in range(draw(st.integers(0, 5))):
                if drawn_spans and draw(st.integers(0, 5)) == 0:
                    span = draw(st.sampled_from(drawn_spans))  # a duplicate
                else:
                    span = draw(spans())
                    drawn_spans.append(span)
                scope_parts.append(ld(2, span))
            if draw(st.booleans()):
                scope_parts.append(ld(3, b"https://opentelemetry.io/schemas/1.21.0"))
            parts.append(ld(2, b"".join(scope_parts)))
        if draw(st.booleans()):
            parts.append(ld(3, b"https://example.com/schema"))
        if draw(st.integers(0, 5)) == 0:
            parts.append(draw(UNKNOWN))
        out.append(ld(1, b"".join(parts)))
    if draw(st.integers(0, 5)) == 0:
        out.append(draw(UNKNOWN))
    return b"".join(out)


@PROPERTY
@given(data=requests())
def test_generated_requests_give_the_same_batch(data: bytes) -> None:
    check_same(data)
    check_same(data, None)


@settings(PROPERTY, max_examples=50)
@given(data=requests())
def test_generated_requests_under_a_strict_policy_give_the_same_batch(data: bytes) -> None:
    check_same(data, STRICT)


def test_generated_requests_mostly_take_the_fast_path() -> None:
    """The property above must exercise the C path, not only the fallback."""
    taken: list[bool] = []

    @settings(PROPERTY, max_examples=40, database=None)
    @given(data=requests())
    def run(data: bytes) -> None:
        taken.append(check_same(data))

    run()
    assert sum(taken) > len(taken) // 2, f"{sum(taken)} of {len(taken)}"


# ------------------------------------------------------------------ chosen cases


def trace(n: int) -> bytes:
    return bytes([n]) * 16


def sid(n: int) -> bytes:
    return bytes([n]) * 8


def request_of(*span_bytes: bytes, resource: bytes = b"") -> bytes:
    scope = ld(1, ld(1, b"lib")) + b"".join(ld(2, s) for s in span_bytes)
    return ld(1, ld(1, resource) + ld(2, scope))


def plain_span(n: int, *extra: bytes) -> bytes:
    return b"".join(
        [ld(1, trace(n)), ld(2, sid(n)), ld(5, b"op"), f64(7, 10**18), f64(8, 10**18 + 5), *extra]
    )


@pytest.mark.parametrize(
    ("value", "column", "expected"),
    [
        (dbl(4, 0.1), "http_route", "0.1"),
        (dbl(4, 1e16), "http_route", "1e+16"),
        (dbl(4, float("nan")), "http_route", "nan"),
        (dbl(4, -0.0), "http_route", "-0.0"),
        (dbl(4, 123.0), "http_route", "123.0"),
        (vi(3, -5), "http_route", "-5"),
        (vi(2, 7), "http_route", "true"),
        (ld(7, b"\x00\xab"), "http_route", "00ab"),
        (ld(1, b""), "http_route", ""),
        (ld(5, b""), "http_route", None),
        (vi(8, 3), "http_route", None),
        (ld(1, b"0042"), "http_status_code", 42),
        (ld(1, b"42a"), "http_status_code", 0),
        (vi(3, 503), "http_status_code", 503),
        (ld(1, b"9" * 18), "http_status_code", int("9" * 18)),
    ],
)
def test_value_texts(value: bytes, column: str, expected: object) -> None:
    key = "http.route" if column == "http_route" else "http.response.status_code"
    data = request_of(plain_span(1, ld(9, kv(key, value))))
    assert check_same(data)
    batch = decoder.prepare_serialized(data, keys(), PolicyEngine(DEFAULT))
    assert batch.spans.column(column).to_pylist() == [expected]


@pytest.mark.parametrize("text", ["٣", "9" * 19, "99999999999999999999"])
def test_int_column_text_only_python_can_judge_falls_back(text: str) -> None:
    data = request_of(plain_span(1, ld(9, kv("http.status_code", ld(1, text.encode())))))
    assert not check_same(data)


def test_int_column_superscript_digit_fails_as_in_python() -> None:
    """'²'.isdigit() is True and int('²') raises: both paths raise the same error."""
    data = request_of(plain_span(1, ld(9, kv("http.status_code", ld(1, "²".encode())))))
    assert isinstance(reference_outcome(data, DEFAULT), str)
    assert not check_same(data)


def test_semantic_ranks_and_entities() -> None:
    """An old name after the new one loses; a new name after an old one wins; entity
    rows: the span's in attribute order, then the resource's."""
    attrs = [
        kv("http.method", ld(1, b"OLD")),
        kv("http.request.method", ld(1, b"NEW")),
        kv("http.method", ld(1, b"OLDER")),
        kv("net.peer.name", ld(1, b"rank1")),
        kv("http.host", ld(1, b"rank2")),
        kv("server.address", ld(1, b"rank0")),
        kv("server.address", ld(1, b"rank0-again")),
        kv("order.id", vi(3, 7)),
        kv("customer.id", ld(1, b"")),
        kv("cart_id", dbl(4, 2.5)),
    ]
    resource = ld(1, kv("service.name", ld(1, b"shop"))) + ld(1, kv("tenant.id", ld(1, b"t1")))
    data = request_of(plain_span(1, *(ld(9, a) for a in attrs)), resource=resource)
    assert check_same(data)
    batch = decoder.prepare_serialized(data, keys(), PolicyEngine(DEFAULT))
    assert batch.spans.column("http_method").to_pylist() == ["NEW"]
    assert batch.spans.column("server_address").to_pylist() == ["rank0-again"]
    assert [(r["key"], r["value"]) for r in batch.entities.to_pylist()] == [
        ("order.id", "7"),
        ("cart_id", "2.5"),
        ("tenant.id", "t1"),
    ]


def test_rejections_duplicates_and_messages() -> None:
    bad = [
        ld(1, trace(1)[:15]) + ld(2, sid(1)) + ld(5, "ünïcode".encode() * 20),
        ld(1, bytes(16)) + ld(2, sid(2)) + ld(5, b"zero trace"),
        ld(1, trace(3)) + ld(2, bytes(8)) + ld(5, b"zero span"),
        ld(1, trace(4)) + ld(2, sid(4)) + ld(4, b"\x01\x02") + ld(5, b"short parent"),
        ld(5, b"no ids"),
        ld(1, trace(5)) + ld(2, sid(5)[:7]) + ld(5, b"it's quoted"),
    ]
    good = plain_span(9)
    data = request_of(*bad, good, good, plain_span(9, ld(5, b"same ids, other name")))
    assert check_same(data)
    batch = decoder.prepare_serialized(data, keys(), PolicyEngine(DEFAULT))
    assert (batch.size, batch.rejected, batch.duplicates, len(batch.messages)) == (1, 6, 2, 5)


def test_times_kinds_and_statuses() -> None:
    span = b"".join(
        [
            ld(1, trace(1)),
            ld(2, sid(1)),
            vi(6, 2**32 + 3),  # an int32 enum: the low 32 bits
            f64(7, MASK64),
            f64(8, 5),
            ld(15, ld(2, b"first") + vi(3, 1)),
            ld(15, vi(3, 2)),  # merged: the code from here, the message from before
            ld(11, ld(2, b"exception") + ld(3, kv("exception.type", ld(1, b"E")))),
            ld(11, ld(2, b"exception") + ld(3, kv("exception.type", ld(1, b"second")))),
        ]
    )
    data = request_of(span)
    assert check_same(data)
    batch = decoder.prepare_serialized(data, keys(), PolicyEngine(DEFAULT))
    row = batch.spans.to_pylist()[0]
    assert (row["kind"], row["start_unix_nano"], row["duration_ns"]) == (3, 2**63 - 1, 0)
    assert (row["status_code"], row["status_message"], row["exception_type"]) == (
        2,
        "first",
        "E",
    )
    assert row["exception_message"] is None


def test_links_with_bad_ids_are_left_out() -> None:
    span = plain_span(
        1,
        ld(13, ld(1, trace(2)) + ld(2, sid(2))),
        ld(13, ld(1, trace(3)[:15]) + ld(2, sid(3))),
        ld(13, ld(1, bytes(16)) + ld(2, bytes(8))),  # zero ids are kept, as in Python
        ld(13, ld(2, sid(4))),
    )
    data = request_of(span)
    assert check_same(data)
    batch = decoder.prepare_serialized(data, keys(), PolicyEngine(DEFAULT))
    assert batch.links.column("linked_span_id").to_pylist() == [sid(2), bytes(8)]


# ------------------------------------------------------------------ the policy


def many(n: int, owner_field: int) -> bytes:
    return b"".join(ld(owner_field, kv(f"k{i}", ld(1, b"v"))) for i in range(n))


def nested(depth: int) -> bytes:
    value = ld(1, b"leaf")
    for _ in range(depth):
        value = ld(5, ld(1, value))
    return value


@pytest.mark.parametrize(
    ("name", "span", "fast"),
    [
        ("attributes at the limit", plain_span(1, many(4, 9)), True),
        ("attributes over the limit", plain_span(1, many(5, 9)), False),
        ("event attributes over", plain_span(1, ld(11, ld(2, b"e") + many(5, 3))), False),
        ("link attributes over", plain_span(1, ld(13, ld(1, trace(2)) + many(5, 4))), False),
        ("nesting at the limit", plain_span(1, ld(9, kv("a", nested(2)))), True),
        ("nesting over the limit", plain_span(1, ld(9, kv("a", nested(3)))), False),
        ("nesting in an event", plain_span(1, ld(11, ld(3, kv("a", nested(3))))), False),
        ("a span over max_value_bytes", plain_span(1, ld(3, b"x" * 300)), False),
        ("a rule's literal text", plain_span(1, ld(5, b"card.email")), False),
    ],
)
def test_the_policy_decides_the_path(name: str, span: bytes, fast: bool) -> None:
    policy = IngestPolicy(
        limits=Limits(max_attributes=4, max_value_bytes=300, max_depth=2),
        rules=(RedactionRule("emails", ("*.email",), "hash"),),
        hash_key=b"k" * 16,
    )
    assert check_same(request_of(span), policy) is fast, name


def test_a_pattern_without_literal_text_always_takes_the_python_path() -> None:
    policy = IngestPolicy(rules=(RedactionRule("all", ("*",), "mask"),))
    assert not check_same(request_of(plain_span(1)), policy)


def test_a_pattern_with_a_set_always_takes_the_python_path() -> None:
    """'x[]abc]y' matches the key 'xay', which does not hold the text the policy takes as
    the pattern's literal ('abc]y'): the literal test cannot vouch for such patterns."""
    policy = IngestPolicy(rules=(RedactionRule("set", ("x[]abc]y",), "mask"),))
    span = plain_span(1, ld(9, kv("xay", ld(1, b"secret"))))
    assert b"abc]y" not in request_of(span)
    assert not check_same(request_of(span), policy)


def test_resource_changed_by_the_policy_then_python_path_gets_the_request_as_sent() -> None:
    """The policy changes the resource in place before the scanner declines: the Python
    path must see the request as sent, not the policy applied twice."""
    policy = IngestPolicy(limits=Limits(max_attributes=2, max_value_bytes=300))
    resource = many(3, 1)  # over the limit: the policy drops one
    data = request_of(plain_span(1, ld(3, b"x" * 300)), resource=resource)
    request = ExportTraceServiceRequest.FromString(data)
    assert fastscan.prepare_fast(data, request, keys(), PolicyEngine(policy)) is None
    assert request == ExportTraceServiceRequest.FromString(data)
    assert not check_same(data, policy)
    # and with clean spans the fast path takes it, counting what the policy did
    data = request_of(plain_span(1), resource=resource)
    assert check_same(data, policy)
    batch = decoder.prepare_serialized(data, keys(), PolicyEngine(policy))
    assert batch.counts == {"dropped_attributes": 1}


# ------------------------------------------------------------------ hostile bytes


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(requests()))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cut", "flip", "insert", "varint"]))
        at = draw(st.integers(0, len(data)))
        if op == "cut":
            del data[at:]
        elif op == "flip" and data:
            data[at % len(data)] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        else:
            data[at:at] = b"\xff" * 9 + b"\x01"
    return bytes(data)


@settings(PROPERTY, max_examples=80)
@given(data=damaged())
def test_damaged_requests_fail_or_match_as_in_python(data: bytes) -> None:
    check_same(data)


def classify_for(table_keys: KeyClassifier) -> Callable[[str], int]:
    return lambda key: fastscan._key_code(table_keys.classify(key))


@settings(PROPERTY, max_examples=80)
@given(data=damaged() | st.binary(max_size=200), scopes=st.integers(0, 40))
def test_the_scanner_alone_never_reads_out_of_bounds(data: bytes, scopes: int) -> None:
    """Straight into the C scanner, without upb's check first: any bytes give a result
    or a reason, never a crash (run under AddressSanitizer during development)."""
    from spanstore.decode import _otlpscan

    table = _otlpscan.KeyTable(14, 1, 50_000)
    rows = tuple((n, n, "svc", (("tenant.id", "t"),)) for n in range(scopes))
    for limits in (None, (4, 300, 2)):
        result = _otlpscan.scan(data, rows, table, classify_for(keys()), limits)
        assert isinstance(result, str | tuple)


def test_the_key_table_forgets_at_its_limit_and_stays_right() -> None:
    from spanstore.decode import _otlpscan

    table = _otlpscan.KeyTable(14, 1, 3)
    attrs = [kv(f"k{i}.id", ld(1, b"v")) for i in range(10)] + [kv("http.route", ld(1, b"/"))]
    data = request_of(plain_span(1, *(ld(9, a) for a in attrs)))
    classifier = keys()
    rows = ((1, 2, "svc", ()),)
    for _ in range(3):
        result = _otlpscan.scan(data, rows, table, classify_for(classifier), None)
        assert not isinstance(result, str)
        assert result[2] == 10  # ten entity rows each time
        assert len(table) <= 3
    table.clear()
    assert len(table) == 0


def test_wide_columns_build_valid_arrow() -> None:
    """Many rows and long values: buffers grow, offsets stay right."""
    spans_bytes = [
        plain_span(1 + n % 200, ld(3, bytes([65 + n % 26]) * (n * 7 % 900))) for n in range(2000)
    ]
    data = b"".join(request_of(s) for s in spans_bytes[:1]) + request_of(*spans_bytes[1:])
    assert check_same(data, None)
    batch = decoder.prepare_serialized(data, keys(), None)
    assert isinstance(batch.spans.column("raw").chunk(0), pa.BinaryArray)
