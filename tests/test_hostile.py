"""Hostile input, end to end: data carrying terminal escapes, Rich markup, C1 controls, bidi
overrides and zero-width characters goes through import, every CLI command and the app, and
nothing from it reaches stdout, stderr or the screen except as visible escapes; no failure
the input or the machine causes ends in a traceback. Stores on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rich.console import Console

from tui.cli import main
from tui.safe import UNSAFE, clip, shown

HOSTILE_PIECES = [
    "\x1b]0;PWNED\x07",  # OSC 0: set the window title
    "\x1b]2;PWNED\x1b\\",
    "\x1b[2J",  # clear the screen
    "\x1b[31mred\x1b[0m",
    "\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\",  # OSC 8 hidden hyperlink
    "\x9b2J",  # C1 CSI: one byte
    "\x9d0;PWNED\x9c",  # C1 OSC ... ST
    "\x85",
    "\u202e",  # right-to-left override
    "\u2066",
    "\u2069",
    "\u200b",  # zero-width space
    "\u200d",
    "\ufeff",
    "\U000e0041",  # tag character: invisible text
    "\x7f",
    "\x08",
    "\r",
    "\x07",
    "[bold red]markup[/]",
    "[link=http://evil.example]x[/link]",
    ":smile:",
    "\t",
]
CSV_SAFE_NAME = st.sampled_from(["[bold]dana[/bold]", ":smile:", "o'brien", "é lise", "[/]"])

PIECE = st.sampled_from(HOSTILE_PIECES) | st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=4
)
HOSTILE_TEXT = st.lists(PIECE, min_size=1, max_size=6).map("".join)

COLS = ["--speaker", "speaker", "--conversation", "conversation", "--order", "turn", "--id", "id"]


def assert_clean(output: str) -> None:
    """No traceback, and no unsafe character but a line break: everything else escaped."""
    assert "Traceback" not in output
    bad = UNSAFE.search(output.replace("\n", ""))
    assert bad is None, f"unsafe {bad.group()!r} reached the terminal in {output[-400:]!r}"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert_clean(captured.out)
    assert_clean(captured.err)
    return code, captured.out, captured.err


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A fresh MI workspace, its store in SQLite or PostgreSQL."""
    ws = tmp_path / "ws"
    args = ["init", str(ws), "--codebook", "mi"]
    if request.param == "postgres":
        args += ["--db", request.getfixturevalue("postgres").new_database()]
    assert main(args) == 0
    return ws


COUNTER = itertools.count()


@settings(
    max_examples=8,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example runs 10 commands
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=HOSTILE_TEXT, ident=HOSTILE_TEXT, conversation=HOSTILE_TEXT, coder=CSV_SAFE_NAME)
def test_every_command_shows_hostile_data_escaped(
    workspace: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str,
    ident: str,
    conversation: str,
    coder: str,
) -> None:
    """Import hostile texts, ids and conversation ids, then status, annotators, history,
    agreement, adjudicate --list, models list and export: human output escaped (and markup
    shown as typed), JSON output exact."""
    n = next(COUNTER)
    ext, conv = f"m{n}:{ident}:end", f"c{n}:{conversation}:end"
    body = f"say {text} end"
    row = {"id": ext, "conversation": conv, "turn": 0, "speaker": "therapist", "text": body}
    row |= {"label": "open_question", "coder": coder}
    source = write_jsonl(tmp_path / f"h{n}.jsonl", [row])
    ws = ["-w", str(workspace)]
    labels = ["--label", "label", "--annotator-column", "coder"]
    code, _, err = run(capsys, *ws, "import", str(source), *COLS, *labels)
    assert code == 0, err
    assert run(capsys, *ws, "status")[0] == 0
    code, out, _ = run(capsys, *ws, "annotators")
    assert code == 0 and coder in out  # markup shown as typed, not interpreted
    code, out, _ = run(capsys, *ws, "history", ext)
    assert code == 0 and shown(conv) in out and shown(ext) in out
    assert shown(body, multiline=True) in out or "\t" in body  # Rich expands tabs
    code, out, _ = run(capsys, *ws, "history", ext, "--json")
    assert code == 0
    found = json.loads(out)["message"]
    assert (found["text"], found["external_id"]) == (body, ext)  # JSON: exactly the data
    assert run(capsys, *ws, "agreement")[0] == 0
    assert run(capsys, *ws, "adjudicate", "--list")[0] == 0
    assert run(capsys, *ws, "models", "list")[0] == 0
    out_file = tmp_path / "gold.jsonl"
    code, _, err = run(capsys, *ws, "export", str(out_file), "--force")
    assert code == 0, err
    lines = out_file.read_text(encoding="utf-8").split("\n")  # not splitlines(): U+0085 etc.
    exported = {r["message_id"]: r for r in map(json.loads, filter(None, lines))}
    assert exported[ext]["text"] == body and exported[ext]["conversation_id"] == conv


def test_errors_quoting_hostile_input_are_escaped_and_short(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Usage errors and input errors that quote a hostile column, value or option are one
    escaped line; a 50 MB header line is not echoed whole."""
    ws = tmp_path / "ws"
    assert main(["init", str(ws), "--codebook", "mi"]) == 0
    src = write_jsonl(tmp_path / "a.jsonl", [{"text": "hello"}])
    code, _, err = run(capsys, "-w", str(ws), "import", str(src), "--text", "\x1b]0;PWNED\x07")
    assert code == 1 and "\\x1b]0;PWNED\\x07" in err
    code, _, err = run(capsys, "-w", str(ws), "export", "x.jsonl", "--split", "\x1b[2J")
    assert code == 2 and "\\x1b[2J" in err
    code, _, err = run(capsys, "-w", str(ws), "--no-such-\x9b-option")
    assert code == 2 and "\\x9b" in err
    assert err.startswith("Usage: techne") and "\nError: No such option" in err  # lines kept
    code, _, err = run(capsys, "-w", str(ws), "history", "\u202enope")
    assert code == 1 and "\\u202e" in err

    header = tmp_path / "wide.csv"
    with header.open("w", encoding="utf-8") as fh:
        fh.write("speaker," + "x" * 50_000_000 + "\n")
        fh.write("therapist,hello\n")
    code, _, err = run(capsys, "-w", str(ws), "import", str(header), "--text", "text")
    assert code == 1 and "no such column" in err
    assert len(err) < 1_500, len(err)
    assert clip("y" * 10_000).endswith("(9,800 more characters)")


def app_screen_text(app: Any) -> str:
    """Every character the app puts on the screen now (styles and cursor moves left out)."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), force_terminal=True, record=True
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text(styles=False)


HOSTILE_CODEBOOK = """\
[codebook]
key = "hostile"
name = "Hostile \\u001b]0;PWNED\\u0007 book"
version = "1"
multi_label = false

[[techniques]]
key = "question"
name = "Ask \\u001b[2J [bold]now[/bold] \\u202eevil"
hotkey = "a"
definition = "Defined \\u009b2J with \\u200bzero width and \\u001b]8;;http://x\\u001b\\\\link"
examples = ["Example \\u001b[31mred", "[link=http://evil]x[/link]"]

[[techniques]]
key = "other"
name = "Other \\u2066isolate"
hotkey = "o"
definition = "Anything else."
examples = []
"""


@pytest.mark.slow
async def test_app_shows_hostile_data_escaped(
    request: pytest.FixtureRequest, tmp_path: Path, store_url: str
) -> None:
    """The annotate screen, the codebook panel, find results, notifications and the stats
    screen with hostile message texts, conversation ids and codebook texts: nothing unsafe on
    screen, markup shown as typed."""
    from tui.app import make_app

    book = tmp_path / "hostile.toml"
    book.write_text(HOSTILE_CODEBOOK, encoding="utf-8")
    ws = tmp_path / "ws"
    assert main(["init", str(ws), "--codebook", str(book), "--db", store_url]) == 0
    rows = [
        {
            "id": f"m{n}",
            "conversation": "\x1b]0;CONV\x07[bold]c1[/bold]",
            "turn": n,
            "speaker": "therapist",
            "text": f"{piece} evil {n}",
        }
        for n, piece in enumerate(HOSTILE_PIECES)
    ]
    assert main(["-w", str(ws), "import", str(write_jsonl(tmp_path / "h.jsonl", rows)), *COLS]) == 0
    app = make_app(ws, annotator="[bold]dana[/bold]")
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            text = app_screen_text(app)
            assert_clean(text)
            assert "\\x1b]0;CONV\\x07[bold]c1[/bold]" in text  # the card's conversation id
            assert "[bold]dana[/bold]" in text  # the annotator in the top bar, as typed
            assert "Ask \\x1b[2J [bold]now" in text  # technique name (cut to the column)
            assert "\\x9b2J" in text  # the codebook panel's definition
            await pilot.press("slash", *"evil", "enter")
            await pilot.pause()
            text = app_screen_text(app)
            assert_clean(text)
            assert "messages containing 'evil'" in text
            await pilot.press("escape", "slash", *"[bold]zz", "enter")
            await pilot.pause()
            assert_clean(app_screen_text(app))
            notes = [n.message for n in app._notifications]
            assert "No message contains '[bold]zz'." in notes, notes
            await pilot.press("c")
            await pilot.pause()
            assert_clean(app_screen_text(app))
    finally:
        app.repo.close()
