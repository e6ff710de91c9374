"""Encoder runtimes side by side, in one run: torch fp32, ONNX fp32 and ONNX int8. Prints JSON.

    python bench/predict_bench.py [--runtimes torch,onnx,onnx-int8] [--messages 4000]
        [--sample 2000] [--repeat 3]
    python bench/predict_bench.py --backend finetune|embed --device cuda --messages 1000000
        (the GPU check: torch only, bulk scoring as before)

On CPU, for each runtime a fresh process (so peak RSS is its own):
- quality: encodes AnnoMI's therapist messages with the turns before and after them
  (every distinct text once), trains the embed model (default context "around") on the
  conversation-grouped train+dev split and reports test macro-F1 and ECE (the same split as
  bench/finetune_annomi.py and bench/al_annomi.py);
- prediction: `predict_file` over `--messages` AnnoMI texts cycled into 40-turn
  conversations: messages/s over messages scored and over messages encoded, peak RSS.
Throughput is then measured once more in one process that alternates the runtimes over the
same `--sample` AnnoMI texts, `--repeat` times (medians): on a shared machine the ratio
between runtimes measured this way is the number to trust; absolute speeds vary with load.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
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
sys.path.insert(0, str(ROOT / "bench"))

from finetune_annomi import DATA, LABELS, load_annomi, splits  # noqa: E402

from learning.encoders import Encoder  # noqa: E402
from learning.predict import predict_file  # noqa: E402
from learning.registry import ModelCard, load_predictor, save_model  # noqa: E402
from store.io import ColumnMap  # noqa: E402

TARGET_SPEEDUP = 2.5
TARGET_F1_DROP = 0.005
TARGET_ECE = 0.05


def rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def annomi_texts() -> list[str]:
    with DATA.open(encoding="utf-8") as fh:
        return [r["utterance_text"] for r in csv.DictReader(fh)]


def quality(runtime: str, device: str) -> tuple[dict[str, Any], Any, ModelCard]:
    """AnnoMI test macro-F1 and ECE of the embed model ("around") on this runtime's vectors."""
    from learning.classifiers import EmbedClassifier
    from learning.metrics import evaluate

    inputs, y, groups = load_annomi(DATA, 1, after=1)
    tr, dev, test = splits(groups, 0)
    encoder = Encoder(device=device, runtime=runtime)
    assert encoder.runtime == runtime, f"{runtime} fell back to {encoder.runtime}"
    texts = [i.text for i in inputs]
    texts += [i.context[-1].text for i in inputs if i.context]
    texts += [i.following[0].text for i in inputs if i.following]
    unique = list(dict.fromkeys(texts))
    encoder.encode(unique[:64])  # load (and export on first use) outside the timing
    started = time.perf_counter()
    vectors = encoder.encode(unique)
    seconds = time.perf_counter() - started
    row = {t: j for j, t in enumerate(unique)}
    zero = np.zeros(encoder.dim, dtype=np.float32)
    x = np.hstack(
        [
            vectors[[row[i.text] for i in inputs]],
            np.vstack([vectors[row[i.context[-1].text]] if i.context else zero for i in inputs]),
            np.vstack([vectors[row[i.following[0].text]] if i.following else zero for i in inputs]),
        ]
    )
    fit = np.concatenate([tr, dev])
    clf = EmbedClassifier(LABELS).fit(x[fit], y[fit])
    proba = clf.predict_proba(x[test])
    metrics = evaluate(y[test], proba, LABELS)
    card = ModelCard(
        "embed", LABELS, False, "all-MiniLM-L6-v2", "around", 1, 128, clf.temperature, runtime
    )
    return (
        {
            "annomi_test_macro_f1": round(metrics["macro_f1"], 4),
            "annomi_test_ece": round(metrics["ece"], 4),
            "test_messages": int(len(test)),
            "encoded_texts": len(unique),
            "encode_messages_per_s": round(len(unique) / seconds, 1),
            "top_labels": proba.argmax(axis=1).tolist(),
        },
        clf,
        card,
    )


def write_messages(path: Path, messages: int) -> None:
    texts = annomi_texts()
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "conversation", "speaker", "text"])
        for i in range(messages):
            speaker = "therapist" if i % 2 == 0 else "client"
            w.writerow([i, f"c{i // 40}", speaker, texts[i % len(texts)]])


def child(runtime: str, messages: int, batch_size: int, device: str) -> dict[str, Any]:
    """One runtime in this (fresh) process: quality, then bulk prediction."""
    result, clf, card = quality(runtime, device)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        save_model(folder, clf, card)
        source = Path(tmp) / "messages.csv"
        write_messages(source, messages)
        predictor = load_predictor(folder, device=device, runtime=runtime)
        report = predict_file(
            predictor,
            source,
            Path(tmp) / "scores.parquet",
            ColumnMap(
                text="text",
                id="id",
                conversation="conversation",
                speaker="speaker",
                labelable_speakers=("therapist",),
            ),
            model_tag="bench",
            model_checksum="",
            batch_size=batch_size,
        )
    result["predict"] = report.as_dict()
    result["peak_rss_mb"] = rss_mb()
    return result


def alternate(runtimes: list[str], sample: int, repeat: int, device: str) -> dict[str, Any]:
    """Messages/s of each runtime over the same AnnoMI texts, runtimes taking turns."""
    texts = annomi_texts()[:sample]
    encoders = {r: Encoder(device=device, runtime=r) for r in runtimes}
    for encoder in encoders.values():
        encoder.encode(texts[:64])
    runs: dict[str, list[float]] = {r: [] for r in runtimes}
    for _ in range(repeat):
        for r, encoder in encoders.items():
            started = time.perf_counter()
            encoder.encode(texts)
            runs[r].append(round(len(texts) / (time.perf_counter() - started), 1))
    return {r: {"median_messages_per_s": statistics.median(v), "runs": v} for r, v in runs.items()}


def run_json(args: list[str]) -> Any:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if out.returncode != 0:
        sys.exit(f"predict_bench {' '.join(args)} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def compare(runtimes: list[str], args: argparse.Namespace) -> dict[str, Any]:
    common = ["--messages", str(args.messages), "--batch-size", str(args.batch_size)]
    results: dict[str, Any] = {}
    load: dict[str, float] = {}
    for runtime in runtimes:
        results[runtime] = run_json(["--child", runtime, *common, "--device", args.device])
        load[runtime] = round(os.getloadavg()[0], 2)
    speed = run_json(
        [
            "--alternate",
            ",".join(runtimes),
            "--sample",
            str(args.sample),
            "--repeat",
            str(args.repeat),
            "--device",
            args.device,
        ]
    )
    labels = {runtime: np.asarray(result.pop("top_labels")) for runtime, result in results.items()}
    reference = results.get("torch")
    base = speed.get("torch", {}).get("median_messages_per_s")
    for runtime, result in results.items():
        result["alternating"] = speed[runtime]
        if base:
            ratio = speed[runtime]["median_messages_per_s"] / base
            result["speedup_vs_torch_fp32"] = round(ratio, 2)
        if reference:
            result["macro_f1_minus_torch_fp32"] = round(
                result["annomi_test_macro_f1"] - reference["annomi_test_macro_f1"], 4
            )
            result["top_labels_changed_vs_torch_fp32"] = round(
                float(np.mean(labels[runtime] != labels["torch"])), 4
            )
            result["meets_targets"] = bool(
                result.get("speedup_vs_torch_fp32", 0) >= TARGET_SPEEDUP
                and result["macro_f1_minus_torch_fp32"] >= -TARGET_F1_DROP
                and result["annomi_test_ece"] <= TARGET_ECE
            )
    from learning.runtimes import CPU_DEFAULT

    return {
        "benchmark": "predict runtimes",
        "default_cpu_runtime": CPU_DEFAULT,
        "targets": {
            "speedup_vs_torch_fp32": TARGET_SPEEDUP,
            "macro_f1_drop_at_most": TARGET_F1_DROP,
            "ece_at_most": TARGET_ECE,
        },
        "runtimes": results,
        "load_average_1m_after_each": load,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
        f"{len(os.sched_getaffinity(0))} usable",
    }


def gpu_bulk(args: argparse.Namespace) -> dict[str, Any]:
    """The CUDA path (torch, bf16): train on AnnoMI, then score --messages messages."""
    import torch

    inputs, y, groups = load_annomi(DATA, 1)
    tr, dev, _ = splits(groups, 0)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        if args.backend == "embed":
            _, clf, card = quality("torch", args.device)
        else:
            from learning.finetune import FinetuneClassifier, FinetuneSettings

            settings = FinetuneSettings(epochs=args.epochs, device=args.device)
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
        train_s = time.perf_counter() - started
        save_model(folder, clf, card)
        source = Path(tmp) / "messages.csv"
        write_messages(source, args.messages)
        predictor = load_predictor(folder, device=args.device, runtime="torch")
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
    if torch.cuda.is_available():
        gpu = {
            "name": torch.cuda.get_device_name(0),
            "peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
        }
    return {
        "benchmark": "predict",
        "backend": args.backend,
        "device": args.device,
        "runtime": "torch",
        "train_s": round(train_s, 1),
        **report.as_dict(),
        "peak_rss_mb": rss_mb(),
        "gpu": gpu,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runtimes", default="torch,onnx,onnx-int8")
    ap.add_argument("--backend", choices=["embed", "finetune"], default="embed")
    ap.add_argument("--messages", type=int, default=4_000, help="messages scored per runtime")
    ap.add_argument("--sample", type=int, default=2_000, help="texts per alternating pass")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs (GPU check)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--alternate", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is missing: this benchmark reads AnnoMI from ../shared/data")
    if args.child:
        result: Any = child(args.child, args.messages, args.batch_size, args.device)
    elif args.alternate:
        result = alternate(args.alternate.split(","), args.sample, args.repeat, args.device)
    elif args.device.startswith("cuda") or args.backend == "finetune":
        result = gpu_bulk(args)
    else:
        result = compare([r.strip() for r in args.runtimes.split(",")], args)
    print(json.dumps(result, indent=None if (args.child or args.alternate) else 2))


if __name__ == "__main__":
    main()
