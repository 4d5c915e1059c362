"""httpbase, the serving base of the OTLP/HTTP receiver and the query API: the one error
renderer (its exact shape), tokens, and that neither server ever answers with the text of
an unexpected exception (it may quote paths, queries or span data)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.rpc import status_pb2
from test_collector_support import FailingWriter, http_call, make_request, running_collector

from analyzer.source import LocalSource
from httpbase import Answer, BearerToken, error_answer, error_body, internal_error
from seqtrace.api import ApiServer
from spanstore.duckdb_store import DuckDBStore
from spanstore.otlp import request_to_json

SECRET = "secret /etc/shadow SELECT * FROM spans <b>"


def test_the_error_body_shape_is_pinned() -> None:
    # SPEC "Query API": errors are {"error": str}; this is the byte shape every client sees.
    assert error_body("no such endpoint: /x") == b'{"error": "no such endpoint: /x"}'
    assert error_body('quote " and \\ and ü') == b'{"error": "quote \\" and \\\\ and \\u00fc"}'
    assert error_answer(503, "busy", ("Retry-After", "2")) == Answer(
        503,
        (("Content-Type", "application/json"), ("Retry-After", "2")),
        b'{"error": "busy"}',
    )


def test_internal_error_names_the_type_never_the_text() -> None:
    assert internal_error(RuntimeError(SECRET)) == "internal error (RuntimeError)"
    assert internal_error(KeyError("x")) == "internal error (KeyError)"


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer s3cret", True),
        ("bearer s3cret", True),
        ("BEARER   s3cret  ", True),
        ("  Bearer s3cret", True),
        ("Bearer s3cre", False),
        ("Bearer s3cret2", False),
        ("Bearer S3CRET", False),
        ("Basic s3cret", False),
        ("s3cret", False),
        ("Bearer", False),
        ("", False),
        (None, False),
    ],
)
def test_bearer_token(header: str | None, ok: bool) -> None:
    assert BearerToken("s3cret").matches(header) is ok


def test_the_api_never_answers_with_exception_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DuckDBStore(tmp_path / "a.duckdb") as store:
        source = LocalSource(store)

        def broken(*args: Any) -> Any:
            raise RuntimeError(SECRET)

        monkeypatch.setattr(source, "stats", broken)
        api = ApiServer(source, port=0)
        api.start()
        try:
            status, headers, body = http_call(api.address, None, method="GET", path="/api/v1/stats")
        finally:
            api.stop()
    assert status == 500
    assert headers["content-type"] == "application/json"
    assert body == b'{"error": "internal error (RuntimeError)"}'
    assert b"secret" not in body


def test_the_receiver_never_answers_with_exception_text() -> None:
    writer = FailingWriter(RuntimeError(SECRET))
    request = make_request()
    with running_collector(writer, grpc_port=None) as collector:
        address = collector.addresses["otlp-http"]
        status, headers, body = http_call(
            address, request.SerializeToString(), {"Content-Type": "application/x-protobuf"}
        )
        assert status == 500 and headers["content-type"] == "application/x-protobuf"
        answer = status_pb2.Status.FromString(body)
        assert answer.message == "internal error (RuntimeError)"
        status, headers, body = http_call(
            address,
            json.dumps(request_to_json(request)).encode(),
            {"Content-Type": "application/json"},
        )
    assert status == 500 and headers["content-type"] == "application/json"
    assert json.loads(body) == {"code": 13, "message": "internal error (RuntimeError)"}
    assert writer.calls == 2
