"""The encoder refresh (`techne refresh-encoder`) on AnnoMI: what the `finetune` backend's
fine-tuned encoder adds as the round's second feature extractor, and what one refresh
costs. Prints JSON.

    python bench/encoder_refresh_annomi.py [--folds 0,1,2] [--labels 400,800,1600]
        [--seeds 0] [--split dev|test]

--split dev (the default, for choosing): each fold of a conversation-grouped 7-fold split
of AnnoMI's training side, scored on the fold's held-out transcripts (test is not read).
--split test (reporting): the pool is the whole training side, scored on the test
transcripts; a label count above the pool's size means all of it.

For each label count: that many random labelled messages from the pool; the round learner
without a refresh (frozen MiniLM `around` vectors + lexical head); then MiniLM fine-tuned on
those labels (`finetune`'s default recipe), saved, and loaded back as a plain `Encoder`
folder (mean pooling, torch), whose vectors of the message and the turns before and after
replace (`tuned`) or join (`frozen+tuned`, what a refresh gives) the frozen ones under the
same heads. Costs: the fine-tuning's wall time, and the tuned encoder's messages per second
(what encoding a pool costs: a refresh encodes every pool message and its neighbours).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from al_annomi import around_vectors, embed_features  # noqa: E402
from finetune_annomi import DATA, LABELS, load_annomi, splits  # noqa: E402

from learning.classifiers import EmbedClassifier  # noqa: E402
from learning.encoders import Encoder  # noqa: E402
from learning.finetune import FinetuneClassifier, FinetuneSettings  # noqa: E402
from learning.lexical import LexicalSpec  # noqa: E402
from learning.metrics import evaluate  # noqa: E402

FOLDS = 7


def one_run(inputs, y, counts, frozen, pool, scored, n_labels: int, seed: int) -> dict:
    labelled = np.sort(np.random.default_rng(seed).choice(pool, n_labels, replace=False))
    rows = np.concatenate([labelled, scored])
    fit, test = np.arange(len(labelled)), np.arange(len(labelled), len(rows))

    def score(x: np.ndarray) -> float:
        clf = EmbedClassifier(LABELS, calibrate=False, seed=seed)
        clf.fit(x[fit], y[rows][fit], counts[rows][fit])
        proba = clf.predict_proba(x[test], counts[rows][test])
        return round(float(evaluate(y[scored], proba, LABELS)["macro_f1"]), 4)

    started = time.perf_counter()
    tuned_model = FinetuneClassifier(LABELS, FinetuneSettings(seed=seed))
    tuned_model.fit([inputs[i] for i in labelled], y[labelled])
    finetune_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        tuned_model.save(Path(folder))
        tuned, rate = around_vectors(Encoder(folder, runtime="torch"), inputs, rows)
    base = frozen[rows]
    return {
        "labels": n_labels,
        "frozen": score(base),
        "tuned": score(tuned),
        "frozen+tuned": score(np.hstack([base, tuned])),
        "finetune_s": round(finetune_s, 1),
        "tuned_encoder_messages_per_s": round(rate, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--folds", default="0,1,2", help=f"of {FOLDS} grouped folds")
    parser.add_argument("--labels", default="400,800,1600")
    parser.add_argument("--seeds", default="0", help="label draws (and fine-tuning seeds)")
    parser.add_argument(
        "--split",
        choices=["dev", "test"],
        default="dev",
        help="dev: the folds (for choosing); test: pool = training side, scored on test",
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/techne-annomi-embeddings.npz"))
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is missing: this benchmark reads AnnoMI from ../shared/data")
    from sklearn.model_selection import GroupKFold

    inputs, y, groups = load_annomi(DATA, 3, 1)
    train, dev, test = splits(groups, 0)
    side = np.concatenate([train, dev])  # the training side only
    frozen = embed_features(inputs, Encoder(), args.cache)["around"]
    counts = LexicalSpec().transform([i.text for i in inputs])
    folds = list(GroupKFold(FOLDS).split(side, groups=groups[side]))
    if args.split == "test":  # reporting only: what was chosen on dev, scored on test
        folds, args.folds = [(np.arange(len(side)), np.zeros(0, dtype=int))], "0"
    runs = []
    for seed in (int(v) for v in args.seeds.split(",")):
        for f in (int(v) for v in args.folds.split(",")):
            pool, scored = side[folds[f][0]], side[folds[f][1]] if args.split == "dev" else test
            for n in (min(int(v), len(pool)) for v in args.labels.split(",")):
                one = one_run(inputs, y, counts, frozen, pool, scored, n, seed)
                run = {"fold": f, "seed": seed, **one}
                print(json.dumps(run), file=sys.stderr, flush=True)
                runs.append(run)
    summary = {}
    for n in sorted({r["labels"] for r in runs}):
        at = [r for r in runs if r["labels"] == n]
        summary[str(n)] = {
            key: round(float(np.mean([r[key] for r in at])), 4)
            for key in ("frozen", "tuned", "frozen+tuned", "finetune_s")
        }
    report = {
        "benchmark": "encoder_refresh_annomi",
        "split": (
            f"dev: grouped {FOLDS}-fold over the training side, folds {args.folds}"
            if args.split == "dev"
            else "test: pool = the training side, scored on the test transcripts"
        ),
        "heads": "embedding + lexical (the round learner), macro-F1 on the fold's held out",
        "mean_by_labels": summary,
        "runs": runs,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
