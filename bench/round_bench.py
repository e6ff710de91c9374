"""One embed round on a big store, and bulk-prediction throughput. Prints JSON.

    python bench/round_bench.py [--pool 100000] [--labels 2000] [--predict 20000]

Targets (issue 3): a round with 2,000 labels and a 100,000-message pool, embeddings
cached, in <= 2 s wall; `predict` >= 350 messages/s on CPU at AnnoMI message lengths.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import seeds  # noqa: E402
from learning.encoders import Encoder  # noqa: E402
from learning.predict import predict_file  # noqa: E402
from learning.registry import load_predictor, model_folder  # noqa: E402
from learning.rounds import run_round  # noqa: E402
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


def build_store(root: Path, pool: int, labels: int, dim: int, key: str) -> None:
    """A workspace with `pool` messages (half therapist), `labels` of them labelled, and a
    cached embedding for every message (random unit vectors: the round must not encode)."""
    write_config(root, name="bench", codebook="annomi", db_url=None)
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
            w.writerow(
                [
                    f"c{i // 40}",
                    i % 40,
                    "therapist" if i % 2 == 0 else "client",
                    texts[i % len(texts)],
                    label,
                ]
            )
    import_file(
        repo,
        data,
        ColumnMap(
            text="text",
            speaker="speaker",
            conversation="conversation",
            order="turn",
            label="label",
            annotator="bench",
            labelable_speakers=("therapist",),
        ),
    )
    ids = [m.id for m in repo.iter_messages()]
    vectors = np.random.default_rng(0).normal(size=(len(ids), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    repo.artifacts.put_embeddings(
        key, dim, ((mid, vectors[j].tobytes()) for j, mid in enumerate(ids))
    )
    repo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pool", type=int, default=100_000, help="labelable messages")
    parser.add_argument("--labels", type=int, default=2_000)
    parser.add_argument("--predict", type=int, default=20_000, help="messages to score")
    args = parser.parse_args()
    encoder = Encoder()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        t0 = time.perf_counter()
        build_store(root, args.pool, args.labels, encoder.dim, encoder.key)
        build_s = time.perf_counter() - t0
        ws = load_workspace(root)
        repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
        settings = LearningSettings.from_workspace(ws, eval_share=0.2)
        rounds = []
        for _ in range(2):  # the second round also measures the kappa stopping statistic
            t0 = time.perf_counter()
            result = run_round(repo, ws.models_dir, settings)
            rounds.append(
                {"wall_s": round(time.perf_counter() - t0, 3), "stages_s": result.timings}
            )
        model = repo.artifacts.active()
        repo.close()

        texts = annomi_texts()
        source = Path(tmp) / "score.csv"
        with source.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "conversation", "speaker", "text"])
            for i in range(args.predict):
                w.writerow(
                    [
                        i,
                        f"c{i // 40}",
                        "therapist" if i % 2 == 0 else "client",
                        texts[i % len(texts)],
                    ]
                )
        predictor = load_predictor(model_folder(ws.models_dir, model), model.checksum)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        report = predict_file(
            predictor,
            source,
            Path(tmp) / "scores.parquet",
            ColumnMap(text="text", id="id", conversation="conversation", speaker="speaker"),
            model_tag=model.tag,
            model_checksum=model.checksum or "",
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "benchmark": "round+predict",
                "pool_messages": args.pool,
                "store_messages": args.pool * 2,
                "labels": args.labels,
                "backend": settings.backend,
                "context_mode": settings.context_mode,
                "rounds": rounds,
                "round_target_s": 2.0,
                "store_build_s": round(build_s, 1),
                "predict": {
                    "messages": report.rows,
                    "seconds": report.seconds,
                    "messages_per_s": report.messages_per_s,
                    "target_messages_per_s": 350,
                    "device": predictor.encoder.device,
                    "peak_rss_mb": round(peak / 1024, 1),
                    "rss_before_predict_mb": round(rss_before / 1024, 1),
                },
                "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
