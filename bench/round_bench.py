"""One embed round with a big store, and bulk-prediction throughput. Prints JSON.

    python bench/round_bench.py [--pool 100000] [--labels 2000] [--predict 20000] [--repeat 3]
    python bench/round_bench.py --first-round [--messages 40000] [--first-labels 5000]

Targets (issue 3): a round with 2,000 labels and a 100,000-message pool, embeddings
cached, in <= 2 s wall; `predict` >= 350 messages/s on CPU at AnnoMI message lengths.

Rounds are measured four ways, each `--repeat` times (medians reported): `techne retrain`
as a user runs it (a fresh process: wall from exec to exit); the first round in a fresh
Python process (the round call only, lazy imports included); warm rounds after it, which
keep the active version's temperature; and one more warm round per process that
cross-validates its temperature again, as a round does once the labels have grown by a
quarter (learning.round_steps.RECALIBRATE_GROWTH). Prediction runs `techne predict` in a
fresh process: messages scored per second from reading the input to writing the Parquet
file (as `predict` reports it), the whole command's wall, and its peak RSS.

--first-round (issue 15): a new user's first round. `techne import` of `--messages` AnnoMI
rows (cycled, real speakers: about half are therapist turns, the labelable ones), with
AnnoMI's own labels on `--first-labels` therapist messages, then the first `techne retrain`
as a process with nothing cached: every message the round needs is encoded (with the default
runtime), and the ONNX export is made first (an empty export cache) unless --warm-export.
Target: <= 3 minutes on the 2-core machine.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import seeds  # noqa: E402
from learning.encoders import Encoder  # noqa: E402
from learning.settings import LearningSettings  # noqa: E402
from store import Repository, load_codebook_file, load_workspace  # noqa: E402
from store.io import ColumnMap, import_file  # noqa: E402
from store.workspace import write_config  # noqa: E402

ANNOMI = ROOT.parent / "shared" / "data" / "annomi" / "AnnoMI-simple.csv"
LABELS = ["reflection", "question", "therapist_input", "other"]


def annomi_texts() -> list[str]:
    """Real message texts (AnnoMI) for realistic lengths; the demo corpus when it is absent."""
    if ANNOMI.exists():
        with ANNOMI.open(encoding="utf-8") as fh:
            return [r["utterance_text"] for r in csv.DictReader(fh)]
    return [json.loads(line)["text"] for line in seeds.demo_corpus().open(encoding="utf-8")]


def build_store(
    root: Path,
    pool: int,
    labels: int,
    dim: int,
    key: str,
    context: str | None = None,
    db_url: str | None = None,
    pseudo_confidence: float | None = None,
) -> None:
    """A workspace with `pool` messages (half therapist), `labels` of them labelled, and a
    cached embedding for every message (random unit vectors: the round must not encode),
    under the default runtime's key and torch's.
    `context` sets [model] context_mode (default: the backend's measured best);
    `pseudo_confidence` sets [learning] pseudo_confidence (learning.self_training)."""
    write_config(root, name="bench", codebook="annomi", db_url=db_url)
    if pseudo_confidence is not None:
        config = root / "techne.toml"
        text = config.read_text()
        if "[learning]\n" not in text:
            sys.exit("round_bench: the workspace template has no [learning] section")
        extra = f"[learning]\npseudo_confidence = {pseudo_confidence}\n"
        config.write_text(text.replace("[learning]\n", extra, 1))
    if context:
        config = root / "techne.toml"
        text, found = re.subn(
            r"^# context_mode = \S+", f'context_mode = "{context}"', config.read_text(), flags=re.M
        )
        if not found:
            sys.exit("round_bench: the workspace template has no context_mode line to set")
        config.write_text(text)
    ws = load_workspace(root)
    repo = Repository.open(ws.db_url, create=True)
    repo.install_codebook(load_codebook_file(seeds.CODEBOOKS / "annomi.toml"))
    repo.codebook_key = "annomi"
    texts = annomi_texts()
    rng = random.Random(0)
    rows = pool * 2
    data = root / "pool.csv"
    labelled = set(rng.sample(range(0, rows, 2), labels))
    with data.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["conversation", "turn", "speaker", "text", "label"])
        for i in range(rows):
            label = rng.choice(LABELS) if i in labelled else ""
            speaker = "therapist" if i % 2 == 0 else "client"
            w.writerow([f"c{i // 40}", i % 40, speaker, texts[i % len(texts)], label])
    columns = ColumnMap(
        text="text",
        speaker="speaker",
        conversation="conversation",
        order="turn",
        label="label",
        annotator="bench",
        labelable_speakers=("therapist",),
    )
    import_file(repo, data, columns)
    ids = [m.id for m in repo.iter_messages()]
    vectors = np.random.default_rng(0).normal(size=(len(ids), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    repo.artifacts.put_embedding_matrix(key, ids, vectors)
    torch_key = Encoder(runtime="torch").key
    if torch_key != key:  # the round's fidelity check reads torch fp32 vectors of held-out messages
        repo.artifacts.put_embedding_matrix(torch_key, ids, vectors)
    repo.close()


def add_label(repo: Repository, label: str) -> None:
    """One new gold label (the first queued message, or any unlabelled one before the first
    round): a round with no new label since the active model registers nothing."""
    repo.ensure_annotator("bench")
    latest = repo.artifacts.latest_round()
    labelled = set(repo.gold())
    queued = [m for m in (latest.queried_message_ids if latest else []) if m not in labelled]
    if not queued:
        queued = [m.id for m in repo.iter_messages(labelable_only=True) if m.id not in labelled]
    repo.add_event(queued[0], "bench", "label", [label], source="bench")


IN_PROCESS = (
    """
import json, sys, time
from pathlib import Path
from learning import round_steps
from learning.rounds import run_round
from learning.settings import LearningSettings
from store import Repository, load_workspace
"""
    + inspect.getsource(add_label)
    + """
ws = load_workspace(Path(sys.argv[1]))
repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
settings = LearningSettings.from_workspace(ws)
rounds = []
for i in range(int(sys.argv[2]) + 1):
    if i == int(sys.argv[2]):  # the last: a round that cross-validates its temperature again
        round_steps.RECALIBRATE_GROWTH = 1.0
    add_label(repo, "reflection")  # untimed
    started = time.perf_counter()
    result = run_round(repo, ws.models_dir, settings)
    wall = round(time.perf_counter() - started, 3)
    pseudo = result.metrics.get("pseudo_labels", 0)
    rounds.append({"wall_s": wall, "stages_s": result.timings, "pseudo_labels": pseudo})
print(json.dumps(rounds))
"""
)


def label_workspace(root: Path) -> None:
    """One new gold label in the workspace, before a `techne retrain` child."""
    ws = load_workspace(root)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    try:
        add_label(repo, LABELS[0])
    finally:
        repo.close()


def techne() -> list[str]:
    script = Path(sys.executable).with_name("techne")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tui.cli"]


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, Any, float]:
    """(wall seconds, JSON it printed, its peak RSS in MB) of one fresh process."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, cwd=ROOT, env=env)
        assert child.stdout is not None
        out = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        if status != 0:
            errors.seek(0)
            sys.exit(f"{' '.join(cmd)} failed:\n{errors.read().decode()}")
    return wall, json.loads(out), usage.ru_maxrss / 1024


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def score_file(path: Path, messages: int) -> float:
    """A conversation-ordered file of AnnoMI texts; returns the share of distinct texts per
    10,000-message chunk (what `predict` encodes once each)."""
    texts = annomi_texts()
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "conversation", "speaker", "text"])
        for i in range(messages):
            speaker = "therapist" if i % 2 == 0 else "client"
            w.writerow([i, f"c{i // 40}", speaker, texts[i % len(texts)]])
    chunk = [texts[i % len(texts)] for i in range(min(messages, 10_000))]
    return round(len(set(chunk)) / max(len(chunk), 1), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--first-round", action="store_true", help="only the first-round case")
    parser.add_argument("--messages", type=int, default=40_000, help="first round: messages")
    parser.add_argument("--first-labels", type=int, default=5_000, help="first round: labels")
    parser.add_argument("--warm-export", action="store_true", help="first round: keep exports")
    parser.add_argument("--runtime", default="auto", help="first round: [model] runtime")
    parser.add_argument("--pool", type=int, default=100_000, help="labelable messages")
    parser.add_argument("--labels", type=int, default=2_000)
    parser.add_argument("--predict", type=int, default=20_000, help="messages to score (0: none)")
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each kind")
    parser.add_argument("--context", help="embed context_mode (default: techne's default)")
    parser.add_argument(
        "--pseudo-confidence",
        type=float,
        help="[learning] pseudo_confidence; the bench's random labels and vectors leave the "
        "model sure of nothing, so the default takes no pseudo-labels: 0.26 makes every round "
        "take its most (one per gold label), the dearest case",
    )
    parser.add_argument(
        "--db", help="an empty PostgreSQL database URL for the store (default: SQLite file)"
    )
    args = parser.parse_args()
    if args.first_round:
        from first_round import first_round

        print(
            json.dumps(
                first_round(args.messages, args.first_labels, args.warm_export, args.runtime),
                indent=2,
            )
        )
        return
    encoder = Encoder()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        t0 = time.perf_counter()
        build_store(
            root,
            args.pool,
            args.labels,
            encoder.dim,
            encoder.key,
            args.context,
            args.db,
            args.pseudo_confidence,
        )
        build_s = time.perf_counter() - t0
        context = LearningSettings.from_workspace(load_workspace(root)).context_mode
        cli: list[dict[str, Any]] = []
        for _ in range(args.repeat):
            label_workspace(root)
            wall, report, rss = run_child([*techne(), "-w", str(root), "retrain", "--json"])
            round_s = round(sum(report["timings_s"].values()), 3)
            cli.append({"process_wall_s": round(wall, 3), "round_s": round_s, "peak_rss_mb": rss})
        first: list[dict[str, Any]] = []
        warm: list[dict[str, Any]] = []
        recalibrating: list[dict[str, Any]] = []
        for _ in range(args.repeat):
            _, rounds, _ = run_child([sys.executable, "-c", IN_PROCESS, str(root), "3"])
            first.append(rounds[0])
            warm.extend(rounds[1:-1])
            recalibrating.append(rounds[-1])
        ws = load_workspace(root)
        source = Path(tmp) / "score.csv"
        distinct = score_file(source, args.predict)
        predicted: list[dict[str, Any]] = []
        for _ in range(args.repeat if args.predict else 0):
            out = Path(tmp) / "scores.parquet"
            columns = "--id id --conversation conversation --speaker speaker".split()
            command = [*techne(), "-w", str(ws.root), "predict", str(source), str(out)]
            wall, report, rss = run_child([*command, *columns, "--device", "cpu", "--json"])
            out.unlink()
            predicted.append(
                {
                    "messages_per_s": report["messages_per_s"],
                    "seconds": report["seconds"],
                    "process_wall_s": round(wall, 2),
                    "peak_rss_mb": round(rss, 1),
                }
            )
    print(
        json.dumps(
            {
                "benchmark": "round+predict",
                "pool_messages": args.pool,
                "store_messages": args.pool * 2,
                "labels": args.labels,
                "context_mode": context,
                "pseudo_confidence": LearningSettings.from_workspace(ws).pseudo_confidence,
                "pseudo_labels_warm": [r["pseudo_labels"] for r in warm],
                "store": "postgresql" if args.db else "sqlite",
                "round_target_s": 2.0,
                "round_median_s": {
                    "techne_retrain_process": median([r["process_wall_s"] for r in cli]),
                    "first_in_process": median([r["wall_s"] for r in first]),
                    "warm": median([r["wall_s"] for r in warm]),
                    "warm_recalibrating": median([r["wall_s"] for r in recalibrating]),
                },
                "rounds": {
                    "techne_retrain": cli,
                    "first_in_process": first,
                    "warm": warm,
                    "warm_recalibrating": recalibrating,
                },
                "store_build_s": round(build_s, 1),
                "predict": {
                    "messages": args.predict,
                    "distinct_texts_per_chunk": distinct,
                    "target_messages_per_s": 350,
                    "median_messages_per_s": (
                        median([p["messages_per_s"] for p in predicted]) if predicted else None
                    ),
                    "runs": predicted,
                },
                "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
                "load_average_1m_after": round(os.getloadavg()[0], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
