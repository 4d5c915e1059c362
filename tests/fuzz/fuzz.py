"""The fuzz corpus and a long fuzzing run, outside the normal suite.

    .venv/bin/python tests/fuzz/fuzz.py seed            # (re)write the seed corpus
    .venv/bin/python tests/fuzz/fuzz.py run --minutes 10  # fuzz longer than CI does

``tests/spanstore/test_fuzz.py`` replays every file in ``tests/fuzz/corpus/`` and then runs a
bounded number of mutations of them (hypothesis) in the normal suite. A long run here
uses the same targets with many more examples; any input that fails is written to
``corpus/<target>/crash-*.{json,binpb}`` so that the normal suite replays it from then on.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CORPUS = HERE / "corpus"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def _ids(n: int) -> tuple[str, str]:
    return f"{n:032x}", f"{n:016x}"


def _span(n: int, **extra: object) -> dict[str, object]:
    trace, span = _ids(n)
    return {
        "traceId": trace,
        "spanId": span,
        "name": f"op-{n}",
        "kind": 2,
        "startTimeUnixNano": str(1_700_000_000_000_000_000 + n),
        "endTimeUnixNano": str(1_700_000_000_000_001_000 + n),
        **extra,
    }


def _doc(spans: list[dict[str, object]], service: str = "svc") -> dict[str, object]:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "fuzz"}, "spans": spans}],
            }
        ]
    }


def seed_documents() -> dict[str, object]:
    """Hand-written edge cases, each a valid or nearly valid OTLP/JSON document."""
    every_type = [
        {"key": "s", "value": {"stringValue": "text"}},
        {"key": "i", "value": {"intValue": "-9223372036854775808"}},
        {"key": "d", "value": {"doubleValue": 1e308}},
        {"key": "b", "value": {"boolValue": True}},
        {"key": "x", "value": {"bytesValue": base64.b64encode(b"\x00\xff").decode()}},
        {"key": "a", "value": {"arrayValue": {"values": [{"intValue": 1}, {"stringValue": ""}]}}},
        {"key": "m", "value": {"kvlistValue": {"values": [{"key": "k", "value": {}}]}}},
        {"key": "", "value": {}},
    ]
    nested: dict[str, object] = {"stringValue": "leaf"}
    for level in range(12):
        nested = (
            {"arrayValue": {"values": [nested]}}
            if level % 2
            else {"kvlistValue": {"values": [{"key": "k", "value": nested}]}}
        )
    parent_trace, parent_span = _ids(1)
    return {
        "empty": {},
        "no-spans": {"resourceSpans": [{"scopeSpans": [{}]}]},
        "every-value-type": _doc([_span(1, attributes=every_type)]),
        "nested-values": _doc([_span(2, attributes=[{"key": "deep", "value": nested}])]),
        "parent-and-events": _doc(
            [
                _span(1),
                {
                    **_span(3, parentSpanId=parent_span, status={"code": 2, "message": "boom"}),
                    "traceId": parent_trace,
                    "events": [
                        {
                            "name": "exception",
                            "timeUnixNano": "1",
                            "attributes": [
                                {"key": "exception.type", "value": {"stringValue": "E"}},
                                {"key": "exception.message", "value": {"stringValue": "m"}},
                            ],
                        }
                    ],
                    "links": [{"traceId": _ids(9)[0], "spanId": _ids(9)[1]}],
                },
            ]
        ),
        "bad-ids": _doc(
            [
                {**_span(4), "traceId": "abc"},
                {**_span(5), "spanId": "00" * 8},
                {**_span(6), "parentSpanId": "01"},
            ]
        ),
        "extreme-times-and-enums": _doc(
            [
                {**_span(7), "startTimeUnixNano": "18446744073709551615", "endTimeUnixNano": 0},
                {**_span(8), "kind": 99, "status": {"code": 7}},
            ]
        ),
        "hostile-strings": _doc(
            [
                {
                    **_span(10),
                    "name": '</text><script>alert(1)</script> "quoted" %%{init}%% -->> ;#',
                    "attributes": [
                        {"key": "order.id", "value": {"stringValue": "ORD-1\n\r\t\u2028"}},
                        {"key": "peer.service", "value": {"stringValue": "a->>b: x"}},
                    ],
                }
            ],
            service="Zoë <&>",
        ),
        "snake-case-fields": {
            "resource_spans": [
                {"scope_spans": [{"spans": [{"trace_id": _ids(11)[0], "span_id": _ids(11)[1]}]}]}
            ]
        },
    }


def write_seeds() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from spanstore.otlp import OtlpJsonError, request_from_json

    json_dir = CORPUS / "otlp_json"
    proto_dir = CORPUS / "otlp_proto"
    json_dir.mkdir(parents=True, exist_ok=True)
    proto_dir.mkdir(parents=True, exist_ok=True)
    documents = dict(seed_documents())
    # A slice of a sample trace and of a real trace from another project.
    sample = json.loads((ROOT / "sample_traces" / "02-payment-retry.json").read_text())
    sample["resourceSpans"] = sample["resourceSpans"][:3]
    documents["sample-payment-retry"] = sample
    real = ROOT / "tests" / "data" / "real_traces" / "otlp-proto-example-trace.json"
    if real.exists():
        documents["otlp-spec-example"] = json.loads(real.read_text())
    for name, doc in documents.items():
        (json_dir / f"{name}.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False))
        try:
            request = request_from_json(doc)
        except OtlpJsonError:
            continue
        (proto_dir / f"{name}.binpb").write_bytes(request.SerializeToString())
    # Raw protobuf edge cases the JSON form cannot express.
    edge = ExportTraceServiceRequest()
    span = edge.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = b"\x01" * 16
    span.span_id = b"\x02" * 8
    span.name = "unknown-fields"
    data = edge.SerializeToString() + b"\xf8\xff\x07\x01"  # an unknown varint field
    (proto_dir / "unknown-fields.binpb").write_bytes(data)
    (proto_dir / "truncated.binpb").write_bytes(edge.SerializeToString()[:-3])


def save_crash(target: str, data: bytes, suffix: str) -> Path:
    folder = CORPUS / target
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"crash-{hashlib.sha256(data).hexdigest()[:12]}{suffix}"
    path.write_bytes(data)
    return path


def run(minutes: float) -> int:
    import pytest

    os.environ["SEQTRACE_FUZZ_EXAMPLES"] = "100000"
    os.environ["SEQTRACE_FUZZ_SECONDS"] = str(minutes * 60 / 3)
    os.environ["SEQTRACE_FUZZ_SAVE"] = "1"
    return pytest.main([str(ROOT / "tests" / "test_fuzz.py"), "-q", "-p", "no:cacheprovider"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("seed", help="write the seed corpus")
    longer = sub.add_parser("run", help="fuzz for longer, saving failing inputs")
    longer.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    if args.command == "seed":
        write_seeds()
        return 0
    return run(args.minutes)


if __name__ == "__main__":
    raise SystemExit(main())
