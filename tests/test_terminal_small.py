"""The default SSH terminal, 80x24, in a real tmux: the turn before the message, the turn after
it and `q Quit` can be read off the screen, and q ends the app."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from store import load_workspace

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

TECHNE = str(Path(sys.executable).with_name("techne"))
ID_LINE = re.compile(r"· id (\S+)")


class Tmux:
    """A tmux server of this test's own (`-L`), never the user's or another test's."""

    def __init__(self) -> None:
        self.name = f"techne-small-{os.getpid()}"
        # Unix socket paths are short: the server's socket lives in its own /tmp folder.
        self.sockets = Path(tempfile.mkdtemp(prefix="tmx", dir="/tmp"))

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "TMUX_TMPDIR": str(self.sockets)}
        env.pop("TMUX", None)
        return subprocess.run(
            ["tmux", "-L", self.name, *args], check=check, capture_output=True, text=True, env=env
        )

    def screen(self, session: str) -> str:
        return self("capture-pane", "-p", "-t", session).stdout

    def close(self) -> None:
        self("kill-server", check=False)  # the server this test started, and only it
        shutil.rmtree(self.sockets, ignore_errors=True)


def wait_for(predicate: Callable[[], bool], what: Callable[[], str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"the terminal did not show what was expected in time:\n{what()}")


def words(text: str) -> str:
    """Whitespace collapsed: the app wraps long turns over several rows."""
    return " ".join(text.split())


def test_80x24_shows_previous_and_next_turn_and_quit(trained_demo: Path, tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    shutil.copytree(trained_demo, workspace)
    tmux = Tmux()
    session = "small"
    try:
        command = f"exec env -u COLUMNS -u LINES {TECHNE} -w {workspace} annotate --annotator tty"
        tmux("new-session", "-d", "-s", session, "-x", "80", "-y", "24", command)
        tmux("resize-window", "-t", session, "-x", "80", "-y", "24")

        def painted() -> bool:
            shown = tmux.screen(session)
            return ID_LINE.search(shown) is not None and "q Quit" in shown

        wait_for(painted, lambda: tmux.screen(session))
        shown = tmux.screen(session)
        assert len(shown.splitlines()) <= 24 and all(len(row) <= 80 for row in shown.splitlines())
        external_id = ID_LINE.search(shown).group(1)  # type: ignore[union-attr]

        repo = load_workspace(workspace).open_repository()
        message = repo.message(external_id)
        turns = repo.context(message.id, 1, 1)
        repo.close()
        previous = [t for t in turns if t.position < message.position]
        following = [t for t in turns if t.position > message.position]
        assert previous and following, "the first queued message has turns on both sides"
        screen_words = words(shown.replace("▌", " "))
        # The turn before is scrolled to its end, the turn after starts below the message.
        assert " ".join(previous[-1].text.split()[-4:]) in screen_words, shown
        assert " ".join(following[0].text.split()[:4]) in screen_words, shown
        assert "q Quit" in shown and "f1 Help" in shown

        tmux("send-keys", "-t", session, "q")
        wait_for(
            lambda: tmux("has-session", "-t", session, check=False).returncode != 0,
            lambda: tmux.screen(session),
            timeout=30,
        )
    finally:
        tmux.close()
