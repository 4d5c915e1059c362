"""`seqtrace serve`, `up` and `ui`: start the pieces, print where they listen, stop cleanly.

One process owns the database: the store's writer thread, the OTLP receivers and the query
API live here. The Streamlit UI runs as a child process that reads through the query API,
so it never touches the database file.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path
from typing import Any

from seqtrace import __version__
from seqtrace.errors import EXIT_OK, UsageError

DEFAULT_DB = "seqtrace.duckdb"


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


def _load_demo(store: Any) -> int:
    from collector.files import read_trace_file

    folder = sample_traces_dir()
    if folder is None:
        _say("no sample_traces/ folder found; starting with an empty database")
        return 0
    total = 0
    for path in sorted(folder.glob("*.json")):
        for request in read_trace_file(str(path)):
            total += store.write(request).accepted
    return total


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
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    while not stop.is_set():
        stop.wait(0.5)


def _start_ui(
    host: str, port: int, env_extra: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str]:
    if port == 0:
        port = _free_port(host)
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
    # Streamlit's own log goes to a file: a pipe nobody reads would fill up and stall it.
    log_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the UI
        prefix="seqtrace-ui-", suffix=".log", delete=False
    )
    process = subprocess.Popen(command, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    address = f"{host}:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = Path(log_file.name).read_text(encoding="utf-8", errors="replace").strip()
            last = err.splitlines()[-1] if err else "no output"
            raise UsageError(f"the UI failed to start on {address}: {last} (log: {log_file.name})")
        try:
            with urllib.request.urlopen(f"http://{address}/_stcore/health", timeout=1) as r:
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


def run_server(args: argparse.Namespace, with_ui: bool) -> int:
    from spanstore.nopandas import keep_pandas_out

    keep_pandas_out()  # before pyarrow converts anything: see spanstore/nopandas.py
    from analyzer.source import LocalSource
    from collector import Collector, ReceiverConfig
    from seqtrace.api import ApiServer
    from spanstore.base import StoreError
    from spanstore.duckdb_store import DuckDBStore

    db = args.db or os.environ.get("SEQTRACE_DB") or DEFAULT_DB
    ingest_token = args.ingest_token or os.environ.get("SEQTRACE_INGEST_TOKEN") or None
    read_token = args.read_token or os.environ.get("SEQTRACE_READ_TOKEN") or None
    tls = _ssl_context(args.tls_cert, args.tls_key)
    for flag in ("grpc_port", "http_port", "api_port"):
        value = getattr(args, flag)
        if not 0 <= value <= 65535:
            raise UsageError(f"--{flag.replace('_', '-')} must be 0-65535, got {value}")
    try:
        config = ReceiverConfig(
            host=args.bind,
            grpc_port=args.grpc_port,
            http_port=args.http_port,
            ingest_token=ingest_token,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        store = DuckDBStore(
            db, entity_keys=args.entity_key, decoder_processes=min(4, os.cpu_count() or 1)
        )
    except StoreError as exc:
        raise UsageError(str(exc)) from None

    collector = Collector(config, store)
    api: ApiServer | None = None
    ui_process: subprocess.Popen[bytes] | None = None
    try:
        if with_ui and not args.no_demo and store.stats().spans == 0:
            loaded = _load_demo(store)
            if loaded:
                _say(f"loaded {loaded} sample spans from sample_traces/ (--no-demo to skip)")
        try:
            addresses = collector.start()
            api = ApiServer(
                LocalSource(store),
                host=args.bind,
                port=args.api_port,
                read_token=read_token,
                otlp=collector.http_handler(),
                ssl_context=tls,
            )
        except OSError as exc:
            raise UsageError(f"cannot listen: {exc.strerror or exc}") from None
        api_address = api.start()
        api.info.update({"version": __version__, "listeners": {**addresses, "api": api_address}})
        for name in ("otlp-grpc", "otlp-http"):
            if name in addresses:
                _say(f"listening {name}={addresses[name]}")
        _say(f"listening api={api_address}")
        scheme = "https" if tls else "http"
        if with_ui:
            env = {"SEQTRACE_API": f"{scheme}://{api_address}"}
            if read_token:
                env["SEQTRACE_READ_TOKEN"] = read_token
            ui_process, ui_address = _start_ui(args.bind, args.ui_port, env)
            _say(f"listening ui={ui_address}")
            _say(f"open http://{ui_address}/ in a browser")
        http_port = addresses.get("otlp-http", "").rpartition(":")[2]
        _say(
            f"point an exporter at it: OTEL_EXPORTER_OTLP_ENDPOINT={scheme}://localhost:{http_port}"
        )
        _say(f"database {db}; Ctrl-C stops")
        # Long-lived objects (modules, the store) need no scanning: freezing them and
        # collecting less often keeps the ingest path's allocations cheap (NOTES.md).
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        _wait_for_signal()
        _say("stopping: draining in-flight requests")
    finally:
        if ui_process is not None:
            _stop_process(ui_process)
        collector.stop(grace=10.0)
        if api is not None:
            api.stop()
        store.close()
    _say("stopped; every acknowledged span is committed")
    return EXIT_OK


def run_ui_only(args: argparse.Namespace) -> int:
    api = args.api or os.environ.get("SEQTRACE_API")
    db = args.db or os.environ.get("SEQTRACE_DB")
    env: dict[str, str] = {}
    token = args.read_token or os.environ.get("SEQTRACE_READ_TOKEN")
    if api:
        env["SEQTRACE_API"] = api
    else:
        db = db or DEFAULT_DB
        if not os.path.exists(db):
            raise UsageError(
                f"no server given and no database file at {db}; use --api URL or --db PATH"
            )
        env["SEQTRACE_DB"] = os.path.abspath(db)
    if token:
        env["SEQTRACE_READ_TOKEN"] = token
    process, address = _start_ui(args.bind, args.ui_port, env)
    _say(f"listening ui={address}")
    _say(f"open http://{address}/ in a browser; Ctrl-C stops")
    try:
        _wait_for_signal()
    finally:
        _stop_process(process)
    return EXIT_OK
