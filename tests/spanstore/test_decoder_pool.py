"""The decoder processes run this checkout's code, wherever the server was started."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

SCRIPT = """
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanstore.decode.pool import DecoderPool

request = ExportTraceServiceRequest()
scope = request.resource_spans.add().scope_spans.add()
for n in range(1, 4):
    span = scope.spans.add(trace_id=bytes(15) + b"\\x01", span_id=bytes(7) + bytes([n]), name="op")
    span.start_time_unix_nano, span.end_time_unix_nano = 10**18, 10**18 + n
if __name__ == "__main__":
    pool = DecoderPool(workers=1)
    try:
        print(pool.prepare(request.SerializeToString()).size)
    finally:
        pool.close()
"""


def test_decoders_ignore_a_spanstore_folder_in_the_working_directory(tmp_path: Path) -> None:
    """``seqtrace serve`` started inside another checkout (a benchmark's A/B runs the old
    tree's server from the new tree) once decoded with that checkout's ``spanstore``: the
    fork server put the working directory first on its path."""
    shadow = tmp_path / "elsewhere" / "spanstore"
    shutil.copytree(ROOT / "spanstore", shadow, ignore=shutil.ignore_patterns("__pycache__"))
    marker = tmp_path / "the cwd's spanstore was imported"
    with (shadow / "__init__.py").open("a") as init:
        init.write(f"\nopen({str(marker)!r}, 'w').close()\n")
    script = tmp_path / "decode_three.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONSAFEPATH", None)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=shadow.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["3"]
    assert not marker.exists()


def test_decoders_run_at_the_configured_niceness(tmp_path: Path) -> None:
    """The server's decoders run below its own priority (``limits.decoder_niceness``) so
    that a read under a flood gets the CPU first; they still decode."""
    from spanstore.config import IngestConfig, StoreConfig
    from spanstore.urls import open_store_url

    config = StoreConfig(ingest=IngestConfig(decoder_processes=2, decoder_niceness=7))
    store = open_store_url(str(tmp_path / "nice.duckdb"), config=config)
    try:
        pool = store._decode.pool  # type: ignore[attr-defined]
        assert pool is not None
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        workers = [worker.process.pid for worker in pool._all]
        assert len(workers) == 2
        assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in workers] == [min(19, mine + 7)] * 2
        from tests.collector.test_collector_support import make_request

        assert store.write(make_request(spans=5, attrs=1)).accepted == 5
    finally:
        store.close()
    assert os.getpriority(os.PRIO_PROCESS, 0) == mine  # the store's process is left as it was


def test_a_niceness_out_of_range_is_refused() -> None:
    import pytest

    from spanstore.config import IngestConfig

    for bad in (-1, 20, True):
        with pytest.raises(ValueError, match="decoder_niceness"):
            IngestConfig(decoder_niceness=bad).validate()  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="writer_niceness"):
            IngestConfig(writer_niceness=bad).validate()  # type: ignore[arg-type]
