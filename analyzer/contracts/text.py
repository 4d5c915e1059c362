"""Text rules of contracts: label normalisation, Mermaid entity codes, contract labels.

Span names are attacker-controlled, so every output escapes for its own format, with the
rules of :mod:`analyzer.escaping`:

* contract files (:func:`contract_label`) stay readable for people: only what would end or
  change a Mermaid statement is written as an entity code (``#``, ``;``, ``%%``, ``<``,
  ``>``), so ``GET /api/orders/{orderId}`` stays as it is;
* the diff's Mermaid (:func:`analyzer.escaping.mermaid_text`) keeps a small safe set
  literal and codes everything else, as the diagram renderer does;
* Markdown cells (:func:`analyzer.escaping.markdown_cell`) and terminal text
  (:func:`analyzer.escaping.one_line`) are one line with no control characters.
"""

from __future__ import annotations

import html
import re
from typing import Final

from analyzer.escaping import one_line

_ENTITY: Final = re.compile(r"#(\d{1,7}|[A-Za-z][A-Za-z0-9]{1,31});")
#: The multiplication sign before the count of a collapsed run of calls (diagram JSON).
TIMES: Final = "\u00d7"


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
