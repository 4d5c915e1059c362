"""The query API (read side, HTTP+JSON, SPEC "Query API"), served by `seqtrace serve`.

Other processes (the UI, the CLI) read the database through this server because DuckDB
lets only the owning process open the file. Every route takes parameters only (never SQL),
answers JSON in the shapes of the public contract (SPEC), and errors as ``{"error": str}``
(httpbase's one renderer). ``POST /v1/traces`` is also accepted here (OTLP/HTTP, ingest
token) so that `seqtrace load` can send files to a running server through the one address
it knows. A route is a method of :class:`ApiServer` returned by :meth:`ApiServer.route`.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from typing import Any, Final

from analyzer.source import LocalSource, SourceError
from analyzer.timeparse import parse_time
from collector import OtlpHttpHandler
from httpbase import JSON_CONTENT_TYPE, AnswerHandler, BearerToken, error_body, internal_error
from spanstore.base import QueryTimeout, StoreError
from spanstore.deadline import query_deadline

__all__ = ["ApiServer"]

log = logging.getLogger(__name__)

MAX_SPEC_BYTES: Final = 1 << 20
#: Larger answers are refused (413) instead of sent: narrow the time range.
MAX_RESPONSE_BYTES: Final = 64 << 20
_GZIP_MIN: Final = 4096
#: Told to clients when the store is unavailable (503).
_RETRY_AFTER: Final = "2"
#: Threads that run the store's reads (see ``ApiServer.read``).
READ_WORKERS: Final = 4


def _now_ns() -> int:
    return time.time_ns()


class _Request:
    def __init__(self, query: dict[str, list[str]]) -> None:
        self.query = query

    def text(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def integer(self, name: str, default: int, lo: int = 1, hi: int = 100_000) -> int:
        text = self.text(name)
        if text is None or text == "":
            return default
        try:
            return max(lo, min(hi, int(text)))
        except ValueError:
            raise SourceError(f"{name} must be an integer, got {text!r}") from None

    def time(self, name: str) -> int | None:
        text = self.text(name)
        if text is None or text == "":
            return None
        if text.lstrip("-").isdigit() and len(text.lstrip("-")) > 12:
            return int(text)  # already Unix nanoseconds
        try:
            return parse_time(text, _now_ns())
        except ValueError as exc:
            raise SourceError(f"{name}: {exc}") from None

    def flag(self, name: str) -> bool:
        return (self.text(name) or "").lower() in ("1", "true", "yes")


Route = Callable[[_Request, bytes], tuple[int, Any]]


class ApiServer:
    """A threaded HTTP server answering the query API from a :class:`LocalSource`."""

    def __init__(
        self,
        source: LocalSource,
        host: str = "127.0.0.1",
        port: int = 4319,
        read_token: str | None = None,
        otlp: OtlpHttpHandler | None = None,
        info: dict[str, Any] | None = None,
        ssl_context: Any = None,
        query_timeout: float | None = None,
        ingest_stats: Callable[[], dict[str, Any]] | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        read_workers: int = READ_WORKERS,
    ) -> None:
        """``query_timeout`` bounds the database time of one request (the store interrupts
        its query; the client gets 504); ``ingest_stats`` feeds /api/v1/ingest-stats."""
        self.source = source
        self.read_token = read_token
        self._token = BearerToken(read_token) if read_token else None
        self.otlp = otlp
        self.info = info if info is not None else {}
        self.query_timeout = query_timeout
        self.ingest_stats = ingest_stats
        self.max_response_bytes = max_response_bytes
        self._server = _Server((host, port), _Handler)
        self._server.api = self
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True)
        self._thread: threading.Thread | None = None
        self._active = 0
        self._idle = threading.Condition()
        #: Reads run here, not in the connection's thread: OTLP exports on this port
        #: (`seqtrace load`) never hold one of them, and at most ``read_workers`` reads
        #: query the store at once, so a crowd of slow pages cannot use up the cores the
        #: writer needs. /healthz answers in the connection's thread without the store.
        self._reads = ThreadPoolExecutor(read_workers, thread_name_prefix="seqtrace-read")

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def start(self) -> str:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="seqtrace-api", daemon=True
        )
        self._thread.start()
        return self.address

    def stop_accepting(self) -> None:
        """Close the listening socket; requests in progress go on (see :meth:`drain`)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    def drain(self, grace: float) -> bool:
        """Wait up to ``grace`` seconds for requests in progress; True when none is left."""
        deadline = time.monotonic() + grace
        with self._idle:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    def stop(self, grace: float = 5.0) -> None:
        self.stop_accepting()
        self.drain(grace)
        self._reads.shutdown(wait=False)

    def read(self, route: Route, request: _Request, body: bytes) -> tuple[int, Any]:
        """Run one route in the read pool, under the request's query deadline."""

        def run() -> tuple[int, Any]:
            with query_deadline(self.query_timeout):
                return route(request, body)

        return self._reads.submit(run).result()

    def request_started(self) -> None:
        with self._idle:
            self._active += 1

    def request_finished(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    # ------------------------------------------------------------------ routing

    def authorized(self, header: str | None) -> bool:
        """Constant time, and the token's length does not leak either (httpbase)."""
        return self._token is None or self._token.matches(header)

    def route(self, method: str, path: str) -> Route | None:
        if method == "GET":
            if path == "/healthz":
                return self._healthz
            if path == "/api/v1/stats":
                return self._stats
            if path == "/api/v1/entities":
                return self._entities
            if path == "/api/v1/diagram":
                return self._diagram
            if path == "/api/v1/traces":
                return lambda q, b: (200, self.source.recent_traces(q.integer("limit", 50)))
            if path.startswith("/api/v1/traces/"):
                trace_id = urllib.parse.unquote(path.removeprefix("/api/v1/traces/"))
                return lambda q, b: self._trace(trace_id, q)
            if path == "/api/v1/failures":
                return lambda q, b: (
                    200,
                    self.source.failures(
                        q.time("from"),
                        q.time("to"),
                        q.text("service"),
                        None if q.text("limit") is None else q.integer("limit", 0, lo=0),
                    ),
                )
            if path == "/api/v1/find":
                return self._find
            if path == "/api/v1/compare":
                return lambda q, b: (
                    200,
                    self.source.compare(
                        q.text("q") or "", q.text("baseline") or None, q.time("from"), q.time("to")
                    ),
                )
            if path == "/api/v1/throughput":
                return lambda q, b: (
                    200,
                    self.source.throughput(q.time("from"), q.time("to"), q.integer("buckets", 60)),
                )
            if path == "/api/v1/logs":
                return self._logs
            if path == "/api/v1/ingest-stats":
                return self._ingest_stats
            if path == "/api/v1/service-map":
                return lambda q, b: (200, self.source.service_map(q.time("from"), q.time("to")))
            if path == "/api/v1/replay/traces":  # `seqtrace replay --api`: what to re-send
                return lambda q, b: (
                    200,
                    self.source.replay_traces(
                        q.text("entity"), q.text("trace"), q.time("from"), q.time("to")
                    ),
                )
            if path == "/api/v1/replay/logs":  # `seqtrace replay --api`: their log records
                return lambda q, b: (200, self.source.replay_logs(q.query.get("trace", [])))
            if path == "/api/v1/flow":
                return self._flow
            if path == "/api/v1/flow/roots":
                return lambda q, b: (
                    200,
                    self.source.flow_roots(q.time("from"), q.time("to"), q.integer("limit", 200)),
                )
        if method == "POST" and path == "/api/v1/slo":
            return self._slo
        if method == "POST" and path == "/api/v1/contracts/check":
            return self._contracts_check
        return None

    def _stats(self, query: _Request, body: bytes) -> tuple[int, Any]:
        stats = self.source.stats()
        if self.ingest_stats is not None:  # a serving process also counts what it refused
            receivers = self.ingest_stats().get("receivers", {})
            stats["metric_points_refused"] = receivers.get("metric_points_refused", 0)
        return 200, stats

    def _healthz(self, query: _Request, body: bytes) -> tuple[int, Any]:
        return 200, {"status": "ok", **self.info}

    def _ingest_stats(self, query: _Request, body: bytes) -> tuple[int, Any]:
        if self.ingest_stats is None:
            raise SourceError("this server does not ingest", status=404)
        return 200, self.ingest_stats()

    def _entities(self, q: _Request, body: bytes) -> tuple[int, Any]:
        return 200, self.source.entities(
            q.text("key") or None,
            q.integer("limit", 100, hi=10_000),
            q.text("prefix"),
            q.time("from"),
            q.time("to"),
        )

    def _diagram(self, q: _Request, body: bytes) -> tuple[int, Any]:
        fmt = q.text("format") or "json"
        result = self.source.diagram(
            q.text("entity"), q.text("trace"), q.time("from"), q.time("to"), q.flag("internal"), fmt
        )
        return 200, result

    def _find(self, q: _Request, body: bytes) -> tuple[int, Any]:
        text = q.text("q") or ""
        if q.flag("ids"):  # the trace ids alone (HttpSource.query_trace_ids, flows)
            ids = self.source.query_trace_ids(text, q.time("from"), q.time("to"))
            return 200, {"query": text, "trace_ids": ids}
        limit = q.integer("limit", 100, hi=10_000)
        return 200, self.source.find(text, q.time("from"), q.time("to"), limit)

    def _logs(self, q: _Request, body: bytes) -> tuple[int, Any]:
        return 200, self.source.logs(
            q.text("entity"),
            q.text("trace"),
            q.time("from"),
            q.time("to"),
            q.text("service"),
            q.integer("severity", 0, lo=0, hi=24),
            q.flag("untraced"),
            q.integer("limit", 1000, hi=10_000),
        )

    def _flow(self, q: _Request, body: bytes) -> tuple[int, Any]:
        result = self.source.flow(
            root=q.text("root"),
            entity=q.text("entity"),
            key=q.text("key"),
            query=q.text("q"),
            start=q.time("from"),
            end=q.time("to"),
            fmt=q.text("format") or "json",
            trace_id=q.text("trace"),
        )
        return 200, result

    def _trace(self, trace_id: str, q: _Request) -> tuple[int, Any]:
        if q.text("view") == "spans":
            return 200, self.source.trace(trace_id)
        return 200, self.source.trace_otlp(trace_id)

    def _slo(self, q: _Request, body: bytes) -> tuple[int, Any]:
        if not body:
            raise SourceError("POST the SLO spec (YAML or JSON) as the request body")
        text = body.decode("utf-8", errors="replace")
        return 200, self.source.slo(text, q.time("at"), q.text("name") or "request body")

    def _contracts_check(self, q: _Request, body: bytes) -> tuple[int, Any]:
        from analyzer.contracts import check_request

        return 200, check_request(
            self.source,
            body,
            entity=q.text("entity"),
            key=q.text("key"),
            start=q.time("from"),
            end=q.time("to"),
            file=q.text("file"),
            steps=True if q.flag("steps") else None,
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    api: ApiServer


_CONTENT_TYPES: Final = {
    "svg": "image/svg+xml; charset=utf-8",
    "mermaid": "text/plain; charset=utf-8",
    "plantuml": "text/plain; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
}


class _Handler(AnswerHandler):
    server: _Server

    def _send(
        self, status: int, body: bytes, content_type: str, retry_after: str | None = None
    ) -> None:
        accepts_gzip = "gzip" in (self.headers.get("Accept-Encoding") or "")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        if accepts_gzip and len(body) >= _GZIP_MIN:
            body = gzip.compress(body, compresslevel=5)
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_error(self, status: int, message: str, retry_after: str | None = None) -> None:
        self._send(status, error_body(message), JSON_CONTENT_TYPE, retry_after)

    def _dispatch(self) -> None:
        api = self.server.api
        api.request_started()
        try:
            self._dispatch_request(api)
        finally:
            api.request_finished()

    def _dispatch_request(self, api: ApiServer) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        if parsed.path in ("/v1/traces", "/v1/logs", "/v1/metrics") and api.otlp is not None:
            answer = api.otlp.handle(self.command, parsed.path, self.headers.items(), self.rfile)
            self.send_answer(answer)
            return
        body = b""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send_error(400, "bad Content-Length")
            return
        if length > MAX_SPEC_BYTES:
            self.close_connection = True
            self._send_error(413, f"body over {MAX_SPEC_BYTES} bytes")
            return
        if length:
            body = self.rfile.read(length)
        route = api.route(self.command, parsed.path)
        if route is None:
            known = api.route("GET", parsed.path) or api.route("POST", parsed.path)
            if known is not None:
                self._send_error(405, f"{self.command} not allowed on {parsed.path}")
            else:
                self._send_error(404, f"no such endpoint: {parsed.path}")
            return
        if parsed.path != "/healthz" and not api.authorized(self.headers.get("Authorization")):
            self._send_error(401, "missing or wrong read token (Authorization: Bearer ...)")
            return
        try:
            # Parameters only, never SQL: every value reaches the store as a bound
            # parameter of a fixed query (spanstore/sql/*.sql).
            request = _Request(urllib.parse.parse_qs(parsed.query))
            if parsed.path == "/healthz":  # no store: answers while the store is busy
                status, result = route(request, body)
            else:
                status, result = api.read(route, request, body)
        except SourceError as exc:
            self._send_error(exc.status, str(exc))
            return
        except QueryTimeout as exc:
            self._send_error(504, str(exc))
            return
        except StoreError as exc:
            if exc.retryable:
                self._send_error(503, f"the store is unavailable: {exc}", _RETRY_AFTER)
            else:
                self._send_error(500, f"store error: {exc}")
            return
        except ValueError as exc:  # spec and input validation errors from the analyzer
            self._send_error(400, str(exc))
            return
        except Exception as exc:
            log.exception("query API %s failed", parsed.path)
            self._send_error(500, internal_error(exc))  # the text goes to the log only
            return
        if isinstance(result, str):
            fmt = _Request(urllib.parse.parse_qs(parsed.query)).text("format") or ""
            data = result.encode()
            content_type = _CONTENT_TYPES.get(fmt, "text/plain; charset=utf-8")
        else:
            data = json.dumps(result).encode()
            content_type = "application/json"
        if len(data) > api.max_response_bytes:
            self._send_error(
                413,
                f"the answer is larger than {api.max_response_bytes >> 20} MiB; "
                "narrow the time range or the entity",
            )
            return
        self._send(status, data, content_type)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()
