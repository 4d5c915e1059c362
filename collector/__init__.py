"""The OTLP collector: gRPC and HTTP receivers in front of a :class:`~spanstore.base.SpanWriter`.

Usage::

    collector = Collector(ReceiverConfig(grpc_port=0, http_port=0), store)
    addresses = collector.start()   # {"otlp-grpc": "127.0.0.1:NNNN", "otlp-http": ...}
    ...
    collector.stop(grace=5.0)       # stop accepting, drain in-flight requests, return

A request is acknowledged only once the store has made its spans durable (the store's
``write`` returns after the ingest journal's fsync; the database commit follows in the
writer thread, and the journal is loaded again on the next open), so an acknowledged
span survives a crash.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from collector.config import ReceiverConfig
from collector.grpc_receiver import GrpcReceiver
from collector.http_receiver import HttpAnswer, HttpReceiver, OtlpHttpHandler
from collector.ingest import Ingest, IngestCounters
from spanstore.base import SpanWriter
from spanstore.budget import MemoryBudget

__all__ = ["Collector", "HttpAnswer", "IngestCounters", "OtlpHttpHandler", "ReceiverConfig"]

log = logging.getLogger(__name__)


class Collector:
    """Both OTLP receivers over one writer.

    ``start``/``stop`` are thread-safe; a stopped collector can be started again.
    """

    def __init__(
        self, config: ReceiverConfig, writer: SpanWriter, budget: MemoryBudget | None = None
    ) -> None:
        """``budget`` is the memory budget for request bodies in flight; by default one
        of ``config.max_inflight_bytes``."""
        self.config = config.validate()
        self.ingest = Ingest(self.config, writer, budget)
        self._grpc: GrpcReceiver | None = None
        self._http: HttpReceiver | None = None
        self._addresses: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def addresses(self) -> dict[str, str]:
        """Bound addresses by listener name (``otlp-grpc``, ``otlp-http``); empty before start."""
        return dict(self._addresses)

    def http_handler(self) -> OtlpHttpHandler:
        """The OTLP/HTTP protocol as a function, for a server that mounts ``/v1/traces``."""
        return OtlpHttpHandler(self.ingest)

    def counters(self) -> IngestCounters:
        return self.ingest.counters()

    def start(self) -> dict[str, str]:
        """Bind and start the enabled receivers; returns their addresses.

        Raises ``OSError`` naming the listener when a port cannot be bound; nothing is
        left running then.
        """
        with self._lock:
            if self._addresses:
                raise RuntimeError("collector already started")
            try:
                if self.config.grpc_port is not None:
                    self._grpc = GrpcReceiver(self.config, self.ingest)
                    self._addresses["otlp-grpc"] = self._grpc.start()
                if self.config.http_port is not None:
                    self._http = HttpReceiver(self.config, self.ingest)
                    self._addresses["otlp-http"] = self._http.start()
            except BaseException:
                self._stop_receivers(0.0)
                raise
            return dict(self._addresses)

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let in-flight requests finish (up to ``grace`` seconds), return.

        Every request acknowledged before ``stop`` returns is durable in the store.
        The writer itself stays open: its owner closes it.
        """
        with self._lock:
            self._stop_receivers(grace)

    def _stop_receivers(self, grace: float) -> None:
        # Both receivers drain at the same time, so the total wait is one grace period.
        threads = [
            threading.Thread(target=receiver.stop, args=(grace,), name="collector-stop")
            for receiver in (self._grpc, self._http)
            if receiver is not None
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._grpc = self._http = None
        self._addresses = {}

    def __enter__(self) -> Collector:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
