"""The `seqtrace` command: wires the collector, the store, the query API and the UI.

Each subcommand is a small function over the layers below; every failure goes through
:mod:`seqtrace.errors`, so users see one line and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from seqtrace import __version__
from seqtrace.errors import (
    EXIT_FOUND,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    fail,
    internal_error,
)
from seqtrace.stores import DEFAULT_API, DEFAULT_DB

_STORE_URLS = (
    "a DuckDB path or duckdb://PATH, chdb://DIR?database=NAME, "
    "clickhouse://USER@HOST:8123/DATABASE (password from env SEQTRACE_CLICKHOUSE_PASSWORD); "
    "not with --db"
)


# --------------------------------------------------------------------------- helpers


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def _now_ns() -> int:
    return time.time_ns()


def _parse_time(text: str | None, flag: str) -> int | None:
    from analyzer.timeparse import parse_time

    if text is None:
        return None
    try:
        return parse_time(text, _now_ns())
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _read_text(path: str) -> str:
    """A UTF-8 input file; one that is not text is a usage error naming it."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{path}: not UTF-8 text (byte {exc.start}); give a YAML or Mermaid text file"
        ) from None


def _read_contracts(names: Sequence[str]) -> list[tuple[str, str]]:
    """(file name, text) of each contract file."""
    contracts = []
    for name in names:
        try:
            contracts.append((name, _read_text(name)))
        except OSError as exc:
            raise UsageError(f"cannot read contract {name}: {exc.strerror or exc}") from None
    return contracts


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2, ensure_ascii=False))


def _write_rendering(result: dict[str, Any] | str, fmt: str, out: str | None) -> int:
    """A diagram or flow (JSON for fmt json, else the rendered text), newline-terminated,
    to the file ``out`` (--out) or stdout."""
    text = json.dumps(result, indent=2, ensure_ascii=False) if fmt == "json" else result
    assert isinstance(text, str)
    if not text.endswith("\n"):
        text += "\n"
    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
        print(f"seqtrace: wrote {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _require_entity_or_trace(args: argparse.Namespace) -> None:
    if not args.entity and not args.trace:
        raise UsageError("give --entity KEY=VALUE or --trace ID")
    if args.entity and args.trace:
        raise UsageError("give --entity KEY=VALUE or --trace ID, not both")


def open_source(args: argparse.Namespace) -> Any:
    """The read side per SPEC "Data location": --api, else --store, else --db, else the
    default API if a server answers there, else ./seqtrace.duckdb read-only."""
    from analyzer.source import HttpSource, SourceError, open_database
    from seqtrace.stores import StoreChoice, api_answers, chosen_store

    token = getattr(args, "read_token", None) or _env("SEQTRACE_READ_TOKEN")
    choice = chosen_store(args)  # first: --store with --db is an error whatever else is set
    api = getattr(args, "api", None) or _env("SEQTRACE_API")
    if api:
        return HttpSource(api, token)
    tried = []
    if choice is None:
        if api_answers(DEFAULT_API, token):
            return HttpSource(DEFAULT_API, token)
        tried.append(f"the query API at {DEFAULT_API} (no answer)")
        choice = StoreChoice(DEFAULT_DB, "--db")
    try:
        return open_database(choice.target)
    except SourceError as exc:
        if exc.status == 400:
            raise UsageError(f"{choice.flag}: {exc}") from None
        if "held by another process" in str(exc):  # a server owns it: its message says what to do
            raise UsageError(str(exc)) from None
        if choice.is_url:
            tried.append(f"the store {choice.describe()} ({exc})")
        else:
            tried.append(f"the database file {choice.target} ({exc})")
        raise UsageError(
            "cannot get at the data: tried " + " and ".join(tried) + "; start `seqtrace serve`"
            " or give --api URL / --store URL / --db PATH"
        ) from None


def _add_source_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api", metavar="URL", help="query API of a running server (env SEQTRACE_API)")
    p.add_argument(
        "--store",
        metavar="URL",
        help="store to open read-only (env SEQTRACE_STORE): " + _STORE_URLS,
    )
    p.add_argument("--db", metavar="PATH", help="database file to open read-only (env SEQTRACE_DB)")
    p.add_argument("--read-token", metavar="TOKEN", help="read token (env SEQTRACE_READ_TOKEN)")


def _add_range_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="start", metavar="T", help="RFC 3339 or relative (-1h)")
    p.add_argument("--to", dest="end", metavar="T", help="RFC 3339 or relative (now)")


def _reading_command(
    commands: Any, name: str, help: str, func: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    """A subcommand that reads the data (``commands`` from ``add_subparsers``): it takes
    the source flags and runs ``func``; its own flags follow."""
    p: argparse.ArgumentParser = commands.add_parser(name, help=help)
    _add_source_flags(p)
    p.set_defaults(func=func)
    return p


def _add_json_flag(p: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup) -> None:
    p.add_argument("--json", action="store_true", help="print SPEC JSON")


def _add_entity_or_trace_flags(p: argparse.ArgumentParser) -> None:
    """What to draw: an entity or a trace (see _require_entity_or_trace), in a range."""
    p.add_argument("--entity", metavar="KEY=VALUE")
    p.add_argument("--trace", metavar="ID")
    _add_range_flags(p)


def _add_out_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")


def _add_repeatable(p: argparse.ArgumentParser, flag: str, metavar: str, help: str) -> None:
    """A flag given any number of times: its values in order ([] when not given)."""
    p.add_argument(flag, action="append", default=[], metavar=metavar, help=help)


def _format_ns_time(ns: int | None) -> str:
    from analyzer.timeparse import format_unix_nano

    return "-" if ns is None else format_unix_nano(ns)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------- commands


def cmd_stats(args: argparse.Namespace) -> int:
    stats = open_source(args).stats()
    if args.json:
        _print_json(stats)
        return EXIT_OK
    print(f"spans     {stats['spans']}")
    print(f"traces    {stats['traces']}")
    print(f"services  {', '.join(stats['services']) or '-'}")
    print(f"first     {_format_ns_time(stats['first_unix_nano'])}")
    print(f"last      {_format_ns_time(stats['last_unix_nano'])}")
    return EXIT_OK


def cmd_entities(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    if args.key is not None and not args.key.strip():
        raise UsageError(
            "--key: give an attribute key such as order.id (`seqtrace entities` lists them)"
        )
    result = open_source(args).entities(args.key, args.limit)
    if args.json:
        _print_json(result)
        return EXIT_OK
    if args.key is None:
        rows: list[tuple[object, ...]] = [
            (k["key"], k["values"], k["spans"], k.get("traces", "")) for k in result["keys"]
        ]
        if not rows:
            print("no entity keys found (spans carry none of order.id, customer.id, *.id, ...)")
            return EXIT_OK
        print(_table(("key", "values", "spans", "traces"), rows))
    else:
        rows = [
            (
                v["value"],
                v["spans"],
                v["traces"],
                _format_ns_time(v["first_unix_nano"]),
                _format_ns_time(v["last_unix_nano"]),
            )
            for v in result["values"]
        ]
        if not rows:
            print(f"no values of {args.key}")
            return EXIT_OK
        print(_table(("value", "spans", "traces", "first", "last"), rows))
    return EXIT_OK


def cmd_diagram(args: argparse.Namespace) -> int:
    _require_entity_or_trace(args)
    source = open_source(args)
    result = source.diagram(
        args.entity,
        args.trace,
        _parse_time(args.start, "--from"),
        _parse_time(args.end, "--to"),
        args.internal,
        args.format,
    )
    return _write_rendering(result, args.format, args.out)


def cmd_failures(args: argparse.Namespace) -> int:
    from analyzer.failures import render_failures_table

    report = open_source(args).failures(
        _parse_time(args.start, "--from"), _parse_time(args.end, "--to"), args.service
    )
    if args.json:
        _print_json(report)
    else:
        print(render_failures_table(report))
    return EXIT_OK


def _ms(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1e6:.1f} ms"


def cmd_find(args: argparse.Namespace) -> int:
    result = open_source(args).find(
        args.query, _parse_time(args.start, "--from"), _parse_time(args.end, "--to"), args.limit
    )
    if args.json:
        _print_json(result)
        return EXIT_OK
    print(f"{result['total']} traces match (newest first, {len(result['traces'])} shown)")
    header = ("START", "TRACE", "OUTCOME", "ROOT", "DURATION", "MATCHED", "ENTITIES")
    rows = [header]
    for t in result["traces"]:
        entities = " ".join(f"{k}={','.join(v)}" for k, v in sorted(t["entities"].items()))
        root = f"{t['root_service']}: {t['root_operation']}"
        rows.append(
            (
                _format_ns_time(t["start_unix_nano"]),
                t["trace_id"],
                t["outcome"],
                root[:60],
                _ms(t["duration_ns"]),
                str(t["matched_spans"]),
                entities[:60],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    result = open_source(args).compare(
        args.query, args.baseline, _parse_time(args.start, "--from"), _parse_time(args.end, "--to")
    )
    if args.json:
        _print_json(result)
        return EXIT_OK
    selection, baseline = result["selection"], result["baseline"]
    print(
        f"selection: {selection['spans']} spans; baseline "
        f"({baseline['query'] or 'every other span'}): {baseline['spans']} spans"
    )
    durations = result["durations"]
    for side in ("selection", "baseline"):
        d = durations[side]
        print(f"  {side:9}  p50 {_ms(d['p50_ns'])}  p90 {_ms(d['p90_ns'])}  p99 {_ms(d['p99_ns'])}")
    print()
    print(f"{'SCORE':>7}  {'SELECTION':>9}  {'BASELINE':>9}  ATTRIBUTE")
    for a in result["attributes"][: args.top]:
        print(
            f"{a['score']:>7.3f}  {a['selection_fraction']:>9.1%}  {a['baseline_fraction']:>9.1%}  "
            f"{a['key']} = {a['value'][:80]}"
        )
    return EXIT_OK


def cmd_logs(args: argparse.Namespace) -> int:
    from analyzer.diagram.text import one_line

    _require_entity_or_trace(args)
    result = open_source(args).logs(
        args.entity, args.trace, _parse_time(args.start, "--from"), _parse_time(args.end, "--to")
    )
    if args.json:
        _print_json(result)
        return EXIT_OK
    records = result["logs"]
    if not records:
        print("no log records")
        return EXIT_OK
    # Every field is the sender's text: one printable line each (no terminal escapes).
    rows = [
        (
            _format_ns_time(r["time_unix_nano"]),
            one_line(r["severity"]),
            one_line(r["service"]),
            r["span_id"] or "-",
            one_line(r["body"]),
        )
        for r in records
    ]
    print(_table(("time", "severity", "service", "span", "body"), rows))
    return EXIT_OK


def cmd_slo(args: argparse.Namespace) -> int:
    from analyzer.slo import render_slo_markdown, render_slo_table

    try:
        spec_text = _read_text(args.spec)
    except OSError as exc:
        raise UsageError(f"cannot read SLO spec {args.spec}: {exc.strerror}") from None
    report = open_source(args).slo(spec_text, _parse_time(args.at, "--at"), args.spec)
    if args.json:
        _print_json(report)
    elif args.markdown:
        print(render_slo_markdown(report))
    else:
        print(render_slo_table(report))
    return EXIT_OK


def cmd_postmortem(args: argparse.Namespace) -> int:
    from analyzer.postmortem import build_postmortem

    spec_text = None
    if args.slo_spec:
        try:
            spec_text = _read_text(args.slo_spec)
        except OSError as exc:
            raise UsageError(f"cannot read SLO spec {args.slo_spec}: {exc.strerror}") from None
    contracts = _read_contracts(args.contract)
    bundle = build_postmortem(
        open_source(args),
        args.entity,
        _parse_time(args.start, "--from"),
        _parse_time(args.end, "--to"),
        spec_text,
        args.slo_spec or "slo spec",
        contracts=contracts,
    )
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in bundle.files.items():
            (out / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write to {out}: {exc.strerror or exc}") from None
    print(f"seqtrace: wrote {out / 'postmortem.md'} and {len(bundle.files) - 1} diagram files")
    return EXIT_OK


def cmd_contract_init(args: argparse.Namespace) -> int:
    from analyzer.contracts import contract_init

    text = contract_init(
        open_source(args),
        args.entity,
        _parse_time(args.start, "--from"),
        _parse_time(args.end, "--to"),
    )
    try:
        Path(args.out).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"seqtrace: wrote {args.out}", file=sys.stderr)
    return EXIT_OK


def cmd_contract_check(args: argparse.Namespace) -> int:
    from analyzer.contracts import contract_check, render_check_text

    if bool(args.entity) == bool(args.key):
        raise UsageError("give exactly one of --entity KEY=VALUE or --key KEY")
    files = _read_contracts(args.files)
    result = contract_check(
        open_source(args),
        files,
        entity=args.entity,
        key=args.key,
        start=_parse_time(args.start, "--from"),
        end=_parse_time(args.end, "--to"),
    )
    if args.json:
        _print_json(result)
    else:
        print(render_check_text(result))
    return EXIT_OK if result["conforming"] else EXIT_FOUND


def cmd_diff(args: argparse.Namespace) -> int:
    from analyzer.contracts import diff

    if len(args.entity) != 2:
        raise UsageError("give --entity twice: the reference first, then the one to compare")
    result = diff(
        open_source(args),
        args.entity[0],
        args.entity[1],
        args.format,
        _parse_time(args.start, "--from"),
        _parse_time(args.end, "--to"),
    )
    if isinstance(result, str):
        sys.stdout.write(result if result.endswith("\n") else result + "\n")
    else:
        _print_json(result)
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    from seqtrace.replay import run_replay

    return run_replay(args, open_source)


def cmd_flow(args: argparse.Namespace) -> int:
    chosen = [f for f in ("root", "entity", "key", "query") if getattr(args, f)]
    if len(chosen) != 1:
        raise UsageError('give one of --root "SERVICE: OPERATION", --entity, --key or --query')
    source = open_source(args)
    result = source.flow(
        root=args.root,
        entity=args.entity,
        key=args.key,
        query=args.query,
        start=_parse_time(args.start, "--from"),
        end=_parse_time(args.end, "--to"),
        fmt=args.format,
    )
    return _write_rendering(result, args.format, args.out)


def cmd_load(args: argparse.Namespace) -> int:
    from seqtrace.loading import load_files

    return load_files(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from seqtrace.server import run_server

    return run_server(args, with_ui=False)


def cmd_up(args: argparse.Namespace) -> int:
    from seqtrace.server import run_server

    return run_server(args, with_ui=True)


def cmd_ui(args: argparse.Namespace) -> int:
    from seqtrace.server import run_ui_only

    return run_ui_only(args)


# --------------------------------------------------------------------------- parser

# A relative time such as -1h, -30m or -1h30m: argparse would take it for an unknown
# option ("--from: expected one argument"), so it is accepted as a value like -5 is.
_RELATIVE_TIME = re.compile(
    r"^-(\d+(\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w)?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w))*$"
)


class _Parser(argparse.ArgumentParser):
    """argparse with SPEC's error shape: one line ``seqtrace: error: ...``, exit 2, and
    relative times (``--from -1h``) read as values."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _RELATIVE_TIME

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("seqtrace").strip()
        where = f"{command}: " if command else ""
        fail(f"{where}{message} (see `{self.prog} --help`)", EXIT_USAGE)


def _add_server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", metavar="PATH", help=f"database file (env SEQTRACE_DB; default ./{DEFAULT_DB})"
    )
    p.add_argument(
        "--store",
        metavar="URL",
        help="store to write to and read from, instead of --db (env SEQTRACE_STORE): "
        + _STORE_URLS,
    )
    # Defaults are None here so a --config file can set them; see seqtrace.server.
    p.add_argument("--bind", metavar="HOST", help="listen address (default 127.0.0.1)")
    p.add_argument(
        "--grpc-port", type=int, metavar="N", help="OTLP/gRPC port (default 4317; 0 picks one)"
    )
    p.add_argument(
        "--http-port", type=int, metavar="N", help="OTLP/HTTP port (default 4318; 0 picks one)"
    )
    p.add_argument(
        "--api-port", type=int, metavar="N", help="query API port (default 4319; 0 picks one)"
    )
    p.add_argument(
        "--ingest-token", metavar="TOKEN", help="bearer token for OTLP (env SEQTRACE_INGEST_TOKEN)"
    )
    p.add_argument(
        "--read-token",
        metavar="TOKEN",
        help="bearer token for the query API (env SEQTRACE_READ_TOKEN)",
    )
    p.add_argument(
        "--tls-cert", metavar="FILE", help="PEM certificate: serve every listener over TLS"
    )
    p.add_argument("--tls-key", metavar="FILE", help="PEM private key for --tls-cert")
    _add_repeatable(
        p,
        "--entity-key",
        "KEY",
        "attribute key that names a business entity (repeatable; *.id keys are found anyway)",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="browser origin allowed to POST /v1/traces, e.g. https://app.example.com "
        "(repeatable; '*' allows any; default: none)",
    )
    p.add_argument(
        "--max-queue-mib",
        type=int,
        metavar="N",
        help="ingest memory budget: at most N MiB of request bodies in flight and N MiB of "
        "decoded spans waiting to be written; past it, clients are told to retry (default 64)",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="YAML configuration file (env SEQTRACE_CONFIG): limits, tokens, CORS, "
        "redaction, retention; see docs/config.md",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="seqtrace",
        description="OpenTelemetry traces in; one sequence diagram per business entity, "
        "partial-failure and SLO reports out.",
    )
    parser.add_argument("--version", action="version", version=f"seqtrace {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p: argparse.ArgumentParser = sub.add_parser(
        "serve", help="run the collector and the query API until SIGINT/SIGTERM"
    )
    _add_server_flags(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("up", help="serve + the UI, with the sample traces in an empty database")
    _add_server_flags(p)
    p.add_argument("--ui-port", type=int, metavar="N", help="UI port (default 8501; 0 picks one)")
    p.add_argument(
        "--no-demo", action="store_true", help="do not load sample_traces/ into an empty database"
    )
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("ui", help="the UI alone, against a running server or a database file")
    _add_source_flags(p)
    p.add_argument("--ui-port", type=int, default=8501, metavar="N", help="UI port (0 picks one)")
    p.add_argument("--bind", metavar="HOST", default="127.0.0.1", help="listen address")
    p.add_argument("--tls-cert", metavar="FILE", help="PEM certificate: serve the UI over HTTPS")
    p.add_argument("--tls-key", metavar="FILE", help="PEM private key for --tls-cert")
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("load", help="import OTLP/JSON, OTLP protobuf and Jaeger JSON files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--api", metavar="URL", help="send through this running server (env SEQTRACE_API)"
    )
    p.add_argument(
        "--store",
        metavar="URL",
        help="write straight into this store (env SEQTRACE_STORE): " + _STORE_URLS,
    )
    p.add_argument(
        "--db", metavar="PATH", help="write straight into this database (env SEQTRACE_DB)"
    )
    p.add_argument(
        "--ingest-token", metavar="TOKEN", help="ingest token (env SEQTRACE_INGEST_TOKEN)"
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="with --store/--db: apply this configuration's entity keys, limits and redaction "
        "(env SEQTRACE_CONFIG)",
    )
    p.set_defaults(func=cmd_load)

    p = _reading_command(sub, "stats", "spans, traces, services, first/last span time", cmd_stats)
    _add_json_flag(p)

    p = _reading_command(
        sub, "entities", "entity keys found, or the values of one key", cmd_entities
    )
    p.add_argument("--key", metavar="KEY", help="list this key's values")
    p.add_argument("--limit", type=int, default=100, metavar="N")
    _add_json_flag(p)

    p = _reading_command(sub, "diagram", "an entity's (or a trace's) sequence diagram", cmd_diagram)
    _add_entity_or_trace_flags(p)
    p.add_argument(
        "--format",
        default="mermaid",
        choices=("mermaid", "plantuml", "svg", "json", "markdown"),
    )
    p.add_argument("--internal", action="store_true", help="show INTERNAL spans as self-calls")
    _add_out_flag(p)

    p = _reading_command(sub, "failures", "the partial-failure report", cmd_failures)
    _add_range_flags(p)
    p.add_argument("--service", metavar="S", help="only traces touching this service")
    _add_json_flag(p)

    p = _reading_command(sub, "find", "the traces that match a query (docs/query.md)", cmd_find)
    p.add_argument("query", metavar="QUERY", help="e.g. '{ status = error } !< { status = error }'")
    _add_range_flags(p)
    p.add_argument(
        "--limit", type=int, default=100, metavar="N", help="traces listed (default 100)"
    )
    _add_json_flag(p)

    p = _reading_command(
        sub,
        "compare",
        "attribute values over-represented in a query's spans against a baseline",
        cmd_compare,
    )
    p.add_argument("query", metavar="QUERY")
    p.add_argument("--baseline", metavar="QUERY", help="default: every other span in the range")
    _add_range_flags(p)
    p.add_argument(
        "--top", type=int, default=25, metavar="N", help="rows in the table (default 25)"
    )
    _add_json_flag(p)

    p = _reading_command(sub, "logs", "the log records of a trace's or an entity's spans", cmd_logs)
    _add_entity_or_trace_flags(p)
    _add_json_flag(p)

    p = _reading_command(sub, "slo", "the SLO report for a spec file", cmd_slo)
    p.add_argument("--spec", required=True, metavar="FILE", help="SLO spec (YAML)")
    p.add_argument("--at", metavar="T", help="evaluate at T (default: newest stored span)")
    out = p.add_mutually_exclusive_group()
    _add_json_flag(out)
    out.add_argument("--markdown", action="store_true", help="print Markdown for a postmortem")

    p = _reading_command(
        sub, "postmortem", "write a postmortem bundle for one or more entities", cmd_postmortem
    )
    p.add_argument(
        "--entity",
        action="append",
        required=True,
        metavar="KEY=VALUE",
        help="an entity to include (repeatable)",
    )
    _add_range_flags(p)
    p.add_argument("--slo-spec", metavar="FILE", help="SLO spec for the SLO impact section")
    _add_repeatable(
        p, "--contract", "FILE.mmd", "contract whose runbook the bundle lists (repeatable)"
    )
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the bundle into")

    p = sub.add_parser("contract", help="sequence contracts: init from an entity, check traffic")
    contract = p.add_subparsers(dest="contract_command", metavar="ACTION")
    p.set_defaults(func=lambda a, parser=p: _missing_action(parser))
    c = _reading_command(
        contract, "init", "write an entity's observed sequence as a contract", cmd_contract_init
    )
    c.add_argument("--entity", required=True, metavar="KEY=VALUE")
    _add_range_flags(c)
    c.add_argument("--out", required=True, metavar="FILE.mmd", help="contract file to write")
    c = _reading_command(
        contract, "check", "check observed sequences against contracts", cmd_contract_check
    )
    c.add_argument("files", nargs="+", metavar="FILE.mmd")
    c.add_argument("--entity", metavar="KEY=VALUE", help="check this entity")
    c.add_argument("--key", metavar="KEY", help="check every entity of this key in the range")
    _add_range_flags(c)
    _add_json_flag(c)

    p = _reading_command(
        sub, "diff", "how the second entity's sequence differs from the first's", cmd_diff
    )
    _add_repeatable(
        p, "--entity", "KEY=VALUE", "give twice: the reference, then the entity to compare"
    )
    _add_range_flags(p)
    p.add_argument("--format", default="markdown", choices=("json", "mermaid", "markdown"))

    p = _reading_command(
        sub,
        "replay",
        "re-send stored or filed traces to an OTLP endpoint, as if now (a drill)",
        cmd_replay,
    )
    p.add_argument("files", nargs="*", metavar="FILE", help="trace files (any format load reads)")
    p.add_argument("--entity", metavar="KEY=VALUE", help="the entity's traces (linked included)")
    p.add_argument("--trace", metavar="ID", help="one trace")
    _add_range_flags(p)
    p.add_argument("--endpoint", required=True, metavar="URL", help="OTLP endpoint to send to")
    p.add_argument("--protocol", default="grpc", choices=("grpc", "http"), help="default grpc")
    p.add_argument(
        "--speed",
        type=float,
        default=0.0,
        metavar="X",
        help="real time scaled by X (2 = twice as fast); 0 (default) sends at once",
    )
    p.add_argument("--keep-ids", action="store_true", help="keep the trace and span ids")
    p.add_argument(
        "--at",
        metavar="T",
        help="when the newest span ends (default: now; with --speed, when the replay sends it)",
    )
    p.add_argument("--token", metavar="TOKEN", help="sent as Authorization: Bearer TOKEN")
    _add_repeatable(p, "--header", "KEY=VALUE", "extra header (gRPC metadata), repeatable")
    p.add_argument("--ca-file", metavar="FILE", help="PEM certificate(s) to trust for TLS")
    p.add_argument(
        "--insecure", action="store_true", help="gRPC: plaintext; HTTPS: skip certificate checks"
    )
    p.add_argument(
        "--max-retry-time",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="give up on a request the endpoint keeps refusing as retryable (default 300)",
    )

    p = _reading_command(
        sub, "flow", "the selected traces folded into variants, most frequent first", cmd_flow
    )
    p.add_argument("--root", metavar='"SERVICE: OPERATION"', help="traces with this root span")
    p.add_argument("--entity", metavar="KEY=VALUE", help="the entity's traces")
    p.add_argument("--key", metavar="KEY", help="each value's traces (links followed) as one")
    p.add_argument("--query", metavar="Q", help="the traces a query matches")
    _add_range_flags(p)
    p.add_argument(
        "--format",
        default="table",
        choices=("table", "json", "mermaid", "plantuml", "svg", "markdown"),
    )
    _add_out_flag(p)
    return parser


def _check_api_url(args: argparse.Namespace) -> None:
    """--api / SEQTRACE_API must be an http(s) URL (urllib's "unknown url type" says little)."""
    if not hasattr(args, "api"):
        return
    flag, url = ("--api", args.api) if args.api else ("SEQTRACE_API", _env("SEQTRACE_API"))
    if url and not url.lower().startswith(("http://", "https://")):
        raise UsageError(
            f"{flag}: {url!r} is not a URL; give the server's query API, e.g. {DEFAULT_API}"
        )


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before a command runs (building the parser, ...)
        return EXIT_INTERRUPTED
    except Exception as exc:  # outside a command's own handler (loading the libraries)
        if _interrupted(exc):
            return EXIT_INTERRUPTED
        internal_error(exc)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse would blame the top level; name the command that was given
        command = " ".join(
            c
            for c in (getattr(args, "command", None), getattr(args, "contract_command", None))
            if c
        )
        prog = f"seqtrace {command}".strip()
        fail(
            f"{command + ': ' if command else ''}unrecognized arguments: {' '.join(extra)} "
            f"(see `{prog} --help`)"
        )
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        from analyzer.source import SourceError
        from spanstore.base import StoreError
    except KeyboardInterrupt:  # Ctrl-C while the libraries load
        return EXIT_INTERRUPTED

    try:
        _check_api_url(args)
        return func(args)
    except UsageError as exc:
        fail(str(exc), EXIT_USAGE)
    except SourceError as exc:
        if exc.status == 401:
            fail(f"{exc}; give --read-token TOKEN (env SEQTRACE_READ_TOKEN)", EXIT_USAGE)
        fail(str(exc), EXIT_INTERNAL if exc.status == 500 else EXIT_USAGE)
    except StoreError as exc:
        fail(str(exc), EXIT_USAGE)
    except ValueError as exc:  # validation errors from the analyzer (SLO spec, ...)
        fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        if _interrupted(exc):
            return EXIT_INTERRUPTED
        internal_error(exc)


#: What a shell reports for a process stopped by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130


def _interrupted(exc: Exception) -> bool:
    """A Ctrl-C that arrived as another exception: DuckDB turns one during a query into
    ``RuntimeError("Query interrupted")`` (its own SIGINT handler, installed while a
    query runs); Python wraps a KeyboardInterrupt raised while a class body is set up
    (a dataclass field's ``__set_name__``, during an import) in a RuntimeError whose
    cause it is (seen once in CI: Ctrl-C 1.3 s into ``seqtrace serve``)."""
    if type(exc) is RuntimeError and str(exc) == "Query interrupted":
        return True
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


if __name__ == "__main__":
    raise SystemExit(main())
