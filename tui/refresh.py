"""The app's own encoder refresh: after a round whose labels call for one
(learning.tuned.encoder_refresh_due), `techne refresh-encoder` runs in a child process at
low CPU priority. The expert labels on: keypresses never wait on it, and rounds switch to
the new encoder only once it has encoded the pool. Quitting the app stops it (a later round
starts it again; nothing half-made is ever used)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

from store import Workspace


@dataclass(frozen=True)
class RefreshReport:
    """What a finished refresh made: the encoder's name, its labels, seconds per step."""

    encoder: str
    labels: int
    seconds: dict[str, float]


class RefreshFailed(RuntimeError):
    """The child process ended with an error (its last line of stderr)."""


class BackgroundRefresh:
    """At most one refresh child process per app."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.stopped = False
        """Set when the app stopped the child (quitting): its ending is no failure."""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, workspace: Workspace) -> subprocess.Popen[bytes]:
        """Start the child (fast: a fork and exec); `wait` in a worker thread."""
        env = {
            **os.environ,
            "TECHNE_WORKSPACE": str(workspace.root),
            "TECHNE_DB_URL": workspace.db_url,  # not on the command line, where ps shows it
        }
        self.stopped = False
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tui.cli", "refresh-encoder", "--json", "--low-priority"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=workspace.root,
        )
        return self.process

    def wait(self, process: subprocess.Popen[bytes]) -> RefreshReport | None:
        """The finished refresh's report; None when the app stopped it."""
        out, err = process.communicate()
        if self.stopped:
            return None
        if process.returncode != 0:
            lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
            raise RefreshFailed(lines[-1] if lines else f"exit status {process.returncode}")
        report = json.loads(out)
        return RefreshReport(report["encoder"], int(report["labels"]), report["seconds"])

    def stop(self, timeout_s: float = 5.0) -> None:
        """End a running child (quitting the app): terminate, then kill."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        self.stopped = True
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
