"""analyzer.escaping: the one module that makes attacker-controlled text safe per output.

Each rule is pinned with hand-written hostile strings, and property tests check what must
hold for any text: one line, nothing outside the safe set, and the escape decodes back to
exactly the one-line text (so nothing is lost, and nothing is interpreted).
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from analyzer.escaping import (
    MERMAID_KEYWORDS,
    PLANTUML_KEYWORDS,
    loose_name,
    markdown_cell,
    markdown_escape,
    markdown_literal,
    mermaid_text,
    one_line,
    plantuml_text,
    safe_aliases,
    shorten,
    terminal_text,
    xml_text,
)

HOSTILE = (
    "<img src=x onerror=alert(1)>",
    "a | b\n| c | d |",
    "[click](javascript:alert(1)) ![i](http://x/y.png)",
    "**bold** _em_ `code` ~~gone~~ $x^2$ # heading",
    "%%{init: {'theme': 'dark'}}%%",
    "end; participant x as y",
    "@enduml\n!include /etc/passwd\n%getenv(HOME)",
    "\x1b[2J\x1b[31mred\u202egnp.exe\u200b",
    "lone \ud800 surrogate \ufffe non-character",
    "tab\there\r\nCRLF\u2028LS\u2029PS",
    "```\nfence\n```",
    "&amp; &lt; &#35; #35; #lt;",
)
#: Any text at all, lone surrogates included (JSON can carry them).
ANY_TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF))


def _is_one_printable_line(text: str) -> bool:
    return (
        text == text.strip()
        and all(c.isprintable() or c in " \ufffd" or not c.isspace() for c in text)
        and not re.search(r"[\x00-\x1f\x7f\u2028\u2029\u200b\u202e]", text)
    )


# --------------------------------------------------------------------------- one line


def test_one_line_by_hand() -> None:
    assert one_line("  GET\t/a \n\n /b  ") == "GET /a /b"
    assert one_line("a\u202eb\u200bc\x1bd") == "abcd"  # bidi override, zero width, ESC
    assert one_line("x\ud800y\ufffez") == "x\ufffdy\ufffdz"
    assert one_line(42) == "42"
    assert one_line("plain") == "plain"


@given(ANY_TEXT)
def test_one_line_is_one_printable_line(text: str) -> None:
    line = one_line(text)
    assert _is_one_printable_line(line)
    assert "  " not in line
    assert one_line(line) == line  # idempotent


def test_terminal_text_shows_controls_as_escapes() -> None:
    assert terminal_text("a\nb\tc\x1b\u200b\ud800") == "a\\nb\\tc\\x1b\\u200b\\ud800"
    assert terminal_text("\U000e0001 tag") == "\\U000e0001 tag"
    assert terminal_text(None) == ""
    assert terminal_text("café ✓") == "café ✓"


@given(ANY_TEXT)
def test_terminal_text_keeps_every_visible_character(text: str) -> None:
    shown = terminal_text(text)
    assert "\n" not in shown and "\x1b" not in shown and "\u202e" not in shown
    assert all(c in shown for c in text if c.isprintable())


def test_shorten() -> None:
    assert shorten("abcdef", 6) == "abcdef"
    assert shorten("abc   def", 5) == "abc…"
    assert len(shorten("x" * 100, 10)) == 10


# --------------------------------------------------------------------------- identifiers


def test_safe_aliases_are_identifiers_never_keywords_and_distinct() -> None:
    ids = ["end", "End", "9lives", "a-b", "a_b", "", "<script>", "über", "loop"]
    aliases = safe_aliases(ids, MERMAID_KEYWORDS)
    assert aliases == {
        "end": "p_end",
        "End": "p_End_2",
        "9lives": "p_9lives",
        "a-b": "a_b",
        "a_b": "a_b_2",
        "": "p",
        "<script>": "script",
        "über": "ber",
        "loop": "p_loop",
    }


@given(st.lists(ANY_TEXT, unique=True, max_size=12))
def test_safe_aliases_property(ids: list[str]) -> None:
    for reserved in (MERMAID_KEYWORDS, PLANTUML_KEYWORDS):
        aliases = safe_aliases(ids, reserved)
        values = [a.lower() for a in aliases.values()]
        assert len(set(values)) == len(ids)
        for alias in aliases.values():
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", alias)
            assert alias.lower() not in reserved


def test_loose_name() -> None:
    assert loose_name("  Checkout-Service ") == "checkout_service"


# --------------------------------------------------------------------------- diagrams


def _decode_mermaid(text: str) -> str:
    return re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), text)


def test_mermaid_text_by_hand() -> None:
    assert mermaid_text("GET /a?b=1") == "GET /a?b=1"
    assert mermaid_text("x;y%%z") == "x#59;y#37;#37;z"
    assert mermaid_text("a: b, c") == "a: b, c"
    assert mermaid_text("a: b, c", participant=True) == "a#58; b#44; c"
    assert mermaid_text("<b>`x`</b>") == "#60;b#62;#96;x#96;#60;/b#62;"


@given(ANY_TEXT, st.booleans())
def test_mermaid_text_codes_everything_outside_the_safe_set(text: str, participant: bool) -> None:
    escaped = mermaid_text(text, participant=participant)
    bare = re.sub(r"#\d+;", "", escaped)
    assert not set(bare) & set(";%<>`\"'#&{}[]|@\n\r")
    if participant:
        assert not set(bare) & set(",:")
    assert _decode_mermaid(escaped) == one_line(text)


def test_plantuml_text_by_hand() -> None:
    assert plantuml_text("GET /a") == "GET <U+002F>a"
    assert plantuml_text('"**x**"') == "<U+0022><U+002A><U+002A>x<U+002A><U+002A><U+0022>"
    assert plantuml_text("Zoë 東京") == "Zoë 東京"


@given(ANY_TEXT)
def test_plantuml_text_round_trips(text: str) -> None:
    escaped = plantuml_text(text)
    bare = re.sub(r"<U\+[0-9A-F]{4,6}>", "", escaped)
    assert not set(bare) & set("\"'!%@/*[]<>\\~$#&\n")
    decoded = re.sub(r"<U\+([0-9A-F]{4,6})>", lambda m: chr(int(m.group(1), 16)), escaped)
    assert decoded == one_line(text)


def test_xml_text_by_hand() -> None:
    assert xml_text("<a href='x'>&\"</a>") == "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
    assert xml_text("a\x00b\ud800c\uffff") == "a\ufffdb\ufffdc\ufffd"
    assert xml_text("line\nbreak\ttab") == "line\nbreak\ttab"  # XML allows these


@given(ANY_TEXT)
def test_xml_text_is_well_formed_as_data_and_attribute(text: str) -> None:
    escaped = xml_text(text)
    element = ET.fromstring(f'<t a="{escaped}">{escaped}</t>')
    assert element.text is None or "<" not in escaped


# --------------------------------------------------------------------------- Markdown


def test_markdown_cell_by_hand() -> None:
    assert markdown_cell("a | b\nc") == "a \\| b c"
    assert markdown_cell("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert\\(1\\)&gt;"
    assert markdown_cell("[x](javascript:y)") == "\\[x\\]\\(javascript:y\\)"
    assert markdown_cell("**b** `c` $m$ ~s~ #h") == "\\*\\*b\\*\\* \\`c\\` \\$m\\$ \\~s\\~ \\#h"
    assert markdown_cell("a & b") == "a &amp; b"
    assert markdown_cell("GET /api/orders-1.2: ok") == "GET /api/orders-1.2: ok"


def test_markdown_escape_keeps_visible_escapes_visible() -> None:
    assert markdown_escape(terminal_text("a\nb")) == "a\\\\nb"


@given(ANY_TEXT)
def test_markdown_cell_stays_in_its_cell_and_decodes_back(text: str) -> None:
    cell = markdown_cell(text)
    assert "\n" not in cell and "\r" not in cell
    assert not re.search(r"(?<!\\)[|`*_\[\]<>]", cell.replace("\\\\", ""))
    unescaped = html.unescape(re.sub(r"\\(.)", r"\1", cell))
    assert unescaped == one_line(text)


def test_markdown_literal_for_streamlit() -> None:
    assert markdown_literal("**x** <b>") == "\\*\\*x\\*\\* \\<b\\>"
    assert markdown_literal(":red[x]") == "\\:red\\[x\\]"
    assert markdown_literal("1. item\n- two") == "1\\. item\n\\- two"
    assert markdown_literal("plain words") == "plain words"


def test_every_hostile_string_is_safe_in_every_format() -> None:
    for text in HOSTILE:
        for escaped in (
            one_line(text),
            mermaid_text(text),
            plantuml_text(text),
            markdown_cell(text),
            terminal_text(text),
        ):
            assert "\n" not in escaped and "\x1b" not in escaped and "\u202e" not in escaped
        assert "<" not in markdown_cell(text) and "<img" not in mermaid_text(text)
        assert "!include" not in plantuml_text(text) and "%%" not in mermaid_text(text)
        ET.fromstring(f"<t>{xml_text(text)}</t>")
