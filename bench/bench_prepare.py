"""CPU cost of turning one serialized request into a prepared batch, per span.

What a decoder process does per request (``spanstore.decode.pool.prepare_serialized``), on the
requests ``bench_ingest.py`` sends (``build_templates(8, 512, 10)``, fresh trace ids per
request from its ``Stamper``), with the garbage collector set up as the decoder workers
set it (start-up objects frozen, young-generation threshold raised). CPU time
(``time.process_time``) of this process, so other load on the machine moves it little.

    .venv/bin/python bench/bench_prepare.py                  # the C scanner where it applies
    .venv/bin/python bench/bench_prepare.py --python         # prepare_request only
    .venv/bin/python bench/bench_prepare.py --requests 400 --repeat 5
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ingest import Stamper, build_templates  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)

from spanstore.decode import pool as decoder  # noqa: E402
from spanstore.decode import scan as fastscan  # noqa: E402
from spanstore.decode.prepare import KeyClassifier  # noqa: E402
from spanstore.policy import IngestPolicy, PolicyEngine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--spans", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    parser.add_argument("--python", action="store_true", help="the pure-Python path only")
    args = parser.parse_args()

    if args.python:
        fastscan.disable()
    stamper = Stamper(build_templates(8, args.spans, 10), 0)
    payloads = [stamper.next() for _ in range(args.requests)]
    keys = KeyClassifier()
    policy = PolicyEngine(IngestPolicy())  # the store always has one (default limits)
    decoder.prepare_serialized(payloads[0], keys, policy)  # warm the key caches
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    runs, parses = [], []
    for _ in range(args.repeat):
        started = time.process_time()
        spans = 0
        for payload in payloads:
            spans += decoder.prepare_serialized(payload, keys, policy).size
        runs.append((time.process_time() - started) / spans * 1e6)
        # upb's parse alone, which every path starts with
        started = time.process_time()
        for payload in payloads:
            ExportTraceServiceRequest.FromString(payload)
        parses.append((time.process_time() - started) / spans * 1e6)
    print(
        json.dumps(
            {
                "path": "python" if args.python else "fast",
                "spans": spans,
                "us_per_span": [round(r, 2) for r in runs],
                "best_us_per_span": round(min(runs), 2),
                "parse_us_per_span": [round(r, 2) for r in parses],
            }
        )
    )


if __name__ == "__main__":
    main()
