"""Text that attackers control, made safe for each output: the one place for these rules.

Span names, attribute values, status messages and service names come from the traced
services (anyone who can send OTLP), so they may hold newlines, controls, bidi overrides,
lone surrogates, Markdown, HTML or diagram syntax. Every renderer turns them into text of
its own format with one of these functions, and nothing else:

==========================  ================================================================
:func:`one_line`            one printable line (labels; the base of every other rule)
:func:`terminal_text`       one line with controls shown as escapes (CLI tables, messages)
:func:`shorten`             at most N characters, an ellipsis when cut
:func:`safe_aliases`        ``[A-Za-z0-9_]`` identifiers that are never a keyword
:func:`mermaid_text`        Mermaid label text: a safe set literal, the rest ``#NNN;``
:func:`plantuml_text`       PlantUML label text: letters and digits literal, the rest ``<U+..>``
:func:`xml_text`            SVG/XML character data and quoted attribute values
:func:`markdown_cell`       a Markdown table cell, heading or list item, rendered literally
:func:`markdown_escape`     the same on text that is already one line (e.g. terminal_text)
:func:`markdown_literal`    a Streamlit Markdown element (st.error, st.caption...)
==========================  ================================================================

It lives in the analyzer because the analyzer renders every report and diagram, and the UI
(the only other renderer) stands on the analyzer; nothing here imports anything of ours.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = [
    "ELLIPSIS",
    "MERMAID_KEYWORDS",
    "PLANTUML_KEYWORDS",
    "loose_name",
    "markdown_cell",
    "markdown_escape",
    "markdown_literal",
    "mermaid_text",
    "one_line",
    "plantuml_text",
    "safe_aliases",
    "shorten",
    "terminal_text",
    "xml_text",
]

ELLIPSIS: Final = "…"

# --------------------------------------------------------------------------- one line

_WHITESPACE: Final = re.compile(r"\s+")
# Categories that never belong in a one-line label: controls, invisible format characters
# (bidi overrides can make a label read differently from what it says), separators.
_DROPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})
_REPLACEMENT: Final = "\ufffd"


def _printable(char: str) -> str:
    category = unicodedata.category(char)
    if category == "Cs" or char in ("\ufffe", "\uffff"):
        return _REPLACEMENT  # cannot be encoded (surrogates) or are not characters
    if category in _DROPPED_CATEGORIES:
        return ""
    return char


def one_line(value: object) -> str:
    """The text as one printable line: whitespace runs become one space, controls and
    format characters vanish, lone surrogates and non-characters become U+FFFD."""
    text = str(value)
    if text.isprintable():  # the common case; no newline, control or format character
        return _WHITESPACE.sub(" ", text).strip() if "  " in text else text.strip()
    # Whitespace (newlines and tabs are controls too) becomes a space first; a dropped
    # character between two spaces must not leave two.
    text = "".join(_printable(char) for char in _WHITESPACE.sub(" ", text))
    return _WHITESPACE.sub(" ", text).strip() if "  " in text else text.strip()


_TERMINAL_HIDDEN: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_NAMED_ESCAPES: Final = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def terminal_text(value: object) -> str:
    """One printable line in which control, format and separator characters are shown as
    escapes (``\\n``, ``\\x1b``, ``\\u202e``) instead of dropped: ANSI sequences or
    right-to-left overrides cannot rewrite the terminal or misalign a table, and the
    reader still sees that they were there. ``None`` is the empty string."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    out: list[str] = []
    for char in text:
        if unicodedata.category(char) not in _TERMINAL_HIDDEN:
            out.append(char)
            continue
        code = ord(char)
        if char in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[char])
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS


# --------------------------------------------------------------------------- identifiers

_ALIAS_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_]+")

#: Mermaid sequenceDiagram keywords (and participant shapes) an alias must not be,
#: compared case-insensitively.
MERMAID_KEYWORDS: Final = frozenset(
    {
        "sequencediagram", "participant", "actor", "create", "destroy", "as", "box",
        "loop", "rect", "opt", "alt", "else", "par", "par_over", "and", "critical",
        "option", "break", "end", "left", "right", "of", "over", "note", "links", "link",
        "properties", "details", "activate", "deactivate", "title", "autonumber", "off",
        "acctitle", "accdescr", "database", "queue", "boundary", "control", "entity",
        "collections", "x",
    }
)  # fmt: skip


#: PlantUML sequence-diagram keywords an alias must not be (case-insensitive).
PLANTUML_KEYWORDS: Final = frozenset(
    {
        "participant", "actor", "boundary", "control", "entity", "database", "collections",
        "queue", "as", "loop", "par", "alt", "else", "opt", "group", "break", "critical",
        "end", "note", "ref", "over", "of", "left", "right", "activate", "deactivate",
        "destroy", "create", "return", "autonumber", "box", "title", "legend", "hide",
        "show", "skinparam", "newpage", "also", "header", "footer", "caption", "delay",
    }
)  # fmt: skip


def safe_aliases(ids: list[str], reserved: frozenset[str]) -> dict[str, str]:
    """Distinct identifiers made of ``[A-Za-z0-9_]`` for participant ids.

    Names that are keywords of the target language (``reserved``, lower case) or start
    with a digit get a ``p_`` prefix; clashes (case-insensitive) get a numeric suffix,
    first come first served.
    """
    aliases: dict[str, str] = {}
    taken: set[str] = set()
    for participant_id in ids:
        base = _ALIAS_UNSAFE.sub("_", participant_id).strip("_") or "p"
        if base.lower() in reserved or base[0].isdigit():
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


# --------------------------------------------------------------------------- diagrams

_MERMAID_SAFE: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-/()+*?!=^~"
)
# A participant's label ends at ``:``, ``,`` or ``@``; message and note text does not.
_MERMAID_SAFE_IN_TEXT: Final = _MERMAID_SAFE | frozenset(",:")


def mermaid_text(text: str, *, participant: bool = False) -> str:
    """One line of Mermaid label text in which only safe characters stay literal; every
    other one is an entity code (``#35;``), so no text can end a statement, open a
    comment (``%%``), close a Markdown fence or inject HTML."""
    safe = _MERMAID_SAFE if participant else _MERMAID_SAFE_IN_TEXT
    return "".join(
        char if char in safe or (ord(char) > 127 and char.isprintable()) else f"#{ord(char)};"
        for char in one_line(text)
    )


_PLANTUML_SAFE: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:()?+"
)


def plantuml_text(text: str) -> str:
    """One line of PlantUML label text: letters, digits and a few marks literal, the rest
    as PlantUML's ``<U+XXXX>`` (no quote, creole markup, ``\\n`` or preprocessor line)."""
    return "".join(
        char
        if char in _PLANTUML_SAFE or (ord(char) > 127 and char.isalnum())
        else f"<U+{ord(char):04X}>"
        for char in one_line(text)
    )


# Characters XML 1.0 does not allow, even escaped (controls, surrogates, U+FFFE/U+FFFF).
_XML_FORBIDDEN: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_XML_ESCAPES: Final = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
)


def xml_text(text: str) -> str:
    """Text safe as XML character data and inside a quoted attribute value (SVG)."""
    return _XML_FORBIDDEN.sub(_REPLACEMENT, text).translate(_XML_ESCAPES)


# --------------------------------------------------------------------------- Markdown

_MARKDOWN_HTML: Final = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# What can start Markdown (or GitHub's HTML, math and strikethrough) inline: emphasis,
# code spans, links and images, headings, cell separators. A backslash escapes each in
# CommonMark; other punctuation stays, so the text reads as it was.
_MARKDOWN_MARKERS: Final = frozenset("\\`*_[]{}()#+!|~$")


def markdown_escape(text: str) -> str:
    """``text`` (already one line) rendered literally in Markdown: HTML's ``& < >`` as
    entities, inline markers backslash-escaped, so it cannot end a table cell or row nor
    become a link, image, emphasis, math or raw HTML."""
    out: list[str] = []
    for char in text:
        if char in _MARKDOWN_HTML:
            out.append(_MARKDOWN_HTML[char])
        elif char in _MARKDOWN_MARKERS:
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def markdown_cell(value: object) -> str:
    """Text that stays inside one Markdown table cell (or heading, or list item) and
    renders literally."""
    return markdown_escape(one_line(value))


# Streamlit's Markdown elements also read line starts (``-``, ``1.``, ``#``), emoji and
# icon short codes (``:smile:``) and HTML; a backslash escapes each of them.
_STREAMLIT_SPECIAL: Final = frozenset("\\`*_{}[]()<>#+-.!|~$&:")


def markdown_literal(text: object) -> str:
    """``text`` for a Streamlit Markdown element (st.error, st.caption...): every Markdown
    and HTML character backslash-escaped so it shows literally; line breaks are kept."""
    return "".join("\\" + char if char in _STREAMLIT_SPECIAL else char for char in str(text))
