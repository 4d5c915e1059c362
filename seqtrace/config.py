"""The configuration file (``--config FILE``, env ``SEQTRACE_CONFIG``): docs/config.md.

One YAML file for what ``serve`` and ``up`` need beyond their flags: entity keys, limits,
tokens, CORS, redaction and retention. Every mistake is reported as one line naming the
file, the key path and what is wrong (exit 2); secrets are never echoed. Command-line
flags win over environment variables, which win over the file, which wins over defaults.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from seqtrace.errors import UsageError
from spanstore.config import MAX_NICENESS
from spanstore.policy import ACTIONS, IngestPolicy, Limits, RedactionRule
from spanstore.retention import RetentionPolicy

__all__ = ["ConfigError", "FileConfig", "load_config", "parse_duration", "parse_size"]

MIB: Final = 1024 * 1024
#: A hash key shorter than this makes hashed values easy to guess by brute force.
MIN_HASH_KEY_BYTES: Final = 16


class ConfigError(UsageError):
    """A mistake in the configuration file (exit 2, one line)."""


@dataclass(frozen=True, slots=True)
class FileConfig:
    """What a configuration file sets; ``None`` (or empty) means "not set in the file"."""

    path: str | None = None
    db: str | None = None
    bind: str | None = None
    grpc_port: int | None = None
    http_port: int | None = None
    api_port: int | None = None
    ui_port: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    ingest_token: str | None = None
    read_token: str | None = None
    entity_keys: tuple[str, ...] = ()
    max_queue_mib: int | None = None
    max_http_body_mib: int | None = None
    max_grpc_message_mib: int | None = None
    write_timeout_seconds: float | None = None
    query_timeout_seconds: float | None = None
    max_diagram_traces: int | None = None
    db_memory_mib: int | None = None
    db_checkpoint_mib: int | None = None
    decoder_niceness: int | None = None
    ingest_niceness: int | None = None
    keep_trace_shapes: bool | None = None
    limits: Limits = field(default_factory=Limits)
    rules: tuple[RedactionRule, ...] = ()
    hash_key: bytes = b""
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)

    def policy(self) -> IngestPolicy:
        return IngestPolicy(limits=self.limits, rules=self.rules, hash_key=self.hash_key)


# ------------------------------------------------------------------------------ values

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_UNITS: Final = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
    None: 1.0,
}
_SIZE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS: Final = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}


def parse_duration(value: object) -> float:
    """Seconds from ``30``, ``"45s"``, ``"30m"``, ``"12h"``, ``"7d"``, ``"2w"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 7d, 12h, 30m or 45s")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration such as 7d, 12h, 30m or 45s, got {value!r}")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if not seconds > 0:
        raise ValueError(f"must be a positive duration, got {value!r}")
    return seconds


def parse_size(value: object) -> int:
    """Bytes from ``1048576``, ``"512MiB"``, ``"10GiB"``, ``"2GB"``."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 512MiB or 10GiB")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ValueError(f"expected a size such as 512MiB or 10GiB, got {value!r}")
        unit = (match.group(2) or "b").lower()
        size = int(float(match.group(1)) * _SIZE_UNITS[unit])
    if size <= 0:
        raise ValueError(f"must be a positive size, got {value!r}")
    return size


def _positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a positive integer, got {value!r}")
    return value


def _niceness(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NICENESS:
        raise ValueError(f"expected a niceness 0-{MAX_NICENESS} (0: as the server), got {value!r}")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise ValueError(f"expected a port number 0-65535 (0 picks one), got {value!r}")
    return value


def _positive_seconds(value: object) -> float:
    return parse_duration(value)


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value


def _secret(value: object) -> str:
    # Never echo a secret's value in an error: it would end up in logs.
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got a {type(value).__name__}")
    if not value or any(c.isspace() for c in value):
        raise ValueError("must be a non-empty string without spaces (value not shown)")
    return value


def _string_list(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (_text(value),)
    if not isinstance(value, list):
        raise ValueError(f"expected a list of strings, got {type(value).__name__}")
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"item {index}: expected a non-empty string, got {item!r}")
        out.append(item)
    return tuple(out)


def _origins(value: object) -> tuple[str, ...]:
    origins = _string_list(value)
    for origin in origins:
        if origin != "*" and not (
            origin.startswith(("http://", "https://")) and "/" not in origin.split("//", 1)[1]
        ):
            raise ValueError(f"origin {origin!r} must be '*' or scheme://host[:port] (no path)")
    return origins


def _readable_file(value: object) -> str:
    path = _text(value)
    if not os.path.isfile(path):
        raise ValueError(f"no such file: {path}")
    return path


# ------------------------------------------------------------------------------ schema

Parser = Callable[[object], Any]

_SECTIONS: Final[dict[str, dict[str, Parser]]] = {
    "server": {
        "db": _text,
        "bind": _text,
        "grpc_port": _port,
        "http_port": _port,
        "api_port": _port,
        "ui_port": _port,
        "tls_cert": _readable_file,
        "tls_key": _readable_file,
        "cors_origins": _origins,
    },
    "auth": {
        "ingest_token": _secret,
        "read_token": _secret,
        "ingest_token_file": _readable_file,
        "read_token_file": _readable_file,
    },
    "limits": {
        "max_queue_mib": _positive_int,
        "max_http_body_mib": _positive_int,
        "max_grpc_message_mib": _positive_int,
        "max_attributes": _positive_int,
        "max_value_bytes": _positive_int,
        "max_depth": _positive_int,
        "write_timeout": _positive_seconds,
        "query_timeout": _positive_seconds,
        "max_diagram_traces": _positive_int,
        "db_memory_mib": _positive_int,
        "db_checkpoint_mib": _positive_int,
        "decoder_niceness": _niceness,
        "ingest_niceness": _niceness,
        "keep_trace_shapes": _flag,
    },
    "redaction": {"hash_key": _secret, "hash_key_file": _readable_file, "rules": lambda v: v},
    "retention": {
        "max_age": parse_duration,
        "max_size": parse_size,
        "interval": parse_duration,
    },
}
_TOP_LEVEL: Final = (*_SECTIONS, "entity_keys")
_RULE_KEYS: Final = ("name", "keys", "action", "keep_last")


def _unknown(key: object, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
    return f"unknown key ({hint})"


class _Reader:
    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"config {self.path}: {where}: {problem}")

    def mapping(self, value: object, where: str) -> Mapping[str, object]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping of keys, got {type(value).__name__}")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(where, f"keys must be strings, got {key!r}")
        return value

    def secret_file(self, path: str, where: str) -> str:
        try:
            text = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise self.fail(where, f"cannot read {path}: {exc}") from None
        try:
            return _secret(text)
        except ValueError as exc:
            raise self.fail(where, f"the file's content {exc}") from None


def load_config(path: str) -> FileConfig:
    """Read and validate a configuration file; raises :class:`ConfigError`."""
    reader = _Reader(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {path}: cannot read: {exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "YAML"
        raise ConfigError(f"config {path}: {where}: {problem}") from None
    top = reader.mapping(document, "(top level)")
    values: dict[str, Any] = {"path": path}
    for key, raw in top.items():
        if key not in _TOP_LEVEL:
            raise reader.fail(key, _unknown(key, _TOP_LEVEL))
        if key == "entity_keys":
            try:
                values["entity_keys"] = _string_list(raw)
            except ValueError as exc:
                raise reader.fail("entity_keys", str(exc)) from None
            continue
        section = reader.mapping(raw, key)
        schema = _SECTIONS[key]
        parsed: dict[str, Any] = {}
        for name, item in section.items():
            where = f"{key}.{name}"
            if name not in schema:
                raise reader.fail(where, _unknown(name, tuple(schema)))
            if item is None:
                raise reader.fail(where, "no value given")
            try:
                parsed[name] = schema[name](item)
            except ValueError as exc:
                raise reader.fail(where, str(exc)) from None
        _apply_section(reader, key, parsed, values)
    return FileConfig(**values)


def _apply_section(
    reader: _Reader, section: str, parsed: dict[str, Any], values: dict[str, Any]
) -> None:
    if section == "server":
        for name, value in parsed.items():
            values[name] = value
        if ("tls_cert" in parsed) != ("tls_key" in parsed):
            raise reader.fail("server.tls_cert", "tls_cert and tls_key go together")
    elif section == "auth":
        for name in ("ingest_token", "read_token"):
            if name in parsed and f"{name}_file" in parsed:
                raise reader.fail(f"auth.{name}", f"give {name} or {name}_file, not both")
            if name in parsed:
                values[name] = parsed[name]
            elif f"{name}_file" in parsed:
                values[name] = reader.secret_file(parsed[f"{name}_file"], f"auth.{name}_file")
        if values.get("ingest_token") is not None and values.get("ingest_token") == values.get(
            "read_token"
        ):
            raise reader.fail("auth.read_token", "must differ from the ingest token")
    elif section == "limits":
        limit_fields = {
            name: parsed[name]
            for name in ("max_attributes", "max_value_bytes", "max_depth")
            if name in parsed
        }
        values["limits"] = Limits(**limit_fields)
        for name in ("max_queue_mib", "max_http_body_mib", "max_grpc_message_mib"):
            if name in parsed:
                values[name] = parsed[name]
        if "write_timeout" in parsed:
            values["write_timeout_seconds"] = parsed["write_timeout"]
        if "query_timeout" in parsed:
            values["query_timeout_seconds"] = parsed["query_timeout"]
        for name in (
            "max_diagram_traces",
            "db_memory_mib",
            "db_checkpoint_mib",
            "decoder_niceness",
            "ingest_niceness",
            "keep_trace_shapes",
        ):
            if name in parsed:
                values[name] = parsed[name]
        if parsed.get("max_grpc_message_mib", 0) >= 2048:
            raise reader.fail("limits.max_grpc_message_mib", "must be below 2048 (2 GiB)")
    elif section == "redaction":
        if "hash_key" in parsed and "hash_key_file" in parsed:
            raise reader.fail("redaction.hash_key", "give hash_key or hash_key_file, not both")
        key = parsed.get("hash_key")
        if "hash_key_file" in parsed:
            key = reader.secret_file(parsed["hash_key_file"], "redaction.hash_key_file")
        if key is not None and len(key.encode()) < MIN_HASH_KEY_BYTES:
            raise reader.fail(
                "redaction.hash_key",
                f"must be at least {MIN_HASH_KEY_BYTES} bytes long (value not shown)",
            )
        values["hash_key"] = key.encode() if key is not None else b""
        values["rules"] = _rules(reader, parsed.get("rules"), key is not None)
    elif section == "retention":
        values["retention"] = RetentionPolicy(
            max_age_seconds=parsed.get("max_age"),
            max_size_bytes=parsed.get("max_size"),
            interval_seconds=parsed.get("interval", 10.0),
        )


def _rules(reader: _Reader, raw: object, has_key: bool) -> tuple[RedactionRule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise reader.fail("redaction.rules", f"expected a list of rules, got {type(raw).__name__}")
    rules: list[RedactionRule] = []
    names: set[str] = set()
    for index, item in enumerate(raw):
        where = f"redaction.rules[{index}]"
        rule = reader.mapping(item, where)
        for rule_key in rule:
            if rule_key not in _RULE_KEYS:
                raise reader.fail(f"{where}.{rule_key}", _unknown(rule_key, _RULE_KEYS))
        try:
            keys = _string_list(rule.get("keys"))
        except ValueError as exc:
            raise reader.fail(f"{where}.keys", f"give key patterns: {exc}") from None
        action = rule.get("action")
        if action not in ACTIONS:
            raise reader.fail(f"{where}.action", f"must be one of {', '.join(ACTIONS)}")
        if action == "hash" and not has_key:
            raise reader.fail(f"{where}.action", "hash needs redaction.hash_key (or hash_key_file)")
        keep_last = rule.get("keep_last", 0)
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0:
            raise reader.fail(f"{where}.keep_last", f"expected an integer >= 0, got {keep_last!r}")
        if keep_last and action != "mask":
            raise reader.fail(f"{where}.keep_last", "only a mask rule keeps characters")
        name = rule.get("name", keys[0])
        if not isinstance(name, str) or not name:
            raise reader.fail(f"{where}.name", f"expected a non-empty string, got {name!r}")
        if ":" in name:
            raise reader.fail(f"{where}.name", f"{name!r}: a rule name cannot contain ':'")
        if name in names:
            raise reader.fail(f"{where}.name", f"{name!r} is used by an earlier rule")
        names.add(name)
        rules.append(RedactionRule(name=name, keys=keys, action=action, keep_last=keep_last))
    return tuple(rules)


def config_path(flag: str | None) -> str | None:
    """The configuration file to read: ``--config``, else env ``SEQTRACE_CONFIG``."""
    return flag or os.environ.get("SEQTRACE_CONFIG") or None
