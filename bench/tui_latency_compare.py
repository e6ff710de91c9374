"""Annotation latency of two commits in one run: bench/tui_latency.py of a base commit and of
this tree, alternated, each in its own tree and process. Prints JSON.

    python bench/tui_latency_compare.py [--base b32560b] [--rounds 2] [--messages 100000]
        [--presses 200]

The base's own bench measures the base (each tree's bench times what its app exposes);
the Pilot round trip (key sent -> app idle again) is measured the same way in both. Alternating
spreads a shared machine's load over both sides: compare the two sides of one run only.
Issue 14: keypress -> next message p99 after the screen/session restructuring is not worse
than before it (base b32560b).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_bench(tree: Path, messages: int, presses: int) -> dict:
    """One bench/tui_latency.py run in `tree` (its own code first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, "bench/tui_latency.py", "--messages", str(messages)]
    done = subprocess.run(
        [*command, "--presses", str(presses)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"bench/tui_latency.py failed in {tree}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--base", default="b32560b")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--presses", type=int, default=200)
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {"base": [], "head": []}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(base), args.base],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            for _ in range(args.rounds):
                for side, tree in (("base", base), ("head", ROOT)):
                    runs[side].append(run_bench(tree, args.messages, args.presses))
                    print(json.dumps({side: runs[side][-1]}), file=sys.stderr, flush=True)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, capture_output=True
            )

    def keep(run: dict) -> dict:
        return {
            "keypress_to_next_message_ms": run["keypress_to_next_message_ms"],
            "key_arrival_to_app_shown_ms": run.get("key_arrival_to_app_shown_ms"),
            "pilot_round_trip_ms": run["pilot_round_trip_ms"],
            "startup_to_first_message_s": run["startup_to_first_message_s"],
        }

    print(
        json.dumps(
            {
                "benchmark": "tui_latency_compare",
                "base": args.base,
                "messages": args.messages,
                "presses": args.presses,
                "runs": {side: [keep(r) for r in rs] for side, rs in runs.items()},
                "machine": f"{os.uname().machine}, {os.cpu_count()} cpus",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
