"""Types of the C extension built from _otlpscan.c (see spanstore/decode/scan.py)."""

from collections.abc import Callable
from typing import Final, TypeAlias

from typing_extensions import Buffer

#: One Arrow column: (null_count, validity bitmap or None, [int32 offsets,] data), the
#: buffers ``pa.Array.from_buffers`` takes after the null count.
Column: TypeAlias = tuple[int, *tuple[bytes | None, ...]]
#: (resource_id, scope_id, service_name, resource entity (key, value) pairs)
ScopeRow: TypeAlias = tuple[int, int, str, tuple[tuple[str, str], ...]]
#: (span name, len(trace_id), len(span_id), len(parent_span_id)) of a rejected span
RejectSample: TypeAlias = tuple[str, int, int, int]
ScanResult: TypeAlias = tuple[
    int,  # span rows
    list[Column],  # span columns, in spanstore.decode.prepare.SPAN_COLUMNS order
    int,  # entity rows
    list[Column],
    int,  # link rows
    list[Column],
    list[bytes],  # span_keys
    int,  # min_start
    int,  # max_start
    int,  # rejected
    int,  # duplicates
    list[RejectSample],  # the first five rejected spans
]

SPAN_COLUMN_PREFIX: Final[tuple[str, ...]]
ENTITY_COLUMNS: Final[tuple[str, ...]]
LINK_COLUMNS: Final[tuple[str, ...]]

class KeyTable:
    """Attribute key (UTF-8 bytes) -> key code: -1 not indexed, -2 an entity key, else
    semantic column index << 8 | rank (string columns first, then int columns)."""

    def __init__(self, n_string: int, n_int: int, limit: int) -> None: ...
    def __len__(self) -> int: ...
    def clear(self) -> None: ...

def scan(
    data: Buffer,
    scopes: tuple[ScopeRow, ...],
    table: KeyTable,
    classify: Callable[[str], int],
    limits: tuple[int, int, int] | None,
    /,
) -> ScanResult | str: ...
