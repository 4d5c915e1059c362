"""ReceiverConfig defaults and validation messages."""

from __future__ import annotations

from typing import Any

import pytest

from collector import ReceiverConfig


def test_defaults_follow_the_spec() -> None:
    config = ReceiverConfig().validate()
    assert (config.host, config.grpc_port, config.http_port) == ("127.0.0.1", 4317, 4318)
    assert config.max_http_body_bytes == 20 * 1024 * 1024
    assert config.max_grpc_message_bytes == 4 * 1024 * 1024
    assert config.ingest_token is None
    assert config.cors_origins == ()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"grpc_port": 70000}, "grpc_port"),
        ({"http_port": -1}, "http_port"),
        ({"grpc_port": 5000, "http_port": 5000}, "must differ"),
        ({"host": ""}, "bind host"),
        ({"max_http_body_bytes": 0}, "max_http_body_bytes"),
        ({"max_grpc_message_bytes": 2**31}, "max_grpc_message_bytes"),
        ({"write_timeout": 0}, "write_timeout"),
        ({"grpc_workers": 0}, "grpc_workers"),
        ({"ingest_token": ""}, "ingest_token"),
        ({"ingest_token": "has space"}, "ingest_token"),
        ({"tls_cert": "/nonexistent.pem"}, "together"),
        ({"tls_cert": "/nonexistent.pem", "tls_key": "/nonexistent.key"}, "cannot read"),
        ({"cors_origins": ("example.com",)}, "cors origin"),
        ({"cors_origins": "https://a.example"}, "list of origins"),
        ({"thread_niceness": 20}, "thread_niceness must be 0-19"),
        ({"thread_niceness": -1}, "thread_niceness must be 0-19"),
        ({"thread_niceness": True}, "thread_niceness must be an integer"),
    ],
)
def test_bad_settings_are_named(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReceiverConfig(**settings).validate()


def test_zero_and_none_ports() -> None:
    # 0 is "any free port" on both listeners, so two zeros do not clash (5000 twice does,
    # above); None turns a listener off. validate() hands back the same, unchanged config.
    both = ReceiverConfig(grpc_port=0, http_port=0)
    assert both.validate() is both
    assert (both.grpc_port, both.http_port) == (0, 0)
    http_only = ReceiverConfig(
        grpc_port=None, http_port=0, cors_origins=("*", "http://localhost:3000")
    )
    assert http_only.validate() is http_only
    assert http_only.grpc_port is None
    assert http_only.cors_origins == ("*", "http://localhost:3000")
    with pytest.raises(ValueError, match="must differ"):
        ReceiverConfig(grpc_port=4317, http_port=4317).validate()
    with pytest.raises(ValueError, match="http_port"):
        ReceiverConfig(grpc_port=None, http_port=65536).validate()
