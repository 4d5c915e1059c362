"""The partial-failure report on one busy hour held in memory (issue 4).

    .venv/bin/python bench/bench_failures.py            # 500k spans, 2 / 30 / 100 % failing

The frame is ``tests/analyzer/test_failures_perf.py``'s ``synthetic_frame``: 50k traces of 10 spans
(two services behind a frontend, a retried database read, a cache call, a publish), a share
of them failing in three ways. Prints the median of 3 runs of ``failure_report`` per share,
with the load average: on 2 shared cores other work moves these numbers. The report over
a real store, query included, is measured by ``bench_queries.py`` (``failures_1h``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analyzer.failures import failure_report  # noqa: E402
from tests.analyzer.test_failures_perf import HOUR_NS, T0, synthetic_frame  # noqa: E402


def main() -> int:
    for share in (0.02, 0.3, 1.0):
        frame = synthetic_frame(traces=50_000, error_share=share)
        times = []
        summary: object = None
        for _ in range(3):
            began = time.perf_counter()
            summary = failure_report(frame, {}, T0, T0 + HOUR_NS)["summary"]
            times.append(time.perf_counter() - began)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(
            f"{frame.height} spans, {share:.0%} failing: median {sorted(times)[1]:.3f} s "
            f"(load {load}) {summary}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
