"""How a store turns one request into a :class:`PreparedBatch` (or a logs request into a
:class:`LogBatch`): the same for every engine.

In the calling thread (the C scanner, or the Python reference for what it declines), or,
when the store was given decoder processes, in one of those (``spanstore.decode.pool``).
The ingest policy and the entity keys travel with it, so every store applies them alike.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from spanstore.base import StoreUnavailable
from spanstore.decode.pool import DecoderPool, prepare_serialized
from spanstore.decode.prepare import KeyClassifier, PreparedBatch, prepare_request
from spanstore.logs import LogBatch, prepare_logs
from spanstore.policy import IngestPolicy, PolicyEngine

__all__ = ["RequestDecoder"]


class RequestDecoder:
    """Decodes requests for one store (see the module docstring)."""

    def __init__(self, entity_keys: frozenset[str], policy: IngestPolicy | None) -> None:
        self.entity_keys = entity_keys
        self.policy_config = policy.validate() if policy is not None else None
        self.keys = KeyClassifier(entity_keys)
        self.policy = PolicyEngine(self.policy_config) if self.policy_config is not None else None
        self.pool: DecoderPool | None = None

    def start_processes(self, processes: int, niceness: int = 0) -> None:
        """Decode in ``processes`` worker processes from now on (none: in the caller),
        at that scheduling niceness."""
        if processes > 0:
            self.pool = DecoderPool(processes, self.entity_keys, self.policy_config, niceness)

    def prepare(
        self, request: ExportTraceServiceRequest | bytes, timeout: float | None
    ) -> PreparedBatch:
        if self.pool is None:
            if isinstance(request, bytes):
                return prepare_serialized(request, self.keys, self.policy)
            return prepare_request(request, self.keys, self.policy)
        data = request if isinstance(request, bytes) else request.SerializeToString()
        try:
            return self.pool.prepare(data, timeout)
        except multiprocessing.TimeoutError:
            raise StoreUnavailable("decoding did not finish in time; retry") from None

    def prepare_logs(
        self, request: ExportLogsServiceRequest | bytes, timeout: float | None
    ) -> LogBatch:
        """A logs request's batch, decoded where spans are (off the server's interpreter
        lock when the store has decoder processes)."""
        if self.pool is None:
            return prepare_logs(request, self.policy)
        data = request if isinstance(request, bytes) else request.SerializeToString()
        try:
            return self.pool.prepare_logs(data, timeout)
        except multiprocessing.TimeoutError:
            raise StoreUnavailable("decoding did not finish in time; retry") from None

    def policy_stats(self, counts: Mapping[str, int]) -> dict[str, Any]:
        """What the policy changed, from a store's counts of ``PreparedBatch.counts``."""
        rules = self.policy_config.rules if self.policy_config is not None else ()
        return {
            "redacted": {rule.name: counts.get(f"redacted:{rule.name}", 0) for rule in rules},
            "truncated_values": counts.get("truncated_values", 0),
            "dropped_attributes": counts.get("dropped_attributes", 0),
        }

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
