"""Bulk-prediction throughput: train a model on AnnoMI, then score N messages. Prints JSON.

    python bench/predict_bench.py [--backend embed|finetune] [--messages 1000000]
        [--device auto|cpu|cuda] [--batch-size 256] [--epochs 1]

Messages are AnnoMI utterances (real lengths) cycled into conversations of 40 turns.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from finetune_annomi import DATA, LABELS, load_annomi, splits  # noqa: E402

from learning.predict import predict_file  # noqa: E402
from learning.registry import ModelCard, load_predictor, save_model  # noqa: E402
from store.io import ColumnMap  # noqa: E402


def train(backend: str, device: str, epochs: int, folder: Path) -> float:
    """Train on AnnoMI's train split and save like a round would; returns seconds."""
    inputs, y, groups = load_annomi(DATA, 1)
    tr, dev, _ = splits(groups, 0)
    t0 = time.perf_counter()
    if backend == "embed":
        from learning.classifiers import EmbedClassifier
        from learning.encoders import Encoder

        enc = Encoder(device=device)
        own = enc.encode([i.text for i in inputs])
        prev = np.zeros_like(own)
        has = [j for j, i in enumerate(inputs) if i.context]
        prev[has] = enc.encode([inputs[j].context[-1].text for j in has])
        x = np.hstack([own, prev])
        rows = np.concatenate([tr, dev])
        clf = EmbedClassifier(LABELS).fit(x[rows], y[rows])
        card = ModelCard(
            "embed", LABELS, False, "all-MiniLM-L6-v2", "previous", 1, 128, clf.temperature
        )
    else:
        from learning.finetune import FinetuneClassifier, FinetuneSettings

        settings = FinetuneSettings(epochs=epochs, device=device)
        clf = FinetuneClassifier(LABELS, settings).fit(
            [inputs[i] for i in tr], y[tr], dev_inputs=[inputs[i] for i in dev], dev_y=y[dev]
        )
        card = ModelCard(
            "finetune",
            LABELS,
            False,
            "all-MiniLM-L6-v2",
            settings.context_mode,
            settings.context_turns,
            settings.max_length,
            1.0,
        )
    seconds = time.perf_counter() - t0
    save_model(folder, clf, card)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--backend", choices=["embed", "finetune"], default="embed")
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs before scoring")
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is missing: this benchmark reads AnnoMI from ../shared/data")
    with DATA.open(encoding="utf-8") as fh:
        texts = [r["utterance_text"] for r in csv.DictReader(fh)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        train_s = train(args.backend, args.device, args.epochs, folder)
        source = Path(tmp) / "messages.csv"
        with source.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "conversation", "speaker", "text"])
            for i in range(args.messages):
                w.writerow(
                    [
                        i,
                        f"c{i // 40}",
                        "therapist" if i % 2 == 0 else "client",
                        texts[i % len(texts)],
                    ]
                )
        predictor = load_predictor(folder, device=args.device)
        predictor.batch_size = args.batch_size
        report = predict_file(
            predictor,
            source,
            Path(tmp) / "scores.parquet",
            ColumnMap(text="text", id="id", conversation="conversation", speaker="speaker"),
            model_tag="bench",
            model_checksum="",
            batch_size=args.batch_size,
        )
    gpu = {}
    try:
        import torch

        if torch.cuda.is_available():
            gpu = {
                "name": torch.cuda.get_device_name(0),
                "peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
            }
    except ImportError:
        pass
    print(
        json.dumps(
            {
                "benchmark": "predict",
                "backend": args.backend,
                "device": args.device,
                "train_s": round(train_s, 1),
                "messages": report.rows,
                "seconds": report.seconds,
                "messages_per_s": report.messages_per_s,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "gpu": gpu,
                "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
