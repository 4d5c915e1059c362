"""Access control on a running `seqtrace serve` / `up`: the ingest and read tokens on
every listener (missing, wrong, swapped), CORS only for configured origins, tokens never
in any output, and TLS on every listener (the UI too) with the SDK's exporters."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from test_collector_support import EXPORT, http_call, make_request, make_self_signed_cert

from analyzer.source import HttpSource, SourceError
from tests.conftest import SEQTRACE, Server, start_seqtrace, start_server

INGEST = "in-9f2c41d7e0a8b3"
READ = "rd-5e7a90c3b1f246"
ORIGIN = "https://app.example.com"
PB = {"Content-Type": "application/x-protobuf"}
#: (label, Authorization header or None); "wrong" ones embed the real token, so a log
#: line that echoed what a client sent would still be caught by the grep below.
CREDENTIALS = {
    "missing": None,
    "wrong": f"Bearer {INGEST}x{READ}",
    "no-scheme-ingest": INGEST,
    "ingest": f"Bearer {INGEST}",
    "read": f"Bearer {READ}",
    "lowercase-read": f"bearer {READ}",
}


def api_get(base: str, path: str, auth: str | None) -> int:
    request = urllib.request.Request(f"http://{base}{path}")
    if auth is not None:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def grpc_status(address: str, body: bytes, auth: str | None) -> grpc.StatusCode:
    metadata = (("authorization", auth),) if auth is not None else ()
    with grpc.insecure_channel(address) as channel:
        try:
            channel.unary_unary(EXPORT)(body, metadata=metadata, timeout=20)
        except grpc.RpcError as err:
            return err.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("guarded")
    server = start_server(
        folder / "g.duckdb",
        "--ingest-token",
        INGEST,
        "--cors-origin",
        ORIGIN,
        env={"SEQTRACE_READ_TOKEN": READ},
    )
    yield server
    server.stop()  # already stopped when the last test ran; a no-op then


def test_tokens_on_every_listener(guarded: Server) -> None:
    first = iter(range(1, 1000))
    # OTLP over HTTP (its own port, and the API's /v1/traces) and gRPC: ingest token only.
    for listener in ("otlp-http", "api"):
        for label, auth in CREDENTIALS.items():
            body = make_request(spans=2, first=next(first) * 10).SerializeToString()
            headers = {**PB, **({"Authorization": auth} if auth else {})}
            status, answer_headers, _ = http_call(guarded.addresses[listener], body, headers)
            expected = 200 if label == "ingest" else 401
            assert status == expected, (listener, label, status)
            if status == 401:
                assert answer_headers["www-authenticate"].startswith("Bearer")
    for label, auth in CREDENTIALS.items():
        body = make_request(spans=2, first=next(first) * 10).SerializeToString()
        code = grpc_status(guarded.addresses["otlp-grpc"], body, auth)
        wanted = grpc.StatusCode.OK if label == "ingest" else grpc.StatusCode.UNAUTHENTICATED
        assert code == wanted, (label, code)
    # Reads: the read token only (the scheme's case does not matter).
    for path in ("/api/v1/stats", "/api/v1/ingest-stats", "/api/v1/entities", "/api/v1/traces"):
        for label, auth in CREDENTIALS.items():
            expected = 200 if label in ("read", "lowercase-read") else 401
            assert api_get(guarded.addresses["api"], path, auth) == expected, (path, label)
    assert api_get(guarded.addresses["api"], "/healthz", None) == 200  # liveness is public
    with pytest.raises(SourceError, match="read token"):
        HttpSource(guarded.api, INGEST).stats()  # an ingest token cannot read
    # Exactly the three authorised exports were stored, nothing of the refused ones.
    assert HttpSource(guarded.api, READ).stats()["spans"] == 3 * 2


def test_cors_only_for_the_configured_origin(guarded: Server) -> None:
    for listener in ("otlp-http", "api"):
        address = guarded.addresses[listener]
        preflight = {
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        }
        status, headers, _ = http_call(address, None, preflight, method="OPTIONS")
        assert status == 204 and headers["access-control-allow-origin"] == ORIGIN
        status, headers, _ = http_call(
            address, None, {**preflight, "Origin": "https://evil.example"}, method="OPTIONS"
        )
        assert status in (404, 405) and "access-control-allow-origin" not in headers
        body = make_request(spans=1, first=5000).SerializeToString()
        auth = {"Authorization": f"Bearer {INGEST}", **PB}
        _, headers, _ = http_call(address, body, {**auth, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in headers
        _, headers, _ = http_call(address, body, {**auth, "Origin": ORIGIN})
        assert headers["access-control-allow-origin"] == ORIGIN
    # The read API sends no CORS headers at all: browsers on other origins cannot read it.
    request = urllib.request.Request(
        f"{guarded.api}/api/v1/stats", headers={"Origin": ORIGIN, "Authorization": f"Bearer {READ}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers.get("Access-Control-Allow-Origin") is None


def test_tokens_never_appear_in_any_output(guarded: Server) -> None:
    """Runs last in this module: stops the server and reads everything it printed."""
    assert guarded.stop() == 0
    # Every line it printed, from the start (Server.stop keeps the rest of stdout).
    out = "\n".join(guarded.lines) + (
        guarded.process.stderr.read() if guarded.process.stderr else ""
    )
    assert "every acknowledged span is committed" in out
    for token in (INGEST, READ):
        assert token not in out
        assert token[3:11] not in out  # not even a part of one


def test_equal_ingest_and_read_tokens_are_refused(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            *SEQTRACE,
            "serve",
            "--db",
            str(tmp_path / "x.duckdb"),
            "--ingest-token",
            INGEST,
            "--read-token",
            INGEST,
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--api-port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and out.stderr.startswith("seqtrace: error: ")
    assert "must differ" in out.stderr and INGEST not in out.stderr + out.stdout


# ------------------------------------------------------------------------------------ TLS


def test_tls_on_every_listener_with_the_sdk_exporters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests (under the SDK's HTTP exporter) lets these override certificate_file.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    cert, key = make_self_signed_cert(tmp_path)
    server = start_seqtrace(
        "up",
        "--no-demo",
        "--db",
        str(tmp_path / "tls.duckdb"),
        "--tls-cert",
        cert,
        "--tls-key",
        key,
        "--ingest-token",
        INGEST,
        env={"SEQTRACE_READ_TOKEN": READ},
    )
    addresses = server.addresses
    try:
        provider = TracerProvider(resource=Resource.create({"service.name": "tls-app"}))
        grpc_port = addresses["otlp-grpc"].rsplit(":", 1)[1]
        http_port = addresses["otlp-http"].rsplit(":", 1)[1]
        grpc_exporter = GrpcExporter(
            endpoint=f"https://localhost:{grpc_port}",
            credentials=grpc.ssl_channel_credentials(Path(cert).read_bytes()),
            headers={"authorization": f"Bearer {INGEST}"},
        )
        http_exporter = HttpExporter(
            endpoint=f"https://localhost:{http_port}/v1/traces",
            certificate_file=cert,
            headers={"Authorization": f"Bearer {INGEST}"},
        )
        provider.add_span_processor(SimpleSpanProcessor(grpc_exporter))
        provider.add_span_processor(SimpleSpanProcessor(http_exporter))
        tracer = provider.get_tracer("tls")
        for n in range(3):
            with tracer.start_as_current_span(f"op-{n}") as span:
                span.set_attribute("order.id", f"ORD-{n}")
        provider.shutdown()
        # The query API over HTTPS, trusting the server's own certificate.
        monkeypatch.setenv("SEQTRACE_API_CA", cert)
        source = HttpSource(f"https://{addresses['api']}", READ)
        assert source.stats()["spans"] == 3  # each span came through both exporters
        receivers = source._request("/api/v1/ingest-stats")["receivers"]
        assert receivers["requests"] == 6 and receivers["failed_requests"] == 0
        # The UI serves HTTPS with the same certificate.
        context = ssl.create_default_context(cafile=cert)
        ui_port = addresses["ui"].rsplit(":", 1)[1]
        with urllib.request.urlopen(
            f"https://localhost:{ui_port}/_stcore/health", timeout=10, context=context
        ) as response:
            assert response.status == 200
        # Plain text is refused everywhere.
        for name in ("api", "otlp-http", "ui"):
            with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
                urllib.request.urlopen(f"http://{addresses[name]}/healthz", timeout=5).read()
        with (
            grpc.insecure_channel(addresses["otlp-grpc"]) as channel,
            pytest.raises(grpc.RpcError),
        ):
            channel.unary_unary(EXPORT)(b"", timeout=5)
    finally:
        assert server.stop() == 0
    out = "\n".join(server.lines) + (server.process.stderr.read() if server.process.stderr else "")
    assert "https://" in out and INGEST not in out and READ not in out
    assert json.dumps(addresses)
