"""Text rules of contracts: label normalisation, Mermaid entity codes, escaping per output.

Span names are attacker-controlled, so every output escapes for its own format:

* contract files (:func:`contract_label`) stay readable for people: only what would end or
  change a Mermaid statement is written as an entity code (``#``, ``;``, ``%%``, ``<``,
  ``>``), so ``GET /api/orders/{orderId}`` stays as it is;
* the diff's Mermaid (:func:`mermaid_text`) keeps a small safe set literal and codes
  everything else, as the diagram renderer does;
* Markdown cells (:func:`md_cell`) and terminal text (:func:`one_line`) are one line with
  no control characters.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Final

_WHITESPACE: Final = re.compile(r"\s+")
_DROPPED: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_ENTITY: Final = re.compile(r"#(\d{1,7}|[A-Za-z][A-Za-z0-9]{1,31});")
_ALIAS_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_]+")
#: The multiplication sign before the count of a collapsed run of calls (diagram JSON).
TIMES: Final = "\u00d7"

#: Mermaid sequenceDiagram keywords an alias must not be (case-insensitive).
KEYWORDS: Final = frozenset(
    {
        "sequencediagram", "participant", "actor", "create", "destroy", "as", "box",
        "loop", "rect", "opt", "alt", "else", "par", "par_over", "and", "critical",
        "option", "break", "end", "left", "right", "of", "over", "note", "links", "link",
        "properties", "details", "activate", "deactivate", "title", "autonumber", "off",
        "acctitle", "accdescr", "database", "queue", "boundary", "control", "entity",
        "collections", "x",
    }
)  # fmt: skip


def one_line(value: object) -> str:
    """The text as one printable line: whitespace runs become one space, controls vanish."""
    text = _WHITESPACE.sub(" ", str(value))
    return "".join(c for c in text if unicodedata.category(c) not in _DROPPED).strip()


def normalize_label(text: str) -> str:
    """What labels are compared by: one line, whitespace runs as one space."""
    return one_line(text)


def decode_entities(text: str) -> str:
    """Mermaid entity codes (``#35;``, ``#lt;``) back to characters; unknown ones stay."""

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code.isdigit():
            number = int(code)
            if 0 < number <= 0x10FFFF and not 0xD800 <= number <= 0xDFFF:
                return chr(number)
            return match.group(0)
        decoded = html.unescape(f"&{code};")
        return decoded if decoded != f"&{code};" else match.group(0)

    return _ENTITY.sub(replace, text)


def contract_label(text: str) -> str:
    """A label as written into a contract file: readable, and one Mermaid statement."""
    out: list[str] = []
    line = one_line(text)
    for index, char in enumerate(line):
        doubled_percent = char == "%" and (
            line[index - 1 : index] == "%" or line[index + 1 : index + 2] == "%"
        )
        if char in "#;<>" or doubled_percent:
            out.append(f"#{ord(char)};")
        else:
            out.append(char)
    return "".join(out)


_SAFE: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-/()+*?!=^~,:"
)


def mermaid_text(text: str) -> str:
    """Label text for generated Mermaid: a safe set literal, everything else coded."""
    return "".join(
        c if c in _SAFE or (ord(c) > 127 and c.isprintable()) else f"#{ord(c)};"
        for c in one_line(text)
    )


def mermaid_participant_label(text: str) -> str:
    """A participant label (ends at ``:``, ``,`` or ``@`` in Mermaid, so those are coded)."""
    return "".join(
        c if (c in _SAFE and c not in ",:") or (ord(c) > 127 and c.isprintable()) else f"#{ord(c)};"
        for c in one_line(text)
    )


_MD_HTML: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MD_MARKERS: Final = frozenset("\\`*_[]{}()#+!|~")


def md_cell(value: object) -> str:
    """Text that stays inside one Markdown table cell and renders literally."""
    out: list[str] = []
    for char in one_line(value):
        if char in _MD_HTML:
            out.append(_MD_HTML[char])
        elif char in _MD_MARKERS:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def safe_aliases(ids: list[str]) -> dict[str, str]:
    """Distinct ``[A-Za-z0-9_]`` identifiers for participant ids (never a keyword)."""
    aliases: dict[str, str] = {}
    taken: set[str] = set()
    for participant_id in ids:
        base = _ALIAS_UNSAFE.sub("_", participant_id).strip("_") or "p"
        if base.lower() in KEYWORDS or base[0].isdigit():
            base = "p_" + base
        alias = base
        number = 2
        while alias.lower() in taken:
            alias = f"{base}_{number}"
            number += 1
        taken.add(alias.lower())
        aliases[participant_id] = alias
    return aliases


def loose_name(text: str) -> str:
    """The form two participant names are compared by when no exact match exists."""
    return _ALIAS_UNSAFE.sub("_", text).strip("_").lower()


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"
