"""End to end in a real terminal: tmux runs `techne annotate`, keys label five messages, the
process is killed with SIGKILL, every label is in the database, a restart resumes."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from store import Repository, load_workspace

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

TECHNE = str(Path(sys.executable).with_name("techne"))
ID_LINE = re.compile(r"· id (\S+)")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


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


def start(session: str, workspace: Path) -> int:
    """Start the app in a detached tmux session; returns the app's pid."""
    # env -u: a COLUMNS/LINES inherited from the test runner would pin the app at 80x24.
    command = f"exec env -u COLUMNS -u LINES {TECHNE} -w {workspace} annotate --annotator e2e"
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "36", command)
    tmux("resize-window", "-t", session, "-x", "120", "-y", "36")
    wait_for(lambda: shown_id(session) is not None, session=session)
    return int(tmux("list-panes", "-t", session, "-F", "#{pane_pid}").strip())


def test_labels_survive_sigkill_and_restart_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five labels typed in tmux are all stored after SIGKILL; a restart shows the next one."""
    workspace = tmp_path / "demo"
    built = subprocess.run(
        [TECHNE, "demo", "--path", str(workspace), "--status"], capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    session = f"techne-e2e-{os.getpid()}"
    # A private tmux server; its socket path must stay short (unix sockets allow ~100 bytes).
    sockets = Path(tempfile.mkdtemp(prefix="tmx", dir="/tmp"))
    monkeypatch.setenv("TMUX_TMPDIR", str(sockets))
    for fixed_size in ("COLUMNS", "LINES"):  # the app must size itself from the terminal
        monkeypatch.delenv(fixed_size, raising=False)
    try:
        pid = start(session, workspace)
        labelled = []
        for digit in "12345":
            before = shown_id(session)
            labelled.append(before)
            tmux("send-keys", "-t", session, digit, "Enter")
            wait_for(lambda b=before: shown_id(session) not in (None, b))
        os.kill(pid, signal.SIGKILL)
        wait_for(
            lambda: subprocess.run(["kill", "-0", str(pid)], capture_output=True).returncode != 0
        )
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)  # may be gone

        ws = load_workspace(workspace)
        repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
        saved = {}
        book = repo.codebook()
        for ext in labelled:
            message = repo.find_message(ext)
            saved[ext] = repo.current_labels(message.id, "e2e")
        assert saved == {ext: (book.techniques[i].key,) for i, ext in enumerate(labelled)}
        expected_next = repo.message(repo.queue("e2e")[0]).external_id
        repo.close()

        start(session, workspace)
        assert shown_id(session) == expected_next
        assert shown_id(session) not in labelled
    finally:
        subprocess.run(["tmux", "kill-server"], capture_output=True)
        shutil.rmtree(sockets, ignore_errors=True)
