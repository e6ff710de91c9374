"""End to end in a real terminal: tmux runs `techne annotate`, keys label five messages, the
process is killed with SIGKILL, every label is in the database, a restart resumes; hostile
message texts and ids reach the terminal only as visible escapes.

Every tmux command goes to a tmux server of the test's own (`tmux -L <name>`, its socket in a
private folder); the test ends that server and no other, so running the tests inside a
tmux session leaves the user's sessions alone."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from store import Repository, load_workspace
from tui.cli import main

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

TECHNE = str(Path(sys.executable).with_name("techne"))
ID_LINE = re.compile(r"· id (\S+)")


SOCKET = f"techne-test-{os.getpid()}"
"""This test's own tmux server (`tmux -L`); never the caller's."""


def tmux(*args: str, check: bool = True) -> str:
    command = ["tmux", "-L", SOCKET, *args]
    return subprocess.run(command, check=check, capture_output=True, text=True).stdout


@contextmanager
def private_tmux(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A private tmux server: its socket in a fresh folder, $TMUX unset so nothing reaches
    the server the tests may be running in; only the private server is killed at the end."""
    sockets = Path(tempfile.mkdtemp(prefix="tmx", dir="/tmp"))  # unix sockets: ~100 bytes
    with monkeypatch.context() as patch:
        patch.setenv("TMUX_TMPDIR", str(sockets))
        patch.delenv("TMUX", raising=False)
        patch.delenv("TMUX_PANE", raising=False)
        for fixed_size in ("COLUMNS", "LINES"):  # the app must size itself from the terminal
            patch.delenv(fixed_size, raising=False)
        try:
            yield
        finally:
            tmux("kill-server", check=False)  # -L SOCKET: the server this test started
            shutil.rmtree(sockets, ignore_errors=True)


@pytest.fixture
def own_tmux(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with private_tmux(monkeypatch):
        yield


def test_a_users_tmux_server_survives(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as if inside a user's tmux ($TMUX set to their server): the test's own server is
    used and ended, the user's server and session are untouched."""
    user_socket = Path("/tmp") / f"tmx-user-{os.getpid()}"
    user = ["tmux", "-S", str(user_socket)]
    subprocess.run([*user, "new-session", "-d", "-s", "work", "sleep 600"], check=True)
    try:
        pid = subprocess.run(
            [*user, "display-message", "-p", "#{pid}"], capture_output=True, text=True
        ).stdout.strip()
        monkeypatch.setenv("TMUX", f"{user_socket},{pid},0")
        with private_tmux(monkeypatch):
            tmux("new-session", "-d", "-s", "mine", "sleep 600")
            assert "mine" in tmux("list-sessions", "-F", "#{session_name}")
            listed = subprocess.run(
                [*user, "list-sessions", "-F", "#{session_name}"], capture_output=True, text=True
            ).stdout
            assert "mine" not in listed
        alive = subprocess.run(
            [*user, "list-sessions", "-F", "#{session_name}"], capture_output=True, text=True
        )
        assert alive.returncode == 0 and alive.stdout.split() == ["work"]
        assert tmux("list-sessions", check=False) == ""  # ours is gone
    finally:
        subprocess.run([*user, "kill-server"], capture_output=True)
        user_socket.unlink(missing_ok=True)


def screen(session: str) -> str:
    return tmux("capture-pane", "-p", "-J", "-t", session)  # -J: wrapped lines joined


def shown_id(session: str) -> str | None:
    match = ID_LINE.search(screen(session))
    return match.group(1) if match else None


def wait_for(predicate, timeout: float = 30.0, session: str | None = None) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    shown = screen(session) if session else ""
    raise AssertionError(f"the terminal did not show what was expected in time:\n{shown}")


def start(session: str, workspace: Path, annotator: str = "e2e") -> int:
    """Start the app in a detached tmux session; returns the app's pid."""
    # env -u: a COLUMNS/LINES inherited from the test runner would pin the app at 80x24.
    command = (
        f"exec env -u COLUMNS -u LINES {TECHNE} -w {workspace} annotate --annotator {annotator}"
    )
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "36", command)
    tmux("resize-window", "-t", session, "-x", "120", "-y", "36")
    wait_for(lambda: shown_id(session) is not None, session=session)
    return int(tmux("list-panes", "-t", session, "-F", "#{pane_pid}").strip())


@pytest.mark.usefixtures("own_tmux")
def test_labels_survive_sigkill_and_restart_resumes(tmp_path: Path) -> None:
    """Five labels typed in tmux are all stored after SIGKILL; a restart shows the next one."""
    workspace = tmp_path / "demo"
    built = subprocess.run(
        [TECHNE, "demo", "--path", str(workspace), "--status"], capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    session = f"techne-e2e-{os.getpid()}"
    pid = start(session, workspace)
    labelled = []
    for digit in "12345":
        before = shown_id(session)
        labelled.append(before)
        tmux("send-keys", "-t", session, digit, "Enter")
        wait_for(lambda b=before: shown_id(session) not in (None, b))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0)
    tmux("kill-session", "-t", session, check=False)  # may be gone already

    ws = load_workspace(workspace)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    saved = {}
    book = repo.codebook()
    for ext in labelled:
        message = repo.message(ext)
        saved[ext] = repo.current_labels(message.id, "e2e")
    assert saved == {ext: (book.techniques[i].key,) for i, ext in enumerate(labelled)}
    expected_next = repo.message(repo.queue("e2e")[0]).external_id
    repo.close()

    start(session, workspace)
    assert shown_id(session) == expected_next
    assert shown_id(session) not in labelled


HOSTILE = [
    ("\x1b]0;PWNED-TITLE\x07Title set by a message. \x1b]2;PWNED-TOO\x1b\\", "\\x1b]0;PWNED"),
    ("\x1b[2JScreen cleared? \x1b[31mred\x1b[0m", "\\x1b[2J"),
    ("\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\ hidden link", "\\x1b]8;;"),
    ("C1 CSI \x9b2J and bidi \u202eevil\u202c, zero\u200bwidth", "\\x9b2J"),
]


@pytest.mark.usefixtures("own_tmux")
def test_hostile_text_reaches_the_terminal_escaped(tmp_path: Path) -> None:
    """Message texts and a conversation id carrying OSC title, CSI clear-screen, OSC 8 link,
    C1 CSI and bidi overrides: the pane title stays as it was and each sequence is on screen
    as visible escapes."""
    workspace = tmp_path / "ws"
    assert main(["init", str(workspace), "--codebook", "mi"]) == 0
    rows = [
        {
            "id": f"h{n}",
            "conversation": "\x1b]0;CONV-TITLE\x07c1",
            "turn": n,
            "speaker": "therapist",
            "text": text,
        }
        for n, (text, _) in enumerate(HOSTILE)
    ]
    source = tmp_path / "hostile.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    args = [
        "--speaker",
        "speaker",
        "--conversation",
        "conversation",
        "--order",
        "turn",
        "--id",
        "id",
    ]
    assert main(["-w", str(workspace), "import", str(source), *args]) == 0

    session = f"techne-hostile-{os.getpid()}"
    tmux("new-session", "-d", "-s", "probe", "-x", "120", "-y", "36", "sleep 600")
    title = tmux("display-message", "-p", "-t", "probe", "#{pane_title}").strip()
    start(session, workspace, annotator="hostile")
    seen = set()
    for _ in HOSTILE:  # walk through every message: skip shows the next one
        text = screen(session)
        seen.update(needle for _, needle in HOSTILE if needle in text)
        assert "\\x1b]0;CONV-TITLE" in text  # the conversation id, escaped, on the card
        before = shown_id(session)
        tmux("send-keys", "-t", session, "s")
        wait_for(lambda b=before: shown_id(session) != b, session=session)
    assert seen == {needle for _, needle in HOSTILE}
    assert tmux("display-message", "-p", "-t", session, "#{pane_title}").strip() == title
    assert "PWNED" not in tmux("list-windows", "-a", "-F", "#{window_name} #{pane_title}")
