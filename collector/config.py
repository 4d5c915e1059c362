"""Receiver settings: one dataclass, its defaults, and the checks that run before binding."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from spanstore.config import check_niceness

__all__ = ["MIB", "ReceiverConfig"]

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    """How the OTLP receivers listen and what they accept.

    A port of ``0`` picks a free port; ``None`` turns that receiver off (the query API
    server can then mount the HTTP handler itself).
    """

    host: str = "127.0.0.1"
    grpc_port: int | None = 4317
    http_port: int | None = 4318
    #: Limit on the request body AFTER Content-Encoding is undone (OTLP: the size limit
    #: applies to the decompressed payload, so a gzip bomb is refused at this size).
    max_http_body_bytes: int = 20 * MIB
    #: gRPC's own ``max_receive_message_length``; grpc answers RESOURCE_EXHAUSTED above it.
    max_grpc_message_bytes: int = 4 * MIB
    #: Seconds a request may wait for the store to commit before it is answered as
    #: retryable (HTTP 503 / gRPC UNAVAILABLE).
    write_timeout: float = 10.0
    #: Seconds a client is told to wait before retrying (Retry-After / RetryInfo).
    retry_after_seconds: int = 2
    #: When set, requests need ``Authorization: Bearer <token>``.
    ingest_token: str | None = None
    grpc_workers: int = 8
    #: Seconds an idle or stalled HTTP connection is kept before it is closed.
    http_idle_timeout: float = 30.0
    #: Open HTTP connections (one thread each) beyond which new ones are refused with 503.
    http_max_connections: int = 256
    tls_cert: str | None = None
    tls_key: str | None = None
    #: Browser origins allowed to POST (``"https://app.example.com"``, or ``"*"``).
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    #: Memory budget for request bodies the receivers hold (being read, decompressed,
    #: decoded or waiting for the store). A request that does not fit is answered
    #: 503 + Retry-After / UNAVAILABLE + RetryInfo before its body is read.
    max_inflight_bytes: int = 64 * MIB
    #: Seconds a request may wait in line for room in that budget before it is refused.
    admission_wait: float = 1.0
    #: Steps nicer than the server the request threads run (0-19; Linux): under a flood
    #: the server's reads get the CPU first (docs/config.md, "Reads under load").
    thread_niceness: int = 0

    def validate(self) -> ReceiverConfig:
        """Raise ``ValueError`` naming the first bad setting; return ``self`` when all are fine."""
        if not self.host or any(c.isspace() for c in self.host):
            raise ValueError(f"bind host must be a host name or address, got {self.host!r}")
        for name in ("grpc_port", "http_port"):
            port = getattr(self, name)
            if port is None:
                continue
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise ValueError(
                    f"{name} must be an integer in 0..65535 (0 = any free port), got {port!r}"
                )
        if self.grpc_port is not None and self.grpc_port == self.http_port and self.grpc_port != 0:
            raise ValueError(f"grpc_port and http_port must differ, both are {self.grpc_port}")
        _positive_int("max_http_body_bytes", self.max_http_body_bytes)
        _positive_int("max_grpc_message_bytes", self.max_grpc_message_bytes)
        # grpc stores the limit in a C int.
        if self.max_grpc_message_bytes > 2**31 - 1:
            raise ValueError("max_grpc_message_bytes must be below 2 GiB")
        _positive_int("grpc_workers", self.grpc_workers)
        check_niceness("thread_niceness", self.thread_niceness)
        _positive_int("http_max_connections", self.http_max_connections)
        _positive_int("retry_after_seconds", self.retry_after_seconds)
        _positive_int("max_inflight_bytes", self.max_inflight_bytes)
        if isinstance(self.admission_wait, bool) or not isinstance(
            self.admission_wait, int | float
        ):
            raise ValueError(
                f"admission_wait must be a number of seconds, got {self.admission_wait!r}"
            )
        if self.admission_wait < 0:
            raise ValueError(f"admission_wait must be >= 0, got {self.admission_wait!r}")
        for name in ("write_timeout", "http_idle_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.ingest_token is not None and (
            not self.ingest_token or any(c.isspace() for c in self.ingest_token)
        ):
            raise ValueError(
                "ingest_token must be a non-empty string without spaces (None disables it)"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        for name in ("tls_cert", "tls_key"):
            path = getattr(self, name)
            if path is not None and not os.access(path, os.R_OK):
                raise ValueError(f"{name}: cannot read {path}")
        if isinstance(self.cors_origins, str):
            raise ValueError("cors_origins must be a list of origins, not one string")
        for origin in self.cors_origins:
            if origin != "*" and not (
                origin.startswith(("http://", "https://")) and "/" not in origin.split("//", 1)[1]
            ):
                raise ValueError(
                    f"cors origin {origin!r} must be '*' or scheme://host[:port] without a path"
                )
        return self


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
