"""The configuration file (seqtrace/config.py, docs/config.md): every mistake is one line
naming the file, the key path and what is wrong (exit 2); secrets are never echoed;
flags win over the environment, which wins over the file; and a server started with a
file applies its redaction rules and limits."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from test_collector_support import http_call, make_request

from analyzer.source import HttpSource
from seqtrace.cli import build_parser
from seqtrace.config import ConfigError, load_config, parse_duration, parse_size
from seqtrace.server import resolve_settings
from tests.conftest import SEQTRACE, sample_files, start_server

HASH_KEY = "k3y-for-hashing-0123456789"
FULL = f"""
server:
  bind: 127.0.0.1
  grpc_port: 0
  http_port: 0
  api_port: 0
  cors_origins: [https://app.example.com]
auth:
  ingest_token: in-tok-1234567
  read_token: rd-tok-1234567
entity_keys: [tenant.id, order.id]
limits:
  max_queue_mib: 32
  max_http_body_mib: 8
  max_attributes: 50
  max_value_bytes: 2048
  max_depth: 4
  query_timeout: 15s
  max_diagram_traces: 200
  db_memory_mib: 256
  db_checkpoint_mib: 16
  decoder_niceness: 0
  ingest_niceness: 3
  keep_trace_shapes: false
redaction:
  hash_key: {HASH_KEY}
  rules:
    - name: emails
      keys: [user.email, "*.email"]
      action: hash
    - keys: ["*.card_number"]
      action: mask
      keep_last: 4
    - name: secrets
      keys: ["*password*", http.request.header.authorization]
      action: drop
retention:
  max_age: 7d
  max_size: 2GiB
  interval: 30s
"""


def write(tmp_path: Path, text: str, name: str = "seqtrace.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_full_file_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    assert config.grpc_port == 0 and config.cors_origins == ("https://app.example.com",)
    assert config.ingest_token == "in-tok-1234567" and config.read_token == "rd-tok-1234567"
    assert config.entity_keys == ("tenant.id", "order.id")
    assert (config.max_queue_mib, config.max_http_body_mib) == (32, 8)
    assert config.limits.max_attributes == 50 and config.limits.max_depth == 4
    assert config.query_timeout_seconds == 15.0 and config.db_memory_mib == 256
    assert config.db_checkpoint_mib == 16 and config.decoder_niceness == 0
    assert config.ingest_niceness == 3
    assert config.keep_trace_shapes is False
    assert [r.name for r in config.rules] == ["emails", "*.card_number", "secrets"]
    assert config.rules[1].keep_last == 4 and config.hash_key == HASH_KEY.encode()
    assert config.retention.max_age_seconds == 7 * 86400
    assert config.retention.max_size_bytes == 2 * 1024**3
    config.policy().validate()


MISTAKES = [
    ("server: [1, 2]", "server: expected a mapping"),
    ("servre: {}", "servre: unknown key (did you mean 'server'?)"),
    ("server:\n  grpc_prot: 1", "server.grpc_prot: unknown key (did you mean 'grpc_port'?)"),
    ("server:\n  grpc_port: 70000", "server.grpc_port: expected a port number"),
    ("server:\n  grpc_port: '4317'", "server.grpc_port: expected a port number"),
    ("server:\n  tls_cert: /nope.pem\n  tls_key: /nope.pem", "server.tls_cert: no such file"),
    ("server:\n  cors_origins: [https://a.example/path]", "server.cors_origins: origin"),
    ("server:\n  bind:", "server.bind: no value given"),
    ("limits:\n  max_queue_mib: 0", "limits.max_queue_mib: expected a positive integer"),
    ("limits:\n  max_queue_mib: true", "limits.max_queue_mib: expected a positive integer"),
    ("limits:\n  query_timeout: soon", "limits.query_timeout: expected a duration"),
    ("limits:\n  max_grpc_message_mib: 4096", "limits.max_grpc_message_mib: must be below"),
    ("limits:\n  decoder_niceness: 20", "limits.decoder_niceness: expected a niceness 0-19"),
    ("limits:\n  decoder_niceness: -1", "limits.decoder_niceness: expected a niceness 0-19"),
    ("limits:\n  ingest_niceness: 20", "limits.ingest_niceness: expected a niceness 0-19"),
    ("limits:\n  ingest_niceness: yes", "limits.ingest_niceness: expected a niceness 0-19"),
    ("limits:\n  keep_trace_shapes: 'no'", "limits.keep_trace_shapes: expected true or false"),
    ("retention:\n  max_age: -1d", "retention.max_age: expected a duration"),
    ("retention:\n  max_size: 10 parsecs", "retention.max_size: expected a size"),
    ("entity_keys: order.id", None),  # one string is fine
    ("entity_keys: [1]", "entity_keys: item 0: expected a non-empty string"),
    ("redaction:\n  rules: {a: 1}", "redaction.rules: expected a list of rules"),
    ("redaction:\n  rules:\n    - keys: [a]\n      action: scramble", "rules[0].action: must be"),
    ("redaction:\n  rules:\n    - action: drop", "redaction.rules[0].keys: give key patterns"),
    ("redaction:\n  rules:\n    - keys: [a]\n      action: hash", "hash needs redaction.hash_key"),
    ("redaction:\n  rules:\n    - keys: [a]\n      action: drop\n      keep: 1", "rules[0].keep"),
    (
        "redaction:\n  rules:\n    - keys: [a]\n      action: drop\n      keep_last: 2",
        "rules[0].keep_last: only a mask rule",
    ),
    (
        "redaction:\n  rules:\n    - {keys: [a], action: drop}\n    - {keys: [a], action: drop}",
        "rules[1].name: 'a' is used by an earlier rule",
    ),
    ("redaction:\n  hash_key: short", "redaction.hash_key: must be at least 16 bytes"),
    ("auth:\n  ingest_token: 12", "auth.ingest_token: expected a string"),
    ("auth:\n  ingest_token: same-token-xyz\n  read_token: same-token-xyz", "must differ"),
    ("server: {bind: x\n", "line "),  # YAML syntax
    ("- just\n- a list", "(top level): expected a mapping"),
]


@pytest.mark.parametrize(("text", "message"), MISTAKES, ids=[m[0][:30] for m in MISTAKES])
def test_every_mistake_is_named(tmp_path: Path, text: str, message: str | None) -> None:
    path = write(tmp_path, text)
    if message is None:
        load_config(path)
        return
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text_of_error = str(caught.value)
    assert text_of_error.startswith(f"config {path}: ") and message in text_of_error
    assert "\n" not in text_of_error


def test_secrets_are_never_echoed(tmp_path: Path) -> None:
    for text in (
        "auth:\n  ingest_token: 'has a space s3cr3t'",
        "redaction:\n  hash_key: 's3cr3t'",
        "auth:\n  read_token: ''",
    ):
        with pytest.raises(ConfigError) as caught:
            load_config(write(tmp_path, text))
        assert "s3cr3t" not in str(caught.value) and "value not shown" in str(caught.value)


def test_secret_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-a-file-123\n")
    (tmp_path / "key").write_text(HASH_KEY)
    config = load_config(
        write(
            tmp_path,
            f"auth:\n  ingest_token_file: {tmp_path / 'token'}\n"
            f"redaction:\n  hash_key_file: {tmp_path / 'key'}\n",
        )
    )
    assert config.ingest_token == "from-a-file-123" and config.hash_key == HASH_KEY.encode()


def test_units() -> None:
    assert parse_duration("90m") == 5400 and parse_duration(15) == 15 and parse_duration("2w")
    assert parse_size("512MiB") == 512 * 1024**2 and parse_size("1GB") == 10**9
    with pytest.raises(ValueError):
        parse_duration("0s")


def test_flags_win_over_env_which_wins_over_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, FULL)
    parser = build_parser()
    monkeypatch.setenv("SEQTRACE_CONFIG", path)
    settings = resolve_settings(parser.parse_args(["serve"]))
    assert settings.read_token == "rd-tok-1234567" and settings.max_queue_mib == 32
    assert settings.grpc_port == 0 and settings.entity_keys == ("tenant.id", "order.id")
    monkeypatch.setenv("SEQTRACE_READ_TOKEN", "from-env-123")
    args = parser.parse_args(
        ["serve", "--max-queue-mib", "8", "--grpc-port", "5555", "--entity-key", "x.id"]
    )
    settings = resolve_settings(args)
    assert settings.read_token == "from-env-123"
    assert (settings.max_queue_mib, settings.grpc_port) == (8, 5555)
    assert settings.entity_keys == ("tenant.id", "order.id", "x.id")
    args = parser.parse_args(["serve", "--read-token", "from-flag-123", "--config", path])
    assert resolve_settings(args).read_token == "from-flag-123"
    monkeypatch.delenv("SEQTRACE_CONFIG")
    defaults = resolve_settings(parser.parse_args(["serve"]))
    assert (defaults.grpc_port, defaults.max_queue_mib, defaults.bind) == (4317, 64, "127.0.0.1")


def test_a_bad_file_is_exit_2_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "limits:\n  max_queue_mib: lots\n")
    sample = str(sample_files()[0])
    for command in (["serve"], ["up"], ["load", "--db", str(tmp_path / "x.duckdb"), sample]):
        out = subprocess.run(
            [*SEQTRACE, *command, "--config", path], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 2, (command, out.stderr)
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("seqtrace: error: config ")
        assert "limits.max_queue_mib" in out.stderr and "Traceback" not in out.stderr


def task_niceness(pid: int) -> dict[int, int]:
    """Each thread of a process (Linux): its niceness, by thread id."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except FileNotFoundError:  # a thread that ended meanwhile (a connection's)
            continue
        # Fields after "pid (comm) ": state is field 3, nice field 19.
        found[int(task.name)] = int(stat.rsplit(")", 1)[1].split()[16])
    return found


def test_a_server_applies_the_file(tmp_path: Path) -> None:
    """`seqtrace serve --config`: tokens, entity keys, limits and redaction from the file;
    counts per rule on /api/v1/ingest-stats."""
    path = write(tmp_path, FULL)
    server = start_server(tmp_path / "configured.duckdb", "--config", path)
    try:
        request = make_request(spans=2, attrs=0)
        for recent in request.resource_spans[0].scope_spans[0].spans:  # inside max_age
            recent.start_time_unix_nano = time.time_ns()
            recent.end_time_unix_nano = recent.start_time_unix_nano + 1000
        span = request.resource_spans[0].scope_spans[0].spans[0]
        span.attributes.add(key="user.email").value.string_value = "jane@example.com"
        span.attributes.add(key="payment.card_number").value.string_value = "4111111111111111"
        span.attributes.add(key="db.password").value.string_value = "hunter2"
        span.attributes.add(key="tenant.id").value.string_value = "T-9"
        for n in range(80):  # over max_attributes (50): the last ones are dropped
            span.attributes.add(key=f"filler.{n}").value.int_value = n
        body = request.SerializeToString()
        headers = {"Content-Type": "application/x-protobuf"}
        assert http_call(server.addresses["otlp-http"], body, headers)[0] == 401
        headers["Authorization"] = "Bearer in-tok-1234567"
        assert http_call(server.addresses["otlp-http"], body, headers)[0] == 200
        # ingest_niceness: 3: the writer (and the request threads) run 3 steps nicer than
        # the server's main thread; most threads (the reads' among them) do not.
        niceness = task_niceness(server.process.pid)
        main = niceness.pop(server.process.pid)
        assert main + 3 in niceness.values()
        assert list(niceness.values()).count(main) > list(niceness.values()).count(main + 3)
        source = HttpSource(server.api, "rd-tok-1234567")
        spans = source.trace(f"{1:032x}")["spans"]
        first = next(s for s in spans if s["span_id"] == f"{1:016x}")
        attributes = first["attributes"]
        digest = hmac.new(HASH_KEY.encode(), b"jane@example.com", hashlib.sha256).hexdigest()
        assert attributes["user.email"] == f"hmac:{digest[:16]}"
        assert attributes["payment.card_number"] == "****1111"
        assert "db.password" not in attributes
        assert len(attributes) <= 51  # max_attributes 50 (+ seqtrace.truncated when cut)
        assert source.entities("tenant.id")["values"][0]["value"] == "T-9"
        request_stats = urllib.request.Request(
            f"{server.api}/api/v1/ingest-stats",
            headers={"Authorization": "Bearer rd-tok-1234567"},
        )
        with urllib.request.urlopen(request_stats, timeout=10) as response:
            stats = json.loads(response.read())
        assert stats["policy"]["redacted"] == {"emails": 1, "*.card_number": 1, "secrets": 1}
        assert stats["policy"]["dropped_attributes"] > 0
        assert stats["queue"]["max_bytes"] == 32 * 1024 * 1024
        assert stats["retention"]["max_age_seconds"] == 7 * 86400
        assert stats["trace_shapes"] is None  # keep_trace_shapes: false
    finally:
        assert server.stop() == 0


def test_every_setting_is_documented() -> None:
    """Like the CLI's documentation test: every key the file accepts is in docs/config.md's
    example, under its section."""
    from seqtrace.config import _SECTIONS

    docs = (Path(__file__).resolve().parents[2] / "docs" / "config.md").read_text()
    example = docs.split("```yaml", 1)[1].split("```", 1)[0]
    sections: dict[str, set[str]] = {}
    current = ""
    for line in example.splitlines():
        stripped = line.split("#", 1)[0].rstrip()
        if stripped and not stripped.startswith(" "):
            current = stripped.split(":", 1)[0]
            sections.setdefault(current, set())
        elif stripped.startswith("  ") and not stripped.startswith("   ") and ":" in stripped:
            sections.setdefault(current, set()).add(stripped.strip().split(":", 1)[0])
    for section, keys in _SECTIONS.items():
        documented = sections.get(section, set())
        # A `*_file` key is documented beside the key it replaces ("... or NAME: ...").
        missing = {key for key in keys if key not in documented and f"or {key}:" not in example}
        assert not missing, f"{section}: {sorted(missing)} not in docs/config.md"
