"""Attribute tests on a span's stored protobuf (``spans.raw``) as byte patterns.

seqtrace keeps the semantic-convention attributes in columns and every other attribute
only inside ``raw`` (the span's OTLP protobuf). Rather than decode every span, equality,
presence and ``nil`` tests look for the exact bytes an attribute is encoded as, a
``contains``/``position`` the engine runs over the column at memory speed:

* ``key = "v"`` is the whole ``Span.attributes`` entry, ``0x4A len KeyValue``, with
  ``KeyValue = 0x0A len key 0x12 len AnyValue`` and ``AnyValue = 0x0A len v`` (strings),
  ``0x18 varint`` (ints), ``0x21 float64`` (doubles), ``0x10 0|1`` (bools). Starting at
  the ``Span.attributes`` tag (field 9) keeps event and link attributes (other tags) out.
* presence is ``0x0A len key 0x12``, the start of any KeyValue with that key: it may
  also match an event's or a link's attribute of the same key (documented).

Protobuf writers emit fields in field-number order, which every OTLP exporter does; a
value whose bytes happen to contain such a pattern inside a longer string can match too.
"""

from __future__ import annotations

import struct


def varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + varint(len(payload)) + payload


def key_prefix(key: str) -> bytes:
    """The bytes every KeyValue with this key starts with (up to the value's tag)."""
    return _length_delimited(0x0A, key.encode()) + b"\x12"


def any_value(value: str | int | float | bool) -> bytes:
    if isinstance(value, bool):
        return b"\x10" + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x21" + struct.pack("<d", value)
    return _length_delimited(0x0A, value.encode())


def span_attribute(key: str, value: str | int | float | bool) -> bytes:
    """The exact bytes of ``Span.attributes`` entry key=value."""
    key_value = _length_delimited(0x0A, key.encode()) + _length_delimited(0x12, any_value(value))
    return _length_delimited(0x4A, key_value)


def equal_patterns(key: str, value: str | int | float | bool) -> list[bytes]:
    """Every encoding of an attribute equal to ``value`` (a number may be stored as an
    int or a double)."""
    if isinstance(value, bool | str):
        return [span_attribute(key, value)]
    patterns = [span_attribute(key, float(value))]
    if float(value).is_integer() and abs(value) < 2**63:
        patterns.append(span_attribute(key, int(value)))
    return patterns
