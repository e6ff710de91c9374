"""Fine-tuning recipe on AnnoMI: train one configuration, print JSON with test macro-F1.

    python bench/finetune_annomi.py [--context none|previous|window|around] [--turns N]
        [--epochs 4] [--lr 1e-4] [--max-length 128] [--batch-size 32] [--warmup 0.1]
        [--patience 2] [--class-weights] [--pooling cls|mean] [--label-smoothing 0]
        [--quick N] [--log /tmp/finetune_runs.jsonl]

Defaults are FinetuneSettings' defaults (the recipe chosen below).

Split: therapist rows, conversation-grouped 80/20 by transcript_id
(GroupShuffleSplit, seed 0); dev (early stopping and best-epoch selection) is 10% of the
TRAIN transcripts (seed 0), so no test conversation is ever seen before scoring. Context
turns come from the whole transcript (client turns included; coding is done on whole
transcripts, so the turns after a message are known too). One configuration per run,
so that only one training process uses the CPU at a time.

Results (full split: 3401 train / 581 dev / 900 test messages; MiniLM-L6, AdamW with
weight decay 0.01, 10% linear warm-up then linear decay, batch 32, max_length 128,
4 epochs, patience 2, seed 0; 2 shared CPU cores, so seconds vary with other load).
A configuration is chosen by its best dev macro-F1 (the kept epoch); test is reported for
every run and was never used to choose:

    config                         dev F1  test F1  acc    TI F1  dev F1 by epoch    train s
    none,           lr 1e-4        .730    0.770    0.813  0.566  .648 .720 .722 .730    808
    previous,       lr 1e-4        .745    0.795    0.830  0.639  .624 .733 .737 .745    954
    previous,       lr 5e-5        .740    0.738    0.802  0.460  .570 .710 .740 .720    832
    previous, 1e-4, class weights  .737    0.788    0.823  0.621  .680 .731 .725 .737    532
    window 2 turns, lr 1e-4        .734    0.782    0.822  0.591  .643 .687 .704 .734    654
    around 1 turn,  lr 1e-4        .725    0.767    0.808  0.580  .598 .725 .715 .722   1719
    around 1 turn,  mean pooling   .740    0.784    0.819  0.617  .692 .735 .740 .720   1623
    previous,       mean pooling   .737    0.781    0.819  0.594  .666 .714 .737 .726   1436
    previous, 6 epochs (stopped 4) .738    0.758    0.807  0.536  .619 .738 .731 .706   1464
    previous, label smoothing 0.1  .753    0.773    0.813  0.582  .636 .726 .753 .731   1196

(TI: therapist_input, the rarest class and the weakest.) around: the turn before and the
turn after, speakers marked, as ``[CLS] message [SEP] before [SEP] after [SEP]`` (the two
sides share the room the message leaves). mean pooling: the classifier reads the mean of
the message's token states instead of the [CLS] pooler; it learns faster (dev .69 after
one epoch against .60) but ends no better. More epochs (a longer schedule, early stopping
on dev) peaked at epoch 2 and stopped at 4, below the 4-epoch schedule. The turn after a
message does carry signal: the frozen-embedding head gains from it on dev and test
(bench/al_annomi.py: dev 0.665 text-only, 0.676 + previous, 0.686 + previous and next;
test 0.718 / 0.709 / 0.736), but fine-tuning did not turn it into a better dev score. The
best dev score is the previous turn with label smoothing 0.1 (dev .753), so that is the
default (FinetuneSettings), although its test score is 0.022 below the same recipe without
smoothing (0.773 vs 0.795): the rule is dev, and test was not used to choose.
Seeds (2026-11-30): the table above has one seed per configuration. Three seeds each
(``--seed 0/1/2 --save-probs DIR``, then bench/ensemble_annomi.py DIR; 500 s per run on the
idle machine, 2 cores):

    config                          seed 0       seed 1       seed 2      mean dev  test mean ± sd
    previous, smoothing 0.1         .753/.773    .705/.767    .724/.788   .727      .776 ± .011
    previous, no smoothing          .745/.795    .708/.767    .716/.789   .723      .784 ± .015
    previous, smoothing 0.1, 2e-4   .740/.774    .694/.751    (stopped)   .717      .763
    (dev/test macro-F1 per seed)

    seed ensembles (probabilities averaged)     dev    test   test ECE (after temperature on dev)
    smoothing 0.1, 3 members                    .740   .778   .046
    no smoothing, 3 members                     .739   .784   .043
    both, 6 members                             .738   .781

The seed spread (dev .694-.753, test .751-.795) is as wide as every difference between
configurations in the first table, so those single-seed choices were mostly noise. With
three seeds, smoothing 0.1 and none tie on dev (.727 vs .723 mean; .740 vs .739
ensembled), so the default stays; a higher learning rate is worse. Ensembles raise dev by
about 0.013 over their members' mean but test only to about that mean: they remove the
seed lottery, not the ceiling. Per-technique bias offsets tuned on dev for macro-F1 were
tried on these probabilities too and moved test by -0.008 to +0.022, inconsistently (not
adopted). No configuration reaches the 0.80 target: MiniLM-L6 fine-tuned on 3,401 AnnoMI
therapist messages sits at 0.78 ± 0.015 on this 900-message test split.

Measured before this bench on the same 80/20 split (constant lr 1e-4, no schedule):
text-only 0.782 after one epoch, the previous turn as a plain text pair 0.747 (0.720 by
epoch 3), frozen embeddings + LR 0.697.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from learning.finetune import FinetuneClassifier, FinetuneSettings  # noqa: E402
from learning.inputs import CONTEXT_MODES, ModelInput, following_turns, with_context  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared/data/annomi/AnnoMI-simple.csv"
LABELS = ["reflection", "question", "therapist_input", "other"]


def load_annomi(
    path: Path, turns: int, after: int = 0
) -> tuple[list[ModelInput], np.ndarray, np.ndarray]:
    """Therapist messages with up to `turns` turns before them and `after` turns after them,
    their labels and transcripts."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    rows.sort(key=lambda r: (int(r["transcript_id"]), int(r["utterance_id"])))
    inputs = with_context(
        [r["utterance_text"] for r in rows],
        [r["interlocutor"] for r in rows],
        [r["transcript_id"] for r in rows],
        max(turns, 1),
        after,
    )
    keep = [i for i, r in enumerate(rows) if r["interlocutor"] == "therapist"]
    y = np.array([LABELS.index(rows[i]["main_therapist_behaviour"]) for i in keep])
    groups = np.array([int(rows[i]["transcript_id"]) for i in keep])
    return [inputs[i] for i in keep], y, groups


def splits(groups: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, dev, test) row indices: 80/20 by transcript, dev = 10% of train transcripts."""
    from sklearn.model_selection import GroupShuffleSplit

    idx = np.arange(len(groups))
    train, test = next(
        GroupShuffleSplit(1, test_size=0.2, random_state=seed).split(idx, groups=groups)
    )
    sub, dev = next(
        GroupShuffleSplit(1, test_size=0.1, random_state=seed).split(train, groups=groups[train])
    )
    return train[sub], train[dev], test


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    d = FinetuneSettings()  # the chosen recipe is the default configuration
    ap.add_argument("--context", choices=CONTEXT_MODES, default=d.context_mode)
    ap.add_argument(
        "--turns", type=int, default=d.context_turns, help="window: turns; around: each side"
    )
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--max-length", type=int, default=d.max_length)
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--warmup", type=float, default=d.warmup_ratio, help="share of all steps")
    ap.add_argument("--weight-decay", type=float, default=d.weight_decay)
    ap.add_argument("--patience", type=int, default=d.patience)
    ap.add_argument(
        "--class-weights", action=argparse.BooleanOptionalAction, default=d.class_weights
    )
    ap.add_argument("--pooling", choices=["cls", "mean"], default=d.pooling)
    ap.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--device", default=d.device)
    ap.add_argument("--quick", type=int, default=0, help="subsample N train messages (smoke)")
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument(
        "--log", default="/tmp/finetune_runs.jsonl", help='JSONL to append to; "" for none'
    )
    ap.add_argument("--progress", action="store_true", help="epoch progress on stderr")
    ap.add_argument(
        "--save-probs",
        type=Path,
        default=None,
        help="write dev and test probabilities to DIR/seed{N}.npz (for bench/ensemble_annomi.py)",
    )
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    settings = FinetuneSettings(
        context_mode=args.context,
        context_turns=1 if args.context == "previous" else args.turns,
        max_length=args.max_length,
        epochs=args.epochs,
        lr=args.lr,
        warmup_ratio=args.warmup,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        patience=args.patience,
        seed=args.seed,
        device=args.device,
        class_weights=args.class_weights,
        pooling=args.pooling,
        label_smoothing=args.label_smoothing,
    )
    after = following_turns(settings.context_mode, settings.context_turns)
    inputs, y, groups = load_annomi(args.data, settings.context_turns, after)
    train, dev, test = splits(groups)
    if args.quick:
        rng = np.random.default_rng(0)
        train = np.sort(rng.choice(train, min(args.quick, len(train)), replace=False))
        dev = np.sort(rng.choice(dev, min(max(args.quick // 4, 8), len(dev)), replace=False))
        test = np.sort(rng.choice(test, min(max(args.quick // 2, 8), len(test)), replace=False))

    def pick(ix: np.ndarray) -> list[ModelInput]:
        return [inputs[i] for i in ix]

    last = [0.0]

    def progress(msg: str, frac: float) -> None:
        if "dev" in msg or frac - last[0] >= 0.05:
            last[0] = frac
            print(f"[{time.strftime('%H:%M:%S')}] {msg} {frac:.0%}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    clf = FinetuneClassifier(LABELS, settings).fit(
        pick(train), y[train], pick(dev), y[dev], progress if args.progress else None
    )
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    logits = clf.predict_logits(pick(test))
    predict_s = time.perf_counter() - t0

    from sklearn.metrics import accuracy_score, f1_score

    pred = logits.argmax(1)
    if args.save_probs:
        args.save_probs.mkdir(parents=True, exist_ok=True)
        np.savez(
            args.save_probs / f"seed{settings.seed}.npz",
            dev=clf.predict_proba(pick(dev)),
            test=clf.predict_proba(pick(test)),
            y_dev=y[dev],
            y_test=y[test],
        )
    per_class = f1_score(y[test], pred, labels=range(len(LABELS)), average=None, zero_division=0)
    config = {k: v for k, v in asdict(settings).items() if k != "model_path"}
    result = {
        "bench": "finetune_annomi",
        "config": config,
        "quick": args.quick,
        "test_macro_f1": round(float(f1_score(y[test], pred, average="macro")), 4),
        "test_accuracy": round(float(accuracy_score(y[test], pred)), 4),
        "test_f1_per_class": {
            lab: round(float(v), 4) for lab, v in zip(LABELS, per_class, strict=True)
        },
        "dev_macro_f1_per_epoch": [round(v, 4) for v in clf.dev_history],
        "epochs_run": clf.epochs_run,
        "best_epoch": clf.best_epoch,
        "train_seconds": round(train_s, 1),
        "predict_seconds": round(predict_s, 1),
        "n": {"train": len(train), "dev": len(dev), "test": len(test)},
        "machine": f"{platform.machine()} {os.cpu_count()} cpus, device {clf.device}",
    }
    print(json.dumps(result))
    if args.log:
        with Path(args.log).open("a") as f:
            f.write(json.dumps(result) + "\n")
    return result


if __name__ == "__main__":
    main()
