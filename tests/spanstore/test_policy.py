"""Ingest policies (spanstore/policy.py): attribute limits and redaction, applied in the
store before anything is written; and a redacted value is nowhere in the database file."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from test_collector_support import make_request, span_id, trace_id

from spanstore.decode.prepare import KeyClassifier, prepare_request
from spanstore.duckdb_store import DuckDBStore
from spanstore.policy import (
    TRUNCATED_ATTRIBUTE,
    IngestPolicy,
    Limits,
    PolicyEngine,
    RedactionRule,
)

KEY = b"0123456789abcdef-test-key"
SECRET_EMAIL = "jane.doe.7f3a9@example.com"
SECRET_CARD = "4111111111111111"


def rules() -> tuple[RedactionRule, ...]:
    return (
        RedactionRule("emails", ("user.email", "*.email"), "hash"),
        RedactionRule("cards", ("*.card_number",), "mask", keep_last=4),
        RedactionRule("passwords", ("*password*",), "drop"),
    )


def policy(**limits: int) -> IngestPolicy:
    return IngestPolicy(limits=Limits(**limits), rules=rules(), hash_key=KEY).validate()


def sensitive_request() -> ExportTraceServiceRequest:
    """The secrets on a span, an event, a link, the resource and the scope."""
    request = make_request(spans=2, attrs=1)
    resource_spans = request.resource_spans[0]
    resource_spans.resource.attributes.add(key="owner.email").value.string_value = SECRET_EMAIL
    scope = resource_spans.scope_spans[0].scope
    scope.attributes.add(key="db.password").value.string_value = "hunter2-scope"
    span = resource_spans.scope_spans[0].spans[0]
    span.attributes.add(key="user.email").value.string_value = SECRET_EMAIL
    span.attributes.add(key="payment.card_number").value.string_value = SECRET_CARD
    span.attributes.add(key="customer.id").value.string_value = "C-1"
    event = span.events.add(name="login", time_unix_nano=span.start_time_unix_nano)
    event.attributes.add(key="user.password").value.string_value = "hunter2-event"
    event.attributes.add(key="contact.email").value.string_value = SECRET_EMAIL
    link = span.links.add(trace_id=trace_id(99), span_id=span_id(99))
    link.attributes.add(key="billing.card_number").value.int_value = 4111111111111111
    return request


def attrs(owner: object) -> dict[str, AnyValue]:
    return {kv.key: kv.value for kv in owner.attributes}  # type: ignore[attr-defined]


def test_rules_hash_mask_and_drop_everywhere_and_count_per_rule() -> None:
    request = sensitive_request()
    batch = prepare_request(request, KeyClassifier(), PolicyEngine(policy()))
    expected = "hmac:" + hmac.new(KEY, SECRET_EMAIL.encode(), hashlib.sha256).hexdigest()[:16]
    resource_spans = request.resource_spans[0]
    span = resource_spans.scope_spans[0].spans[0]
    assert attrs(resource_spans.resource)["owner.email"].string_value == expected
    assert "db.password" not in attrs(resource_spans.scope_spans[0].scope)
    assert attrs(span)["user.email"].string_value == expected
    assert attrs(span)["payment.card_number"].string_value == "****1111"
    assert attrs(span)["customer.id"].string_value == "C-1"  # untouched
    assert set(attrs(span.events[0])) == {"contact.email"}
    assert attrs(span.events[0])["contact.email"].string_value == expected
    assert attrs(span.links[0])["billing.card_number"].string_value == "****1111"
    assert batch.counts == {"redacted:emails": 3, "redacted:cards": 2, "redacted:passwords": 2}
    # Equal values hash equally (they can still be joined on), and nothing is stored raw.
    assert SECRET_EMAIL.encode() not in b"".join(batch.spans.column("raw").to_pylist())


def test_spans_without_matching_keys_are_not_walked() -> None:
    engine = PolicyEngine(policy())
    request = make_request(spans=20, attrs=5)
    for span in request.resource_spans[0].scope_spans[0].spans:
        assert not engine.span_needs_look(span, span.SerializeToString())
    sensitive = sensitive_request().resource_spans[0].scope_spans[0].spans[0]
    assert engine.span_needs_look(sensitive, sensitive.SerializeToString())


def test_limits_drop_and_truncate_and_record_it() -> None:
    request = make_request(spans=1, attrs=12)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.add(key="long").value.string_value = "é" * 600  # 1200 bytes of UTF-8
    span.attributes.add(key="blob").value.bytes_value = b"\x00" * 5000
    event = span.events.add(name="e")
    event.attributes.add(key="stack").value.string_value = "x" * 5000
    engine = PolicyEngine(IngestPolicy(limits=Limits(max_attributes=14, max_value_bytes=1001)))
    batch = prepare_request(request, KeyClassifier(), engine)
    values = attrs(span)
    assert len(span.attributes) == 15  # 14 kept + seqtrace.truncated
    assert span.dropped_attributes_count == 0  # 12 + long + blob = 14: nothing dropped
    assert len(values["long"].string_value.encode()) <= 1001
    assert values["long"].string_value == "é" * 500  # cut at a character boundary
    assert len(values["blob"].bytes_value) == 1001
    assert len(attrs(event)["stack"].string_value) == 1001
    assert values[TRUNCATED_ATTRIBUTE].int_value == 3
    assert batch.counts["truncated_values"] == 3

    many = make_request(spans=1, attrs=40)
    span = many.resource_spans[0].scope_spans[0].spans[0]
    span.dropped_attributes_count = 2  # the SDK dropped some already
    batch = prepare_request(many, KeyClassifier(), PolicyEngine(IngestPolicy(Limits(10))))
    assert len(span.attributes) == 10
    assert span.dropped_attributes_count == 32
    assert batch.counts == {"dropped_attributes": 30}


def nested(depth: int) -> AnyValue:
    value = AnyValue(string_value="leaf")
    for level in range(depth):
        outer = AnyValue()
        if level % 2:
            outer.array_value.values.add().CopyFrom(value)
        else:
            outer.kvlist_value.values.add(key=f"k{level}").value.CopyFrom(value)
        value = outer
    return value


@pytest.mark.parametrize("depth", [1, 3, 4, 30])
def test_nesting_deeper_than_the_limit_is_flattened(depth: int) -> None:
    request = make_request(spans=1, attrs=0)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.add(key="deep").value.CopyFrom(nested(depth))
    engine = PolicyEngine(IngestPolicy(Limits(max_depth=3)))
    assert engine.span_needs_look(span, span.SerializeToString())
    prepare_request(request, KeyClassifier(), engine)
    text = span.SerializeToString()
    if depth <= 3:
        assert TRUNCATED_ATTRIBUTE not in attrs(span)
        assert b"leaf" in text
    else:
        assert attrs(span)[TRUNCATED_ATTRIBUTE].int_value == 1
        assert b"nested deeper than 3" in text and b"leaf" not in text


def test_policy_validation() -> None:
    with pytest.raises(ValueError, match="hash key"):
        IngestPolicy(rules=(RedactionRule("h", ("a",), "hash"),)).validate()
    with pytest.raises(ValueError, match="max_depth"):
        IngestPolicy(limits=Limits(max_depth=0)).validate()
    with pytest.raises(ValueError, match="unique"):
        IngestPolicy(rules=(RedactionRule("x", ("a",), "drop"),) * 2).validate()


SECRETS = (SECRET_EMAIL, SECRET_CARD, "hunter2-scope", "hunter2-event")


def _write_sensitive(store: DuckDBStore, as_bytes: bool) -> None:
    for n in range(3):
        request = sensitive_request()
        for span in request.resource_spans[0].scope_spans[0].spans:
            span.trace_id = trace_id(100 + n)
        store.write(request.SerializeToString() if as_bytes else request)


def _file_bytes(folder: Path) -> bytes:
    """Every file under ``folder``: the database, its WAL and the ingest journal."""
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def _every_stored_value(store: DuckDBStore) -> bytes:
    """Every table's content as DuckDB returns it (decompressed), as one blob."""
    parts = []
    store.flush()
    for table in ("spans", "resources", "scopes", "span_entities", "span_links"):
        for row in store._db.cursor().execute(f"SELECT * FROM {table}").fetchall():
            parts.extend(v if isinstance(v, bytes) else str(v).encode() for v in row)
    return b"\x00".join(parts)


def test_redacted_values_are_nowhere_in_the_database_files(tmp_path: Path) -> None:
    """Through the decoder processes (as `serve` runs): neither the .duckdb file nor its
    WAL holds a redacted value, before or after CHECKPOINT, and the counts are exposed.
    A control store without the policy shows the search does find such values."""
    control_dir = tmp_path / "control"
    control_dir.mkdir()
    with DuckDBStore(control_dir / "c.duckdb", entity_keys=["user.email"]) as control:
        _write_sensitive(control, as_bytes=False)
        raw = _file_bytes(control_dir)  # before a checkpoint: the WAL holds plain rows
        assert all(secret.encode() in raw for secret in SECRETS)

    folder = tmp_path / "redacted"
    folder.mkdir()
    store = DuckDBStore(
        folder / "r.duckdb", decoder_processes=1, policy=policy(), entity_keys=["user.email"]
    )
    try:
        _write_sensitive(store, as_bytes=True)
        stats = store.ingest_stats()["policy"]["redacted"]
        assert stats == {"emails": 9, "cards": 6, "passwords": 6}
        # The entity index holds the keyed hash, so an entity diagram still works.
        digest = hmac.new(KEY, SECRET_EMAIL.encode(), "sha256").hexdigest()[:16]
        assert {v.value for v in store.entity_values("user.email")} == {f"hmac:{digest}"}
        before = _file_bytes(folder)
        store._db.execute("CHECKPOINT")
        after = _file_bytes(folder)
        stored = _every_stored_value(store)
        for secret in SECRETS:
            for blob in (before, after, stored):
                assert secret.encode() not in blob, secret
        assert f"hmac:{digest}".encode() in before  # the search does see what is stored
    finally:
        store.close()
    assert not any(secret.encode() in _file_bytes(folder) for secret in SECRETS)


@pytest.mark.parametrize(
    ("pattern", "key"),
    [
        ("x[]abc]y", "xay"),
        ("x[]abc]y", "x]y"),
        ("*.card_[!]x]number", "a.card_5number"),
        ("a[bc", "a[bc"),
        ("user.[a-z]mail", "user.email"),
    ],
)
def test_the_literal_that_gates_the_walk_is_in_every_matching_key(pattern: str, key: str) -> None:
    """The cheap byte test skips spans without the pattern's literal text, so that text
    must occur in every key the pattern matches (fnmatch reads "[]abc]" as a set
    holding "]", "a", "b", "c": the literal is not "abc]y")."""
    import fnmatch

    from spanstore.policy import _literal_fragment

    assert fnmatch.fnmatchcase(key, pattern)
    assert _literal_fragment(pattern) in key.encode()
