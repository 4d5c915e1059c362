"""Which incoming spans might be stored already: a Bloom filter over (trace_id, span_id).

A span re-sent with the same ids must be stored once. Checking every batch against the
table would scan the newest data on every write (ids are random, so no index or zone map
narrows it), which is what made ingest slow. Instead a Bloom filter answers "certainly new"
for almost every span in microseconds per batch, vectorised with numpy; only the few
"maybe seen" spans are checked exactly against the table. The filter grows by layers when
it fills, and forgets layers that were filled long enough ago; it reports the latest span
start they held, and the store checks spans that started before that exactly
(``DuckDBStore``'s dedup window). So the filter holds recent spans only, whatever the size
of the store, and is built from them when the store opens.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["SeenFilter", "key_hashes", "key_hashes_from_buffer"]

_BITS_PER_KEY: Final = 20
#: Bits per key and hashes: few false positives at capacity. Each false positive costs
#: an exact look-up in DuckDB under the ingest lock; with fewer bits and hashes a large
#: share of requests paid one (docs/performance.md).
_HASHES: Final = 10
_MIN_CAPACITY: Final = 1 << 20
#: Later layers get more bits per key (up to this), so their error rates shrink.
_MAX_BITS_PER_KEY: Final = 28
#: A start time before any span's, and one after every span's (keys added without a time
#: are never forgotten).
_NEVER: Final = -(2**63)
_ALWAYS: Final = 2**63 - 1
_M1: Final = np.uint64(0x9E3779B97F4A7C15)
_M2: Final = np.uint64(0xBF58476D1CE4E5B9)
_M3: Final = np.uint64(0x94D049BB133111EB)

U64Array = npt.NDArray[np.uint64]


def _mix(x: U64Array) -> U64Array:
    """splitmix64's finaliser: spreads every input bit over the output (ids may be
    hand-made, like 0x0101..., not random)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M2
    x = x ^ (x >> np.uint64(27))
    x = x * _M3
    return x ^ (x >> np.uint64(31))


def key_hashes(keys: Sequence[bytes]) -> U64Array:
    """One 64-bit hash per 24-byte key (16-byte trace id + 8-byte span id)."""
    return key_hashes_from_buffer(b"".join(keys))


def key_hashes_from_buffer(packed: bytes | memoryview) -> U64Array:
    """Hashes of 24-byte keys packed back to back (as a fixed-size Arrow column is)."""
    if len(packed) == 0:
        return np.zeros(0, dtype=np.uint64)
    words = np.frombuffer(packed, dtype="<u8").reshape(-1, 3)
    with np.errstate(over="ignore"):
        return _mix(words[:, 0] ^ _mix(words[:, 1] * _M1) ^ _mix(words[:, 2] + _M1))


class _Layer:
    """One fixed-size Bloom filter."""

    def __init__(self, capacity: int, bits_per_key: int) -> None:
        self.capacity = capacity
        self.count = 0
        #: The latest start time of a span added (unix ns): what the store must check
        #: exactly once the layer is forgotten.
        self.newest_start = _NEVER
        #: ``time.monotonic()`` when the next layer took over (None: still the newest).
        self.closed_at: float | None = None
        self._bits_total = np.uint64(capacity * bits_per_key)
        # Rounded up: a capacity times bits per key need not be a multiple of 8.
        self._bits = np.zeros((capacity * bits_per_key + 7) // 8, dtype=np.uint8)

    @property
    def nbytes(self) -> int:
        return int(self._bits.nbytes)

    def _positions(self, hashes: U64Array) -> U64Array:
        # Double hashing (Kirsch-Mitzenmacher): position_i = h1 + i * h2.
        h1 = hashes
        with np.errstate(over="ignore"):
            h2 = _mix(hashes + _M1) | np.uint64(1)
            steps = np.arange(_HASHES, dtype=np.uint64)[:, None]
            return (h1[None, :] + steps * h2[None, :]) % self._bits_total

    def add(self, hashes: U64Array, newest_start: int) -> None:
        self.newest_start = max(self.newest_start, newest_start)
        positions = self._positions(hashes).ravel()
        np.bitwise_or.at(
            self._bits,
            (positions >> np.uint64(3)).astype(np.intp),
            (np.uint8(1) << (positions & np.uint64(7)).astype(np.uint8)),
        )
        self.count += int(hashes.size)

    def maybe_seen(self, hashes: U64Array) -> npt.NDArray[np.bool_]:
        positions = self._positions(hashes)
        bytes_ = self._bits[(positions >> np.uint64(3)).astype(np.intp)]
        bits = (bytes_ >> (positions & np.uint64(7)).astype(np.uint8)) & np.uint8(1)
        return np.asarray(bits.all(axis=0), dtype=bool)


class SeenFilter:
    """A Bloom filter of stored span keys that grows without being rebuilt.

    When the newest layer is full, a layer of twice the capacity (and a few more bits
    per key, so the false-positive rates of all layers add up to little) is started and
    the old ones stay. Rebuilding instead meant reading every stored key: a stall of
    ingest that grows with the store (the p99 of ``bench/bench_ingest.py``). Not
    thread-safe: the store's ingest lock guards it.
    """

    def __init__(self, capacity: int = _MIN_CAPACITY) -> None:
        self._layers = [_Layer(max(_MIN_CAPACITY, capacity), _BITS_PER_KEY)]

    @property
    def capacity(self) -> int:
        return sum(layer.capacity for layer in self._layers)

    @property
    def count(self) -> int:
        return sum(layer.count for layer in self._layers)

    @property
    def layers(self) -> int:
        return len(self._layers)

    @property
    def nbytes(self) -> int:
        return sum(layer.nbytes for layer in self._layers)

    def add(self, hashes: U64Array, newest_start: int = _ALWAYS) -> None:
        """Add keys; ``newest_start`` is the latest start time among their spans."""
        if hashes.size == 0:
            return
        newest = self._layers[-1]
        if newest.count + hashes.size > newest.capacity:
            bits = min(_MAX_BITS_PER_KEY, _BITS_PER_KEY + 2 * len(self._layers))
            # Twice what it holds: forgotten layers do not make the next one larger.
            newest.closed_at = time.monotonic()
            newest = _Layer(max(_MIN_CAPACITY, 2 * self.count, 2 * hashes.size), bits)
            self._layers.append(newest)
        newest.add(hashes, newest_start)

    def forget_closed_before(self, moment: float) -> int | None:
        """Drop the layers that stopped taking keys before ``moment`` (monotonic time).
        Returns the latest span start they held, or None if none was dropped: the caller
        must check spans that started up to then exactly from now on."""
        dropped = [
            layer
            for layer in self._layers[:-1]
            if layer.closed_at is not None and layer.closed_at < moment
        ]
        if not dropped:
            return None
        self._layers = [layer for layer in self._layers if layer not in dropped]
        return max(layer.newest_start for layer in dropped)

    def maybe_seen(self, hashes: U64Array) -> npt.NDArray[np.bool_]:
        """False means certainly not added; True means perhaps (check exactly)."""
        if hashes.size == 0:
            return np.zeros(0, dtype=bool)
        found = self._layers[-1].maybe_seen(hashes)
        for layer in self._layers[:-1]:
            found |= layer.maybe_seen(hashes)
        return found
