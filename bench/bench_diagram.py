"""How long building and rendering a diagram takes for big entities.

Run: ``.venv/bin/python bench/bench_diagram.py [SPANS]``. Builds synthetic traces (a root
request fanning out to services, each with database calls, retries and parallel calls),
then times ``build_diagram`` and every renderer, capped (the default 500 messages) and
uncapped.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from analyzer.diagram import FORMATS, build_diagram, render
from spanstore.model import Span

T = TypeVar("T")
T0 = 1_795_165_200_000_000_000
MS = 1_000_000


def synthetic(total: int) -> list[Span]:
    spans: list[Span] = []
    trace_number = 0
    while len(spans) < total:
        trace_number += 1
        trace = f"{trace_number:032x}"
        start = T0 + trace_number * 90_000 * MS
        root = f"{len(spans) + 1:016x}"
        spans.append(
            Span(
                trace,
                root,
                None,
                "POST /api/checkout",
                "SERVER",
                start,
                start + 900 * MS,
                "frontend",
            )
        )
        for n in range(40):
            client = f"{len(spans) + 1:016x}"
            server = f"{len(spans) + 2:016x}"
            at = start + n * 20 * MS + (n % 3) * MS
            service = f"svc-{n % 7}"
            spans.append(
                Span(
                    trace,
                    client,
                    root,
                    f"GET /op/{n % 5}",
                    "CLIENT",
                    at,
                    at + 15 * MS,
                    "frontend",
                    attributes={"peer.service": service},
                )
            )
            spans.append(
                Span(
                    trace,
                    server,
                    client,
                    f"GET /op/{n % 5}",
                    "SERVER",
                    at + MS,
                    at + 14 * MS,
                    service,
                )
            )
            for q in range(2):
                spans.append(
                    Span(
                        trace,
                        f"{len(spans) + 1:016x}",
                        server,
                        "SELECT",
                        "CLIENT",
                        at + (2 + 5 * q) * MS,
                        at + (6 + 5 * q) * MS,
                        service,
                        attributes={
                            "db.system": "postgresql",
                            "server.address": "db",
                            "db.operation": "SELECT",
                            "db.sql.table": f"t{q}",
                        },
                    )
                )
    return spans[:total]


def timed(label: str, action: Callable[[], T]) -> T:
    begin = time.perf_counter()
    result = action()
    print(f"{label:<28} {1000 * (time.perf_counter() - begin):9.1f} ms")
    return result


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    spans = synthetic(total)
    print(f"{len(spans)} spans")
    for cap in (500, 0):
        diagram = timed(
            f"build (max_messages={cap})", partial(build_diagram, spans, max_messages=cap)
        )
        print(f"  -> {len(diagram.messages)} messages, {len(diagram.blocks)} blocks")
        for fmt in FORMATS:
            timed(f"  render {fmt}", partial(render, diagram, fmt))


if __name__ == "__main__":
    main()
