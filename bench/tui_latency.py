"""Annotation latency: keypress to the next message painted, and start-up to the first
message, on a workspace of 100,000 messages. Prints JSON.

    python bench/tui_latency.py [--messages 100000] [--presses 300]

Targets (issue 4): p99 <= 30 ms per keypress; `techne annotate` to first message <= 1.5 s.
Keypresses go through Textual's Pilot on a headless 120x36 screen (save committed, next
message loaded and the screen refreshed); start-up is measured in a real terminal (tmux)
from launching the command to the message id appearing on screen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from round_bench import build_store  # noqa: E402
from textual import events  # noqa: E402

from learning.encoders import Encoder  # noqa: E402
from learning.rounds import run_round  # noqa: E402
from learning.settings import LearningSettings  # noqa: E402
from store import Repository, load_workspace  # noqa: E402
from tui.app import TechneApp  # noqa: E402
from tui.messages import MessageShown  # noqa: E402
from tui.screens.labelling import LabellingMixin  # noqa: E402


class TimedApp(TechneApp):
    """The app, timing each save two ways: from the save action's start to the refresh that
    paints the next message (MessageShown's own time: the screen makes it after that
    refresh; what the screen's probe timed before issue 14), and from the Enter key's arrival
    in the app to the app handling MessageShown (queueing and the message's hop included)."""

    CSS_PATH = str(ROOT / "tui" / "app.tcss")
    key_at: float | None = None
    action_at: float | None = None
    painted: list[float]
    arrival: list[float]

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and event.key == "enter":
            self.key_at = time.monotonic()
        await super().on_event(event)

    def on_message_shown(self, message: MessageShown) -> None:
        if self.action_at is not None:
            self.painted.append(message.time - self.action_at)
            self.action_at = None
        if self.key_at is not None:
            self.arrival.append(time.monotonic() - self.key_at)
            self.key_at = None


async def keypress_latency(
    root: Path, presses: int
) -> tuple[list[float], list[float], list[float]]:
    """In-app seconds from the save action to the next message painted, from the key's
    arrival to the app handling MessageShown, and Pilot round trips."""
    ws = load_workspace(root)
    app = TimedApp(ws, ws.open_repository(), "bench")
    app.painted, app.arrival = [], []
    round_trips: list[float] = []
    accept = LabellingMixin.action_accept

    def timed_accept(screen: LabellingMixin) -> None:
        app.action_at = time.monotonic()
        accept(screen)

    LabellingMixin.action_accept = timed_accept  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        for i in range(presses):
            before = app.screen.current.id  # type: ignore[attr-defined]
            if i % 3 == 0:
                await pilot.press("2")  # a correction first, then save
            t0 = time.perf_counter()
            await pilot.press("enter")
            await pilot.pause()
            round_trips.append(time.perf_counter() - t0)
            assert app.screen.current.id != before  # type: ignore[attr-defined]
    app.repo.close()
    LabellingMixin.action_accept = accept  # type: ignore[method-assign]
    return app.painted, app.arrival, round_trips


def startup_seconds(root: Path) -> float | None:
    """Launch `techne annotate` in tmux; seconds until a message id is on screen."""
    if shutil.which("tmux") is None:
        return None
    techne = str(Path(sys.executable).with_name("techne"))
    sockets = tempfile.mkdtemp(prefix="tmx", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TMUX_TMPDIR"] = sockets
    t0 = time.perf_counter()
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            "lat",
            "-x",
            "120",
            "-y",
            "36",
            f"exec {techne} -w {root} annotate --annotator startup",
        ],
        env=env,
        check=True,
    )
    try:
        while time.perf_counter() - t0 < 30:
            shown = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", "lat"], env=env, capture_output=True, text=True
            ).stdout
            if re.search(r"· id \S+", shown):
                return time.perf_counter() - t0
            time.sleep(0.01)
        return None
    finally:
        subprocess.run(["tmux", "kill-server"], env=env, capture_output=True)
        shutil.rmtree(sockets, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--presses", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        encoder = Encoder()
        build_store(root, args.messages // 2, 2_000, encoder.dim, encoder.key)
        ws = load_workspace(root)
        repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
        run_round(repo, ws.models_dir, LearningSettings.from_workspace(ws, batch_size=50))
        repo.close()
        painted, arrival, round_trips = asyncio.run(keypress_latency(root, args.presses))
        startup = [startup_seconds(root) for _ in range(3)]

    def summary(values: list[float]) -> dict[str, float]:
        ms = sorted(v * 1000 for v in values)
        q = statistics.quantiles(ms, n=100)
        return {"p50": round(q[49], 1), "p99": round(q[98], 1), "max": round(ms[-1], 1)}

    print(
        json.dumps(
            {
                "benchmark": "tui_latency",
                "messages": args.messages,
                "presses": len(painted),
                "keypress_to_next_message_ms": summary(painted),
                "key_arrival_to_app_shown_ms": summary(arrival),
                "pilot_round_trip_ms": summary(round_trips),
                "target_p99_ms": 30,
                "startup_to_first_message_s": [round(s, 2) if s else None for s in startup],
                "target_startup_s": 1.5,
                "machine": f"{os.uname().machine}, {os.cpu_count()} cpus",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
