"""Start-up and quit: `techne --help`, `techne annotate` to its first message painted, and `q`
to the process gone. Each the median of --runs fresh processes. Prints JSON.

    python bench/startup.py [--runs 5] [--train] [--settle 3]

Targets (issue 13): help <= 0.5 s, quit <= 0.3 s, on an idle machine.

How it measures (a real terminal, not the app's own signals):
- help: wall time of `techne --help` with stdout to /dev/null.
- first message: `techne annotate` runs in tmux on its own server (`tmux -L <own name>`,
  120x36); from launching the session until the text of any demo message is on the pane
  (the screen paints the message with its context in one frame). Layout-independent.
- quit: `--settle` seconds after the first message (a person reads before quitting; the
  learning warm-up of maintainers starts 2 s after start), `q` is sent; from the key to the
  tmux session gone (the command runs with `exec`, so the session ends with the process).
The workspace is the demo (bundled corpus, MI codebook) built once in a temporary folder,
with a first model when --train is given; the annotator is its creator (the maintainer).
Only the tmux server this script starts is ever killed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TECHNE = str(Path(sys.executable).with_name("techne"))
TIMEOUT_S = 60.0


def help_seconds() -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    subprocess.run([TECHNE, "--help"], stdout=subprocess.DEVNULL, check=True, env=env)
    return time.perf_counter() - t0


def message_snippets() -> list[str]:
    """The start of every demo message: one of them on the pane means a message was painted."""
    import seeds

    with seeds.demo_corpus().open(encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh if line.strip()]
    return [t[:24] for t in texts if len(t) >= 24]


class Tmux:
    """One tmux server of this script's own (`-L`), killed only by this script."""

    def __init__(self) -> None:
        self.name = f"techne-startup-{os.getpid()}"
        self.env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TMUX")}
        self.env["PYTHONPATH"] = str(ROOT)

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.name, *args], env=self.env, capture_output=True, text=True
        )

    def alive(self) -> bool:
        return self("has-session", "-t", "bench").returncode == 0

    def kill(self) -> None:
        self("kill-server")


def annotate_once(root: Path, snippets: list[str], settle: float) -> tuple[float, float]:
    """(seconds to the first message painted, seconds from `q` to the process gone)."""
    tmux = Tmux()
    command = f"exec {TECHNE} -w {root} annotate --annotator {getpass.getuser()}"
    t0 = time.perf_counter()
    tmux("new-session", "-d", "-s", "bench", "-x", "120", "-y", "36", command)
    try:
        painted = None
        while time.perf_counter() - t0 < TIMEOUT_S:
            pane = tmux("capture-pane", "-p", "-J", "-t", "bench").stdout
            if any(s in pane for s in snippets):
                painted = time.perf_counter() - t0
                break
            time.sleep(0.005)
        if painted is None:
            raise RuntimeError(f"no message on screen after {TIMEOUT_S:.0f} s:\n{pane}")
        time.sleep(settle)
        t1 = time.perf_counter()
        tmux("send-keys", "-t", "bench", "q")
        while tmux.alive():
            if time.perf_counter() - t1 > TIMEOUT_S:
                raise RuntimeError("the app did not quit")
            time.sleep(0.005)
        return painted, time.perf_counter() - t1
    finally:
        tmux.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--train", action="store_true", help="Give the demo a first model.")
    ap.add_argument("--settle", type=float, default=3.0, help="Seconds on screen before q.")
    args = ap.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("bench/startup.py needs tmux")
    from tui.demo import build_demo

    helps = [help_seconds() for _ in range(args.runs)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "demo"
        build_demo(root, train=args.train)
        snippets = message_snippets()
        annotate = [annotate_once(root, snippets, args.settle) for _ in range(args.runs)]
    first = [a[0] for a in annotate]
    quits = [a[1] for a in annotate]

    def med(values: list[float]) -> float:
        return round(statistics.median(values), 3)

    print(
        json.dumps(
            {
                "benchmark": "startup",
                "runs": args.runs,
                "help_s": med(helps),
                "help_target_s": 0.5,
                "annotate_first_message_s": med(first),
                "quit_s": med(quits),
                "quit_target_s": 0.3,
                "quit_after_s_on_screen": args.settle,
                "with_model": args.train,
                "all_s": {
                    "help": [round(v, 3) for v in helps],
                    "first_message": [round(v, 3) for v in first],
                    "quit": [round(v, 3) for v in quits],
                },
                "measured_in": "tmux -L (own server), 120x36; help with stdout to /dev/null",
                "machine": f"{os.uname().machine}, {os.cpu_count()} cpus, "
                f"load {os.getloadavg()[0]:.1f}",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
