"""The one sanitiser for everything that reaches a terminal.

Data (message texts, ids, annotator names, codebook texts, file names, error messages that
quote input) may carry bytes a terminal obeys: C0 controls (ESC starts every CSI/OSC
sequence), DEL, C1 controls (U+009B is a one-byte CSI), bidi embeddings, overrides and
isolates (U+202A–U+202E, U+2066–U+2069, which reorder what is shown), and zero-width
characters (which hide text). Each is shown as a visible escape (``\\x1b``, ``\\u202e``),
so what is on screen is what is in the data. Rich markup is never interpreted: ``literal``
returns a ``rich.text.Text``, which Rich and Textual draw as plain characters.

JSON output does not go through here: it is data, escaped by JSON itself.
"""

from __future__ import annotations

import re

from rich.text import Text

__all__ = ["UNSAFE", "clip", "literal", "shown"]

# C0 (but \n and \t, handled below), DEL, C1; bidi marks, embeddings, overrides, isolates;
# zero-width and invisible formatting characters; line/paragraph separators; lone surrogates
# (which cannot even be encoded); the BOM; Unicode tag characters (invisible text).
UNSAFE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f"
    "\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000e0000-\U000e007f]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def shown(value: object, *, multiline: bool = False) -> str:
    """``value`` as a string that is safe to print: every unsafe character made visible.

    With ``multiline`` a newline stays a line break (a message's paragraphs); otherwise it is
    shown as ``\\x0a`` (names, ids, table cells and one-line errors stay one line). A tab is
    kept: it moves the cursor but cannot command the terminal.
    """
    text = value if isinstance(value, str) else str(value)
    if multiline:
        return "\n".join(UNSAFE.sub(_escape, line) for line in text.split("\n"))
    return UNSAFE.sub(_escape, text)


def literal(value: object, *, multiline: bool = False, style: str = "") -> Text:
    """A Rich ``Text`` of ``shown(value)``: no markup interpreted, nothing unsafe drawn."""
    return Text(shown(value, multiline=multiline), style=style)


def clip(value: object, limit: int = 200) -> str:
    """``shown(value)`` cut to about ``limit`` characters, saying how much was left out."""
    text = shown(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"
