"""OTLP/gRPC receiver against the real DuckDBStore: success, partial success, limits,
tokens, the error mapping (with RetryInfo), TLS and a clean stop."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from test_collector_support import (
    EXPORT,
    FailingWriter,
    PermanentStoreError,
    http_call,
    make_request,
    make_self_signed_cert,
    open_store,
    running_collector,
)

from collector import Collector, ReceiverConfig
from spanstore.base import StoreUnavailable
from spanstore.duckdb_store import DuckDBStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBStore]:
    with open_store(tmp_path) as s:
        yield s


@pytest.fixture
def collector(store: DuckDBStore) -> Iterator[Collector]:
    with running_collector(store) as c:
        yield c


def export(
    address: str,
    payload: bytes,
    metadata: tuple[tuple[str, str], ...] = (),
    compression: grpc.Compression | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> ExportTraceServiceResponse:
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    if credentials is None:
        channel = grpc.insecure_channel(address, options=options)
    else:
        channel = grpc.secure_channel(address, credentials, options=options)
    with channel:
        call = channel.unary_unary(EXPORT)
        reply = call(payload, metadata=metadata, compression=compression, timeout=30)
    response: ExportTraceServiceResponse = ExportTraceServiceResponse.FromString(reply)
    return response


def rpc_error(fn: Callable[..., object], *args: object, **kwargs: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kwargs)
    return info.value


def status_details(err: grpc.RpcError) -> status_pb2.Status:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            return status_pb2.Status.FromString(value)
    raise AssertionError("no grpc-status-details-bin in the trailers")


def test_export_is_stored(collector: Collector, store: DuckDBStore) -> None:
    response = export(collector.addresses["otlp-grpc"], make_request(spans=8).SerializeToString())
    assert not response.HasField("partial_success")
    assert store.stats().spans == 8


def test_gzip_compressed_export_is_accepted(collector: Collector, store: DuckDBStore) -> None:
    export(
        collector.addresses["otlp-grpc"],
        make_request(spans=5).SerializeToString(),
        compression=grpc.Compression.Gzip,
    )
    assert store.stats().spans == 5


def test_empty_request_is_ok(collector: Collector, store: DuckDBStore) -> None:
    response = export(collector.addresses["otlp-grpc"], b"")
    assert response == ExportTraceServiceResponse()
    assert store.stats().spans == 0


def test_partial_success(collector: Collector, store: DuckDBStore) -> None:
    request = make_request(spans=4)
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[1].trace_id = b"\x07" * 15
    spans[2].ClearField("span_id")
    response = export(collector.addresses["otlp-grpc"], request.SerializeToString())
    assert response.partial_success.rejected_spans == 2
    assert response.partial_success.error_message
    assert store.stats().spans == 2


def test_malformed_request_is_invalid_argument(collector: Collector, store: DuckDBStore) -> None:
    err = rpc_error(export, collector.addresses["otlp-grpc"], b"\xff\xff\xff\xff")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert status_details(err).code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert store.stats().spans == 0


def test_over_4_mib_is_resource_exhausted(collector: Collector, store: DuckDBStore) -> None:
    request = make_request(spans=1)
    request.resource_spans[0].scope_spans[0].spans[0].attributes.add(
        key="big"
    ).value.string_value = "x" * (4 * 1024 * 1024 + 10)
    err = rpc_error(export, collector.addresses["otlp-grpc"], request.SerializeToString())
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert store.stats().spans == 0


def test_limit_applies_after_gzip(collector: Collector, store: DuckDBStore) -> None:
    request = make_request(spans=1)
    request.resource_spans[0].scope_spans[0].spans[0].attributes.add(
        key="big"
    ).value.string_value = "x" * (5 * 1024 * 1024)
    err = rpc_error(
        export,
        collector.addresses["otlp-grpc"],
        request.SerializeToString(),
        compression=grpc.Compression.Gzip,
    )
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert store.stats().spans == 0


def test_token(store: DuckDBStore) -> None:
    payload = make_request(spans=3).SerializeToString()
    with running_collector(store, ingest_token="t0ken") as c:
        address = c.addresses["otlp-grpc"]
        for metadata in ((), (("authorization", "Bearer nope"),), (("authorization", "t0ken"),)):
            err = rpc_error(export, address, payload, metadata)
            assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        assert store.stats().spans == 0
        export(address, payload, (("authorization", "Bearer t0ken"),))
    assert store.stats().spans == 3


def test_retryable_store_error_is_unavailable_with_retry_info() -> None:
    with running_collector(FailingWriter(StoreUnavailable("locked")), retry_after_seconds=4) as c:
        err = rpc_error(export, c.addresses["otlp-grpc"], make_request().SerializeToString())
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    status = status_details(err)
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    assert info.retry_delay.seconds == 4


def test_permanent_store_error_is_internal() -> None:
    with running_collector(FailingWriter(PermanentStoreError("bad schema"))) as c:
        err = rpc_error(export, c.addresses["otlp-grpc"], make_request().SerializeToString())
    assert err.code() == grpc.StatusCode.INTERNAL
    assert not status_details(err).details


def test_unknown_method_is_unimplemented(collector: Collector) -> None:
    with grpc.insecure_channel(collector.addresses["otlp-grpc"]) as channel:
        # Traces, logs and metrics are served; profiles are not (yet) an OTLP signal here.
        method = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
        call = channel.unary_unary(method)
        err = rpc_error(call, b"", timeout=10)
    assert err.code() == grpc.StatusCode.UNIMPLEMENTED


def test_tls_on_both_listeners(store: DuckDBStore, tmp_path: Path) -> None:
    cert, key = make_self_signed_cert(tmp_path)
    with running_collector(store, tls_cert=cert, tls_key=key) as c:
        credentials = grpc.ssl_channel_credentials(Path(cert).read_bytes())
        grpc_host = "localhost:" + c.addresses["otlp-grpc"].rsplit(":", 1)[1]
        export(grpc_host, make_request(spans=2).SerializeToString(), credentials=credentials)
        context = ssl.create_default_context(cafile=cert)
        status, _, _ = http_call(
            c.addresses["otlp-http"],
            make_request(spans=3, first=10).SerializeToString(),
            {"Content-Type": "application/x-protobuf"},
            tls=context,
        )
        assert status == 200
        # A plain-text client gets no answer from a TLS listener.
        err = rpc_error(
            export, c.addresses["otlp-grpc"], make_request(first=20).SerializeToString()
        )
        assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert store.stats().spans == 5


def test_port_in_use_is_a_clear_error(collector: Collector, store: DuckDBStore) -> None:
    port = int(collector.addresses["otlp-grpc"].rsplit(":", 1)[1])
    with pytest.raises(OSError, match="otlp-grpc"):
        Collector(ReceiverConfig(grpc_port=port, http_port=0), store).start()


def test_stop_then_restart(store: DuckDBStore) -> None:
    collector = Collector(ReceiverConfig(grpc_port=0, http_port=0), store)
    first = collector.start()
    export(first["otlp-grpc"], make_request(spans=1).SerializeToString())
    collector.stop(1.0)
    assert collector.addresses == {}
    second = collector.start()
    export(second["otlp-grpc"], make_request(spans=1, first=9).SerializeToString())
    collector.stop(1.0)
    assert store.stats().spans == 2


def test_request_with_only_resources_is_ok(collector: Collector, store: DuckDBStore) -> None:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().resource.attributes.add(key="service.name")
    export(collector.addresses["otlp-grpc"], request.SerializeToString())
    assert store.stats().spans == 0


def test_ipv6_loopback(store: DuckDBStore) -> None:
    # The receivers must serve IPv6: a machine without an IPv6 loopback fails here (with
    # the reason) instead of skipping, since the README promises nothing is skipped.
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError as exc:
        pytest.fail(f"this machine has no IPv6 loopback (::1): {exc}", pytrace=False)
    with running_collector(store, host="::1") as c:
        assert c.addresses["otlp-grpc"].startswith("[::1]:")
        export(c.addresses["otlp-grpc"], make_request(spans=2).SerializeToString())
        status, _, _ = http_call(
            c.addresses["otlp-http"],
            make_request(spans=1, first=30).SerializeToString(),
            {"Content-Type": "application/x-protobuf"},
        )
        assert status == 200
    assert store.stats().spans == 3
