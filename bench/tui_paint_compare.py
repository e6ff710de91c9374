"""Keypress -> next message painted, measured the same way on two commits, in one run.
Prints JSON.

    python bench/tui_paint_compare.py [--base b32560b] [--rounds 2] [--messages 100000]
        [--presses 200]

Each commit's own bench/tui_latency.py drives its own app (a workspace of `--messages`,
Enter pressed `--presses` times through Pilot), but the clock is this script's, patched
into Textual and the screen from outside: from the start of the save action
(`LabellingMixin.action_accept`) to the end of the first layout refresh of the screen after
the action returned (`Screen._refresh_layout`), which is when the next message is painted.
The screens' own probes differ between commits (before issue 14 the probe fired after a
refresh that came before the layout, so it left out the painting); this does not. Base and
head alternate, each in a fresh process: compare the two sides of one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(tree: Path, messages: int, presses: int) -> dict:
    """In a child process whose path starts at `tree`: the tree's app, this clock."""
    sys.path[:0] = [str(tree), str(tree / "bench")]
    import textual.screen
    import tui_latency

    from tui.screens.labelling import LabellingMixin

    actions: list[tuple[float, float]] = []
    layouts: list[float] = []
    accept, layout = LabellingMixin.action_accept, textual.screen.Screen._refresh_layout

    def timed_accept(screen: object) -> None:
        started = time.perf_counter()
        accept(screen)  # type: ignore[arg-type]
        actions.append((started, time.perf_counter()))

    def timed_layout(screen: object, *args: object, **kwargs: object) -> object:
        result = layout(screen, *args, **kwargs)  # type: ignore[arg-type]
        layouts.append(time.perf_counter())
        return result

    LabellingMixin.action_accept = timed_accept  # type: ignore[method-assign]
    textual.screen.Screen._refresh_layout = timed_layout  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        _prepare(root, messages)
        asyncio.run(tui_latency.keypress_latency(root, presses))
    painted = []
    for started, returned in actions:
        after = [t for t in layouts if t >= returned]
        if after:
            painted.append((after[0] - started) * 1000)
    ms = sorted(painted)
    q = statistics.quantiles(ms, n=100)
    return {
        "presses": len(ms),
        "p50": round(q[49], 1),
        "p99": round(q[98], 1),
        "max": round(ms[-1], 1),
    }


def _prepare(root: Path, messages: int) -> None:
    """The workspace tui_latency.py builds: half the messages labelable, 2,000 labelled, a
    first round."""
    from round_bench import build_store

    from learning.encoders import Encoder
    from learning.rounds import run_round
    from learning.settings import LearningSettings
    from store import Repository, load_workspace

    encoder = Encoder()
    build_store(root, messages // 2, 2_000, encoder.dim, encoder.key)
    ws = load_workspace(root)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    run_round(repo, ws.models_dir, LearningSettings.from_workspace(ws, batch_size=50))
    repo.close()


def child(tree: Path, messages: int, presses: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, __file__, "--measure", str(tree), "--messages", str(messages)]
    done = subprocess.run(
        [*command, "--presses", str(presses)], cwd=tree, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"measuring {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--base", default="b32560b")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--presses", type=int, default=200)
    ap.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.messages, args.presses)))
        return
    runs: dict[str, list[dict]] = {"base": [], "head": []}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        add = ["git", "worktree", "add", "--detach", str(base), args.base]
        subprocess.run(add, cwd=ROOT, check=True, capture_output=True)
        try:
            for _ in range(args.rounds):
                for side, tree in (("base", base), ("head", ROOT)):
                    runs[side].append(child(tree, args.messages, args.presses))
                    print(json.dumps({side: runs[side][-1]}), file=sys.stderr, flush=True)
        finally:
            remove = ["git", "worktree", "remove", "--force", str(base)]
            subprocess.run(remove, cwd=ROOT, capture_output=True)
    print(
        json.dumps(
            {
                "benchmark": "tui_paint_compare",
                "measure": "save action start -> end of the next layout refresh, ms",
                "base": args.base,
                "messages": args.messages,
                "runs": runs,
                "machine": f"{os.uname().machine}, {os.cpu_count()} cpus",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
