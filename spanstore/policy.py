"""Ingest policies applied before anything is stored: attribute limits and redaction.

Limits (OpenTelemetry's attribute limits, enforced by the collector too, because not
every sender enforces them): at most ``max_attributes`` attributes per span, event and
link (the rest are dropped and counted in the owner's ``dropped_attributes_count``, as the
SDKs do); string and bytes values of at most ``max_value_bytes`` (longer ones are cut, at
a UTF-8 character boundary); array and map values nested at most ``max_depth`` deep
(deeper content is replaced by a short string). A span with a value cut or flattened
gets the attribute ``seqtrace.truncated`` = how many values were.

Redaction rules match attribute keys (glob patterns, ``user.email``, ``*.card_number``)
on spans, events, links, resources and scopes, and ``drop``, ``hash`` (HMAC-SHA256 with a
configured key, 16 hex digits: equal values stay equal, so they can still be joined on)
or ``mask`` the value. Each rule counts the values it changed.

The hot path (``spanstore.decode.prepare``) calls :meth:`PolicyEngine.span_needs_look` per span:
a few C-level checks on the span's serialized bytes (its length, whether it could hold a
nested value, whether a rule's literal text occurs in it at all). Only spans that fail
that test are walked attribute by attribute in Python.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import re
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = [
    "ACTIONS",
    "TRUNCATED_ATTRIBUTE",
    "Action",
    "IngestPolicy",
    "Limits",
    "PolicyEngine",
    "RedactionRule",
]

ACTIONS: Final = ("drop", "hash", "mask")
Action = Literal["drop", "hash", "mask"]
#: Set on a span whose (or whose events' / links') values were cut or flattened.
TRUNCATED_ATTRIBUTE: Final = "seqtrace.truncated"
MASK: Final = "****"
_HASH_HEX_DIGITS: Final = 16
_KEY_CACHE_LIMIT: Final = 50_000
#: An AnyValue holding an array (field 5) or a map (field 6), as the value (field 2) of a
#: KeyValue: tag 0x12, a length varint, then tag 0x2a or 0x32. Every nested value in a
#: serialized span starts like this, so a span without a match has none (a match may be
#: a false positive inside binary data; the walk then finds nothing to do).
_NESTED: Final = re.compile(rb"\x12[\x80-\xff]{0,4}[\x00-\x7f][\x2a\x32]")


@dataclass(frozen=True, slots=True)
class Limits:
    max_attributes: int = 256
    max_value_bytes: int = 64 * 1024
    max_depth: int = 8

    def validate(self) -> Limits:
        for name in ("max_attributes", "max_value_bytes", "max_depth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        return self


@dataclass(frozen=True, slots=True)
class RedactionRule:
    name: str
    keys: tuple[str, ...]
    action: Action
    #: For ``mask``: how many trailing characters stay visible (0 = none).
    keep_last: int = 0


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    """What the store applies to every request before storing it (picklable)."""

    limits: Limits = field(default_factory=Limits)
    rules: tuple[RedactionRule, ...] = ()
    #: The HMAC key for ``hash`` rules (required when any rule hashes).
    hash_key: bytes = b""

    def validate(self) -> IngestPolicy:
        self.limits.validate()
        names = set()
        for rule in self.rules:
            if rule.action not in ACTIONS:
                raise ValueError(f"rule {rule.name!r}: action must be one of {', '.join(ACTIONS)}")
            if not rule.keys:
                raise ValueError(f"rule {rule.name!r}: give at least one key pattern")
            if rule.name in names:
                raise ValueError(f"rule names must be unique; {rule.name!r} is used twice")
            names.add(rule.name)
            if rule.action == "hash" and not self.hash_key:
                raise ValueError(f"rule {rule.name!r} hashes values: a hash key is required")
        return self


def _literal_fragment(pattern: str) -> bytes:
    """The longest run of plain characters in a glob: text every matching key contains."""
    # A set is "[", an optional "!", then at least one character (a "]" right after the
    # opening is a member, as fnmatch reads it) up to the next "]"; an unclosed "[" is
    # a plain character.
    runs = re.split(r"[*?]|\[!?\]?[^\]]*\]", pattern)
    return max(runs, key=len).encode()


class PolicyEngine:
    """An :class:`IngestPolicy` compiled for the hot path (one per process)."""

    def __init__(self, policy: IngestPolicy) -> None:
        self.policy = policy
        limits = policy.limits
        self.max_attributes = limits.max_attributes
        self.max_value_bytes = limits.max_value_bytes
        self.max_depth = limits.max_depth
        self.rules = policy.rules
        self._patterns: list[tuple[re.Pattern[str], int]] = [
            (re.compile(fnmatch.translate(pattern)), index)
            for index, rule in enumerate(policy.rules)
            for pattern in rule.keys
        ]
        fragments = {_literal_fragment(p) for rule in policy.rules for p in rule.keys}
        # A fragment that contains another is implied by it: search only the shorter.
        fragments = {f for f in fragments if not any(o != f and o in f for o in fragments)}
        #: None: no rules; () : some pattern has no literal text, so every span is looked at.
        self.literals: tuple[bytes, ...] | None = (
            None if not policy.rules else (() if b"" in fragments else tuple(sorted(fragments)))
        )
        self._rule_of: dict[str, int | None] = {}
        self._hash_key = policy.hash_key

    # ------------------------------------------------------------------ the cheap test

    def span_needs_look(self, span: Any, raw: bytes) -> bool:
        """Whether ``span`` (serialized as ``raw``) might break a limit or match a rule."""
        if len(raw) > self.max_value_bytes or len(span.attributes) > self.max_attributes:
            return True
        if _NESTED.search(raw) is not None:
            return True
        literals = self.literals
        if literals is not None:
            if not literals:
                return True
            for literal in literals:
                if literal in raw:
                    return True
        # An event or link over the attribute limit takes at least two bytes per
        # attribute, so only spans this large need their events and links counted.
        if len(raw) > 2 * self.max_attributes:
            for event in span.events:
                if len(event.attributes) > self.max_attributes:
                    return True
            for link in span.links:
                if len(link.attributes) > self.max_attributes:
                    return True
        return False

    def log_needs_look(self, record: Any, raw: bytes) -> bool:
        """Whether a log record (serialized as ``raw``) might break a limit or match a
        rule: the span test without events and links. A record's body is not an
        attribute: rules and limits apply to its attributes (and its resource and scope)."""
        if len(raw) > self.max_value_bytes or len(record.attributes) > self.max_attributes:
            return True
        if _NESTED.search(raw) is not None:
            return True
        literals = self.literals
        if literals is not None:
            return not literals or any(literal in raw for literal in literals)
        return False

    # ------------------------------------------------------------------ the walk

    def apply_span(self, span: Any, counts: MutableMapping[str, int]) -> bool:
        """Apply limits and rules to a span, its events and links; True if it changed."""
        truncated = self._apply_attributes(span, counts)
        changed = truncated >= 0
        truncated = max(truncated, 0)
        for owner in (*span.events, *span.links):
            cut = self._apply_attributes(owner, counts)
            if cut >= 0:
                changed = True
                truncated += cut
        if truncated:
            self._mark_truncated(span, truncated)
        return changed

    def apply_attributes(self, owner: Any, counts: MutableMapping[str, int]) -> bool:
        """Apply limits and rules to a resource or scope's attributes; True if changed."""
        cut = self._apply_attributes(owner, counts)
        return cut >= 0

    def _mark_truncated(self, span: Any, truncated: int) -> None:
        for kv in span.attributes:
            if kv.key == TRUNCATED_ATTRIBUTE:
                kv.value.int_value = kv.value.int_value + truncated
                return
        span.attributes.add(key=TRUNCATED_ATTRIBUTE).value.int_value = truncated

    def _rule_for(self, key: str) -> int | None:
        try:
            return self._rule_of[key]
        except KeyError:
            pass
        found = None
        for pattern, index in self._patterns:
            if pattern.match(key):
                found = index
                break
        if len(self._rule_of) >= _KEY_CACHE_LIMIT:
            self._rule_of.clear()
        self._rule_of[key] = found
        return found

    def _apply_attributes(self, owner: Any, counts: MutableMapping[str, int]) -> int:
        """-1 when nothing changed, else how many values were cut or flattened (>= 0)."""
        attributes = owner.attributes
        changed = False
        truncated = 0
        if self._patterns:
            drop: list[int] = []
            for position, kv in enumerate(attributes):
                index = self._rule_for(kv.key)
                if index is None:
                    continue
                rule = self.rules[index]
                counts[f"redacted:{rule.name}"] = counts.get(f"redacted:{rule.name}", 0) + 1
                changed = True
                if rule.action == "drop":
                    drop.append(position)
                elif rule.action == "hash":
                    digest = self._digest(kv.value)
                    kv.value.Clear()
                    kv.value.string_value = digest
                else:
                    text = _value_text(kv.value) if rule.keep_last else ""
                    kv.value.Clear()
                    kv.value.string_value = MASK + (text[-rule.keep_last :] if text else "")
            for position in reversed(drop):
                del attributes[position]
        excess = len(attributes) - self.max_attributes
        if excess > 0:
            del attributes[self.max_attributes :]
            owner.dropped_attributes_count = owner.dropped_attributes_count + excess
            counts["dropped_attributes"] = counts.get("dropped_attributes", 0) + excess
            changed = True
        for kv in attributes:
            if kv.key == TRUNCATED_ATTRIBUTE:
                continue
            cut = self._limit_value(kv.value, 1)
            if cut:
                truncated += cut
        if truncated:
            counts["truncated_values"] = counts.get("truncated_values", 0) + truncated
            changed = True
        return truncated if changed else -1

    def _limit_value(self, value: AnyValue, depth: int) -> int:
        which = value.WhichOneof("value")
        if which == "string_value":
            if len(value.string_value) * 4 > self.max_value_bytes:  # cheap pre-test
                encoded = value.string_value.encode()
                if len(encoded) > self.max_value_bytes:
                    value.string_value = encoded[: self.max_value_bytes].decode(
                        "utf-8", errors="ignore"
                    )
                    return 1
            return 0
        if which == "bytes_value":
            if len(value.bytes_value) > self.max_value_bytes:
                value.bytes_value = value.bytes_value[: self.max_value_bytes]
                return 1
            return 0
        if which not in ("array_value", "kvlist_value"):
            return 0
        if depth > self.max_depth:
            kind = "array" if which == "array_value" else "map"
            value.Clear()
            value.string_value = f"[{kind} nested deeper than {self.max_depth}: dropped]"
            return 1
        cut = 0
        if which == "array_value":
            for item in value.array_value.values:
                cut += self._limit_value(item, depth + 1)
        else:
            for kv in value.kvlist_value.values:
                cut += self._limit_value(kv.value, depth + 1)
        return cut

    def _digest(self, value: AnyValue) -> str:
        which = value.WhichOneof("value")
        if which in ("array_value", "kvlist_value"):
            data = value.SerializeToString(deterministic=True)
        elif which == "bytes_value":
            data = value.bytes_value
        else:
            data = _value_text(value).encode()
        mac = hmac.new(self._hash_key, data, hashlib.sha256).hexdigest()
        return f"hmac:{mac[:_HASH_HEX_DIGITS]}"


def _value_text(value: AnyValue) -> str:
    return scalar_text(value) or ""


def scalar_text(value: AnyValue) -> str | None:
    """A scalar attribute value as text; None for arrays, maps and empty values."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return str(value.int_value)
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "double_value":
        return repr(value.double_value)
    if which == "bytes_value":
        return value.bytes_value.hex()
    return None
