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

import json
import re
from collections.abc import Iterable

from rich.console import Console
from rich.segment import Segment
from rich.text import Text

__all__ = ["UNSAFE", "SafeConsole", "clip", "literal", "shown"]

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
    shown as ``\\x0a`` (names, ids, table cells and one-line errors stay one line). A tab
    stays a tab in multiline text (it moves the cursor but cannot command the terminal);
    in one-line values it is shown as ``\\x09``, so an id with a tab does not look like one
    with spaces.
    """
    text = value if isinstance(value, str) else str(value)
    if multiline:
        return "\n".join(UNSAFE.sub(_escape, line) for line in text.split("\n"))
    return UNSAFE.sub(_escape, text).replace("\t", "\\x09")


def literal(value: object, *, multiline: bool = False, style: str = "") -> Text:
    """A Rich ``Text`` of ``shown(value)``: no markup interpreted, nothing unsafe drawn."""
    return Text(shown(value, multiline=multiline), style=style)


def clip(value: object, limit: int = 200) -> str:
    """``shown(value)`` cut to about ``limit`` characters, saying how much was left out.

    Only the part kept is escaped, so clipping a 50 MB value costs no more than a short one.
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        short = shown(text)
        if len(short) <= limit:
            return short
    kept = shown(text[:limit])[:limit]
    return f"{kept}… ({len(text) - limit:,} more characters)"


class SafeConsole(Console):
    """A Rich console that escapes whatever unsafe character is left in what it writes.

    Callers still pass data through ``literal``/``shown`` (so tables measure the escaped
    width); this is the net under them: a text segment never carries a control character
    to the terminal. Rich's own control segments (cursor moves of a progress bar) and the
    styles it renders pass unchanged.
    """

    def _render_buffer(self, buffer: Iterable[Segment]) -> str:
        return super()._render_buffer(
            segment
            if segment.control or not UNSAFE.search(segment.text)
            else Segment(shown(segment.text, multiline=True), segment.style, segment.control)
            for segment in buffer
        )

    def print_json(  # type: ignore[override]
        self,
        json_text: str | None = None,
        *,
        data: object = None,
        indent: int | str | None = 2,
        **_ignored: object,
    ) -> None:
        """JSON exactly as data, every non-ASCII character as a JSON escape: what reaches the
        terminal is printable ASCII, and a JSON parser reads back the very same values."""
        value = json.loads(json_text) if json_text is not None else data
        self.print(
            json.dumps(value, indent=indent, ensure_ascii=True),
            markup=False,
            highlight=False,
            emoji=False,
            soft_wrap=True,
        )
