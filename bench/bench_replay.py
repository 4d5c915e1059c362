"""`seqtrace replay --speed 0` of a whole stored range into a second seqtrace (issue #19).

    .venv/bin/python bench/make_store.py --spans 1000000 --out /tmp/h6/s1m.duckdb
    .venv/bin/python bench/bench_replay.py --db /tmp/h6/s1m.duckdb [--protocol grpc|http]

Starts `seqtrace serve` on a fresh database file (ports 0), then runs `seqtrace replay
--db STORE --from FIRST --to LAST --endpoint ... --speed 0` as its own process, as a user
would, and reports: wall time, spans/s, the replaying process's peak RSS (sampled from
/proc every 50 ms, and its ru_maxrss), the target's span count afterwards (every span must
arrive), and the load average. The target: >= 30,000 spans/s with bounded memory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEQTRACE = [sys.executable, "-m", "seqtrace.cli"]


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _serve(db: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [
            *SEQTRACE,
            "serve",
            "--db",
            str(db),
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--api-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    addresses: dict[str, str] = {}
    assert process.stdout is not None
    while len(addresses) < 3:
        line = process.stdout.readline()
        if not line:
            raise SystemExit("bench_replay: seqtrace serve exited")
        match = re.match(r"seqtrace: listening (\S+)=(\S+)", line)
        if match:
            addresses[match.group(1)] = match.group(2)
    return process, addresses


def _stats(api: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://{api}/api/v1/stats", timeout=600) as response:
        result: dict[str, object] = json.loads(response.read())
        return result


def _source_range(db: str) -> tuple[int, int, int]:
    out = subprocess.run(
        [*SEQTRACE, "stats", "--db", db, "--json"], capture_output=True, text=True, check=True
    )
    stats = json.loads(out.stdout)
    return int(stats["first_unix_nano"]), int(stats["last_unix_nano"]), int(stats["spans"])


def _rfc3339(ns: int) -> str:
    seconds, fraction = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the store to replay (read-only)")
    parser.add_argument("--protocol", default="grpc", choices=("grpc", "http"))
    parser.add_argument("--out", help="write the result as JSON here")
    args = parser.parse_args()

    first, last, stored = _source_range(args.db)
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        target, addresses = _serve(Path(tmp) / "target.duckdb")
        try:
            endpoint = addresses["otlp-grpc" if args.protocol == "grpc" else "otlp-http"]
            command = [
                *SEQTRACE, "replay", "--db", args.db, "--from", _rfc3339(first),
                "--to", _rfc3339(last + 1), "--endpoint", f"http://{endpoint}",
                "--protocol", args.protocol, "--speed", "0",
            ]  # fmt: skip
            load_before = os.getloadavg()
            started = time.monotonic()
            replaying = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT
            )
            peak = 0
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, _rss_kib(replaying.pid))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            out, err = replaying.communicate()
            took = time.monotonic() - started
            done.set()
            sampler.join()
            load_after = os.getloadavg()
            if replaying.returncode != 0:
                raise SystemExit(f"bench_replay: replay failed: {err.strip()}")
            arrived = int(_stats(addresses["api"])["spans"])  # type: ignore[call-overload]
        finally:
            target.terminate()
            target.wait(60)
    result = {
        "protocol": args.protocol,
        "stored_spans": stored,
        "arrived_spans": arrived,
        "seconds": round(took, 2),
        "spans_per_s": round(stored / took),
        "replay_peak_rss_mib": round(peak / 1024, 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "replay_stdout": out.strip(),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
