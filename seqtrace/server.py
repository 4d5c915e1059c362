"""`seqtrace serve`, `up` and `ui`: start the pieces, print where they listen, stop cleanly.

One process owns the database: the store's writer thread, the OTLP receivers and the query
API live here. The Streamlit UI runs as a child process that reads through the query API,
so it never touches the database file.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqtrace import __version__
from seqtrace.errors import EXIT_OK, UsageError
from seqtrace.stores import DEFAULT_API, DEFAULT_DB, api_answers

if TYPE_CHECKING:
    from spanstore.base import SpanWriter

MIB = 1024 * 1024
DEFAULT_MAX_QUEUE_MIB = 64
DEFAULT_QUERY_TIMEOUT = 30.0
DEFAULT_MAX_DIAGRAM_TRACES = 1000
#: DuckDB's own memory limit (its buffer pool: cached blocks, query state). The pool keeps
#: what reads touched until it is full, so this bounds the server's memory
#: (docs/config.md, "Memory"): at 384 a server stays near 600 MiB after the widest reads.
DEFAULT_DB_MEMORY_MIB = 384
#: The decoder processes' niceness (``limits.decoder_niceness``): reads first under a flood.
DEFAULT_DECODER_NICENESS = 10
#: How much nicer the threads that take spans in run (``limits.ingest_niceness``): the
#: receivers' request threads and the store's writer.
DEFAULT_INGEST_NICENESS = 10
# What to do when a listener cannot bind: said after the listener and the OS's reason.
_PORT_HINT = (
    "; stop what holds that port, or pick another with --grpc-port/--http-port/--api-port "
    "(0 picks a free one) or another --bind"
)
#: Seconds `serve` waits for in-flight requests on SIGTERM before it commits and exits.
DRAIN_GRACE = 10.0


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _say(line: str) -> None:
    print(f"seqtrace: {line}", flush=True)


def sample_traces_dir() -> Path | None:
    """The repository's sample_traces/ (next to the packages in a source checkout)."""
    here = Path(__file__).resolve().parent.parent / "sample_traces"
    for candidate in (here, Path.cwd() / "sample_traces"):
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    return None


@dataclass(frozen=True)
class DemoLoaded:
    spans: int
    first_start_unix_nano: int  # the loaded sample's first span start and last span end
    last_end_unix_nano: int

    def message(self) -> str:
        """What `up` says: the times too, since the sample's newest span (an order's
        carrier webhook) comes two days after its incident, and a view of the last hours
        alone does not show the incident."""

        def utc(ns: int) -> str:
            return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ns / 1e9))

        return (
            f"loaded {self.spans} sample spans from sample_traces/, moved so that the newest "
            f"ends now: {utc(self.first_start_unix_nano)} to {utc(self.last_end_unix_nano)} "
            "(--no-demo to skip)"
        )


def _load_demo(store: SpanWriter) -> DemoLoaded | None:
    """Load sample_traces/ (spans and log records), moved in time so that the sample's
    newest span ends now: a user who then points an exporter at `up` sees the sample and
    their own traffic in the same window. Ids, and every time relative to another, stay as
    in the files (`replay --keep-ids`'s shift)."""
    from collector.files import read_log_file, read_trace_file
    from seqtrace.replay_rewrite import (
        IdMap,
        first_span_start,
        last_span_end,
        rewrite_logs,
        rewrite_spans,
    )

    folder = sample_traces_dir()
    if folder is None:
        _say("no sample_traces/ folder found; starting with an empty database")
        return None
    requests = [
        request for path in sorted(folder.glob("*.json")) for request in read_trace_file(str(path))
    ]
    oldest, newest = first_span_start(requests), last_span_end(requests)
    shift = time.time_ns() - newest if newest else 0
    same_ids = IdMap(keep=True)
    total = 0
    for request in requests:
        rewrite_spans(request, same_ids, shift)
        total += store.write(request).accepted
    from spanstore.logs import LogWriter

    if isinstance(store, LogWriter):  # the sample services' log records (#18)
        for path in sorted((folder / "logs").glob("*.json")):
            for log_request in read_log_file(str(path)):
                rewrite_logs(log_request, same_ids, shift)
                store.write_logs(log_request)
    if not total or oldest is None or newest is None:
        return None
    return DemoLoaded(total, oldest + shift, newest + shift)


def _ssl_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if not cert and not key:
        return None
    if not (cert and key):
        raise UsageError("--tls-cert and --tls-key go together")
    for path in (cert, key):
        if not os.path.isfile(path):
            raise UsageError(f"TLS file not found: {path}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise UsageError(f"cannot use {cert} / {key} for TLS: {exc}") from None
    return context


def _wait_for_signal() -> None:
    # The handler runs in the main thread between two bytecodes, possibly while that
    # thread holds a lock: Event.set() there deadlocked with the Event.wait() it
    # interrupted (a server that never stopped on SIGTERM). A plain flag takes no lock.
    received: list[int] = []

    def handler(signum: int, frame: object) -> None:
        received.append(signum)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not received:
        time.sleep(0.2)


def _client_tls(cert: str) -> ssl.SSLContext:
    """Trust exactly our own certificate (for the server's health checks of its UI)."""
    context = ssl.create_default_context(cafile=cert)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.check_hostname = False
    return context


def _start_ui(
    host: str,
    port: int,
    env_extra: dict[str, str],
    tls: tuple[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    if port == 0:
        port = _free_port(host)
    else:  # Streamlit's own failure is a log line; say which port and what to do
        try:
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"cannot listen: ui: cannot listen on {host}:{port}: "
                f"{exc.strerror or exc}; stop what holds that port, or pick another with "
                "--ui-port (0 picks a free one)"
            ) from None
    app = resources.files("ui") / "app.py"
    env = {**os.environ, **env_extra}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
    ]
    context = None
    if tls is not None:
        command += ["--server.sslCertFile", tls[0], "--server.sslKeyFile", tls[1]]
        context = _client_tls(tls[0])
    # Streamlit's own log goes to a file: a pipe nobody reads would fill up and stall it.
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the UI
        prefix="seqtrace-ui-", suffix=".log", delete=False
    )
    process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    scheme = "https" if tls is not None else "http"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = Path(log_file.name).read_text(encoding="utf-8", errors="replace").strip()
            last = err.splitlines()[-1] if err else "no output"
            raise UsageError(f"the UI failed to start on {address}: {last} (log: {log_file.name})")
        try:
            health = f"{scheme}://{address}/_stcore/health"
            with urllib.request.urlopen(health, timeout=1, context=context) as r:
                if r.status == 200:
                    return process, address
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    process.terminate()
    raise UsageError(f"the UI did not answer on {address} within 60 s")


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything `serve`/`up` run with: flags over env over the config file over defaults."""

    db: str
    bind: str
    grpc_port: int
    http_port: int
    api_port: int
    ui_port: int
    ingest_token: str | None
    read_token: str | None
    tls_cert: str | None
    tls_key: str | None
    cors_origins: tuple[str, ...]
    entity_keys: tuple[str, ...]
    max_queue_mib: int
    max_http_body_mib: int | None
    max_grpc_message_mib: int | None
    write_timeout: float | None
    query_timeout: float
    max_diagram_traces: int
    config: Any  # seqtrace.config.FileConfig
    #: A store URL (``--store``, env SEQTRACE_STORE): used instead of ``db`` when set.
    store: str | None = None


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def resolve_settings(args: argparse.Namespace) -> ServerSettings:
    """Combine flags, environment, the configuration file and defaults; validate."""
    from seqtrace.config import FileConfig, config_path, load_config
    from seqtrace.stores import chosen_store

    path = config_path(getattr(args, "config", None))
    file = load_config(path) if path else FileConfig()
    env = os.environ.get
    choice = chosen_store(args)
    settings = ServerSettings(
        db=choice.target if choice and not choice.is_url else file.db or DEFAULT_DB,
        store=choice.target if choice and choice.is_url else None,
        bind=_first(args.bind, file.bind, "127.0.0.1"),
        grpc_port=_first(args.grpc_port, file.grpc_port, 4317),
        http_port=_first(args.http_port, file.http_port, 4318),
        api_port=_first(args.api_port, file.api_port, 4319),
        ui_port=_first(getattr(args, "ui_port", None), file.ui_port, 8501),
        ingest_token=args.ingest_token or env("SEQTRACE_INGEST_TOKEN") or file.ingest_token,
        read_token=args.read_token or env("SEQTRACE_READ_TOKEN") or file.read_token,
        tls_cert=args.tls_cert or file.tls_cert,
        tls_key=args.tls_key or file.tls_key,
        cors_origins=tuple(args.cors_origin or ()) or file.cors_origins,
        entity_keys=(*file.entity_keys, *args.entity_key),
        max_queue_mib=_first(args.max_queue_mib, file.max_queue_mib, DEFAULT_MAX_QUEUE_MIB),
        max_http_body_mib=file.max_http_body_mib,
        max_grpc_message_mib=file.max_grpc_message_mib,
        write_timeout=file.write_timeout_seconds,
        query_timeout=_first(file.query_timeout_seconds, DEFAULT_QUERY_TIMEOUT),
        max_diagram_traces=_first(file.max_diagram_traces, DEFAULT_MAX_DIAGRAM_TRACES),
        config=file,
    )
    for flag in ("grpc_port", "http_port", "api_port", "ui_port"):
        value = getattr(settings, flag)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
            raise UsageError(f"--{flag.replace('_', '-')} must be 0-65535, got {value}")
    if settings.max_queue_mib < 1:
        raise UsageError(f"--max-queue-mib must be at least 1, got {settings.max_queue_mib}")
    if settings.ingest_token is not None and settings.ingest_token == settings.read_token:
        # The same secret for both would let every exporter read the data back.
        raise UsageError("the ingest token and the read token must differ")
    if settings.read_token is not None and (
        any(c.isspace() for c in settings.read_token) or not settings.read_token
    ):
        raise UsageError("the read token must be a non-empty string without spaces")
    return settings


def _setup_logging() -> None:
    """Warnings and errors (a store that failed, retention) to stderr, one line each.
    Nothing here logs a token: receivers and the API never put one in a message."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("seqtrace: %(levelname)s: %(name)s: %(message)s"))
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler)
        root.setLevel(logging.WARNING)


def run_server(args: argparse.Namespace, with_ui: bool) -> int:
    from spanstore.malloc import release_memory_promptly
    from spanstore.nopandas import keep_pandas_out

    keep_pandas_out()  # before pyarrow converts anything: see spanstore/nopandas.py
    release_memory_promptly()  # before the big buffers of ingest: see spanstore/malloc.py
    from analyzer.source import LocalSource
    from collector import Collector, ReceiverConfig
    from collector.grpc_receiver import format_address
    from seqtrace.api import ApiServer
    from seqtrace.stores import parsed_url
    from spanstore.base import StoreError
    from spanstore.budget import MemoryBudget
    from spanstore.config import CHECKPOINT_THRESHOLD, DuckDBConfig, IngestConfig, StoreConfig
    from spanstore.duckdb_store import DuckDBStore
    from spanstore.urls import SpanStore, open_store_url

    settings = resolve_settings(args)
    _setup_logging()
    db = settings.db
    tls = _ssl_context(settings.tls_cert, settings.tls_key)
    budget_bytes = settings.max_queue_mib * MIB
    ingest_niceness = (
        DEFAULT_INGEST_NICENESS
        if settings.config.ingest_niceness is None
        else settings.config.ingest_niceness
    )
    receiver_settings: dict[str, Any] = {}
    if settings.max_http_body_mib is not None:
        receiver_settings["max_http_body_bytes"] = settings.max_http_body_mib * MIB
    if settings.max_grpc_message_mib is not None:
        receiver_settings["max_grpc_message_bytes"] = settings.max_grpc_message_mib * MIB
    if settings.write_timeout is not None:
        receiver_settings["write_timeout"] = settings.write_timeout
    try:
        config = ReceiverConfig(
            host=settings.bind,
            grpc_port=settings.grpc_port,
            http_port=settings.http_port,
            ingest_token=settings.ingest_token,
            tls_cert=settings.tls_cert,
            tls_key=settings.tls_key,
            cors_origins=settings.cors_origins,
            max_inflight_bytes=budget_bytes,
            thread_niceness=ingest_niceness,
            **receiver_settings,
        ).validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        policy = settings.config.policy().validate()
    except ValueError as exc:
        raise UsageError(f"config: {exc}") from None
    try:
        store_config = StoreConfig(
            ingest=IngestConfig(
                entity_keys=tuple(settings.entity_keys),
                decoder_processes=min(4, os.cpu_count() or 1),
                decoder_niceness=(
                    DEFAULT_DECODER_NICENESS
                    if settings.config.decoder_niceness is None
                    else settings.config.decoder_niceness
                ),
                writer_niceness=ingest_niceness,
                policy=policy,
                retention=settings.config.retention,
            ),
            duckdb=DuckDBConfig(
                max_queue_bytes=budget_bytes,
                memory_limit=f"{settings.config.db_memory_mib or DEFAULT_DB_MEMORY_MIB}MB",
                checkpoint_threshold=(
                    f"{settings.config.db_checkpoint_mib}MB"
                    if settings.config.db_checkpoint_mib
                    else CHECKPOINT_THRESHOLD
                ),
                keep_trace_shapes=settings.config.keep_trace_shapes is not False,
            ),
        ).validate()
    except ValueError as exc:
        raise UsageError(f"config: {exc}") from None
    try:
        store: SpanStore
        if settings.store is None:
            store = DuckDBStore(db, **store_config.options("duckdb"))
        else:
            store = open_store_url(parsed_url(settings.store), config=store_config)
    except StoreError as exc:
        if settings.store is not None:  # name the flag: the message may only name the host
            raise UsageError(f"--store: {exc}") from None
        raise UsageError(str(exc)) from None
    where = f"database {db}" if settings.store is None else f"store {_redacted(settings.store)}"
    writes = store.accepts_writes
    if not writes:
        _say(
            f"{where} is the OpenTelemetry Collector's traces table: serving reads only, "
            "OTLP exports to this server are refused"
        )

    writer: SpanWriter = store if writes else _RefusingWriter(where)
    collector = Collector(config, writer, MemoryBudget(budget_bytes))

    def ingest_stats() -> dict[str, Any]:
        counters = collector.counters()
        budget = collector.ingest.budget.snapshot()
        return {
            "receivers": {
                "requests": counters.requests,
                "spans_accepted": counters.spans_accepted,
                "spans_rejected": counters.spans_rejected,
                "failed_requests": counters.failed_requests,
                "refused_requests": counters.refused_requests,
                "logs_accepted": counters.logs_accepted,
                "logs_rejected": counters.logs_rejected,
                "metric_points_refused": counters.metric_points_refused,
                "inflight_bytes": budget.used_bytes,
                "max_inflight_bytes": budget.limit_bytes,
                "peak_inflight_bytes": budget.peak_bytes,
            },
            **store.ingest_stats(),
        }

    api: ApiServer | None = None
    ui_process: subprocess.Popen[bytes] | None = None
    try:
        if with_ui and writes and not args.no_demo and store.stats().spans == 0:
            loaded = _load_demo(store)
            if loaded is not None:
                _say(loaded.message())
        try:
            addresses = collector.start()
        except OSError as exc:
            raise UsageError(f"cannot listen: {exc.strerror or exc}{_PORT_HINT}") from None
        try:
            api = ApiServer(
                LocalSource(
                    store,
                    max_diagram_traces=settings.max_diagram_traces,
                    keep_slo_events=True,
                    keep_failure_counts=True,
                    background_niceness=ingest_niceness,
                ),
                host=settings.bind,
                port=settings.api_port,
                read_token=settings.read_token,
                otlp=collector.http_handler(),
                ssl_context=tls,
                query_timeout=settings.query_timeout,
                ingest_stats=ingest_stats,
            )
        except OSError as exc:
            target = format_address(settings.bind, settings.api_port)
            raise UsageError(
                f"cannot listen: api: cannot listen on {target}: {exc.strerror or exc}{_PORT_HINT}"
            ) from None
        api_address = api.start()
        api.info.update({"version": __version__, "listeners": {**addresses, "api": api_address}})
        for name in ("otlp-grpc", "otlp-http"):
            if name in addresses:
                _say(f"listening {name}={addresses[name]}")
        _say(f"listening api={api_address}")
        scheme = "https" if tls else "http"
        if with_ui:
            env = {"SEQTRACE_API": f"{scheme}://{api_address}"}
            if settings.read_token:
                env["SEQTRACE_READ_TOKEN"] = settings.read_token
            ui_tls = None
            if settings.tls_cert and settings.tls_key:
                # The UI serves HTTPS with the same certificate and trusts it for the API.
                env["SEQTRACE_API_CA"] = os.path.abspath(settings.tls_cert)
                ui_tls = (settings.tls_cert, settings.tls_key)
            ui_process, ui_address = _start_ui(settings.bind, settings.ui_port, env, ui_tls)
            _say(f"listening ui={ui_address}")
            _say(f"open {scheme}://{ui_address}/ in a browser")
        http_port = addresses.get("otlp-http", "").rpartition(":")[2]
        _say(
            f"point an exporter at it: OTEL_EXPORTER_OTLP_ENDPOINT={scheme}://localhost:{http_port}"
        )
        _say(f"{where}; Ctrl-C stops")
        # Long-lived objects (modules, the store) need no scanning: freezing them and
        # collecting less often keeps the ingest path's allocations cheap
        # (docs/performance-history.md).
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        _wait_for_signal()
        _say("stopping: draining in-flight requests")
    finally:
        if ui_process is not None:
            _stop_process(ui_process)
        # Every listener stops accepting at once; requests in progress (on the OTLP
        # receivers and on the API's /v1/traces) finish, then the store commits and closes.
        if api is not None:
            api.stop_accepting()
        collector.stop(grace=DRAIN_GRACE)
        if api is not None:
            api.drain(DRAIN_GRACE)
        store.close()
    _say("stopped; every acknowledged span is committed")
    return EXIT_OK


class _RefusingWriter:
    """The collector's writer when the store is read-only to seqtrace (an OpenTelemetry
    Collector's ``otel_traces``): every export is refused with a non-retryable error (HTTP
    500 / gRPC INTERNAL), so exporters drop the batch instead of retrying it forever."""

    def __init__(self, where: str) -> None:
        self.message = (
            f"{where} is the OpenTelemetry Collector's traces table, which seqtrace only "
            "reads; send spans to that pipeline, or give `seqtrace serve --store` a "
            "database of its own"
        )

    def write(self, request: object, timeout: float | None = None) -> Any:
        from spanstore.base import StoreError

        class NotWritable(StoreError):
            retryable = False

        raise NotWritable(self.message)

    def close(self) -> None:
        return None


def _redacted(url: str) -> str:
    from seqtrace.stores import parsed_url

    text: str = parsed_url(url).redacted()
    return text


def _check_readable(db: str) -> None:
    """Fail now, in one line, when the UI could not open the file (a server holds it),
    rather than start a UI whose every page shows the error."""
    from analyzer.source import SourceError, open_database

    try:
        source = open_database(db)
    except SourceError as exc:
        raise UsageError(str(exc)) from None
    close = getattr(getattr(source, "reader", None), "close", None)
    if close is not None:
        close()


def run_ui_only(args: argparse.Namespace) -> int:
    from seqtrace.stores import chosen_store, parsed_url

    choice = chosen_store(args)  # first: --store with --db is an error whatever else is set
    api = args.api or os.environ.get("SEQTRACE_API")
    # The UI process inherits this environment: the variables not chosen are blanked so
    # that it reads from exactly the source chosen here (ui/data.py: API, store, file).
    env: dict[str, str] = {"SEQTRACE_STORE": "", "SEQTRACE_DB": ""}
    token = args.read_token or os.environ.get("SEQTRACE_READ_TOKEN")
    if not api and choice is None and api_answers(DEFAULT_API, token):
        api = DEFAULT_API  # docs/cli.md "Where the data comes from": step 4, as the CLI does
    if api:
        env["SEQTRACE_API"] = api
    elif choice is not None and choice.is_url:
        parsed = parsed_url(choice.target)
        if parsed.backend != "clickhouse" and not os.path.exists(parsed.path):
            what = "database file" if parsed.backend == "duckdb" else "chdb directory"
            raise UsageError(
                f"no {what} at {parsed.path}; check --store, or use --api URL for a running server"
            )
        env["SEQTRACE_STORE"] = choice.target
    else:
        db = choice.target if choice is not None else DEFAULT_DB
        if not os.path.exists(db):
            tried = "no server given" if choice is not None else f"no query API at {DEFAULT_API}"
            raise UsageError(
                f"{tried} and no database file at {db}; use --api URL, --store URL or --db PATH"
            )
        _check_readable(db)
        env["SEQTRACE_DB"] = os.path.abspath(db)
    if token:
        env["SEQTRACE_READ_TOKEN"] = token
    tls = None
    if getattr(args, "tls_cert", None) and getattr(args, "tls_key", None):
        tls = (args.tls_cert, args.tls_key)
    process, address = _start_ui(args.bind, args.ui_port, env, tls)
    _say(f"listening ui={address}")
    _say(f"open {'https' if tls else 'http'}://{address}/ in a browser; Ctrl-C stops")
    try:
        _wait_for_signal()
    finally:
        _stop_process(process)
    return EXIT_OK
