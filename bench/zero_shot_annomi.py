"""The codebook's zero-shot model (v0) on AnnoMI: macro-F1 of nearest-technique assignment
with no labels at all. Prints JSON.

    python bench/zero_shot_annomi.py [--cache /tmp/annomi_own.npz]

Codebook: seeds/codebooks/annomi.toml; gold: main_therapist_behaviour of the therapist
messages of ../shared/data/annomi/AnnoMI-simple.csv. Split: conversation-grouped 80/20 by
transcript (seed 0, as bench/al_annomi.py). Nothing is trained: the prototype recipe
(definition's first sentence or all of it, the definition's weight against the examples)
and the softmax temperature (by log-loss) are chosen on the 80% (dev), and macro-F1 and
ECE are reported on the 20% (test).

Measured 2026-12-01 (bundled MiniLM, 2 shared CPU cores, encoding 140 s): on dev the
definition's weight 0 / 0.25 / 0.5 / 0.75 / 1 gave macro-F1 0.522 / 0.507 / 0.462 / 0.365 /
0.243 (the first sentence or the whole definition: within 0.01); on the demo corpus with
the mi codebook (a second dev set, 12 techniques) 0.314 / 0.340 / 0.313 / - / 0.148, so
0.25 is shipped. Temperature by dev log-loss: 0.1. Shipped (first sentence, weight 0.25,
T = 0.1): dev 0.508, **test macro-F1 0.514**, accuracy 0.583, ECE 0.068 (per technique F1:
reflection 0.511, question 0.488, therapist_input 0.314, other 0.745). Each technique of
the annomi codebook has 3 examples.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from finetune_annomi import DATA, LABELS, load_annomi  # noqa: E402

import seeds  # noqa: E402
from learning.calibration import softmax  # noqa: E402
from learning.codebook_model import TEMPERATURE  # noqa: E402
from learning.encoders import Encoder  # noqa: E402
from learning.metrics import evaluate  # noqa: E402
from learning.zero_shot import DEFINITION_WEIGHT, FIRST_SENTENCE, prototypes  # noqa: E402
from store import load_codebook_file  # noqa: E402

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
TEMPERATURES = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.2)


def log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    return float(-np.log(np.clip(proba[np.arange(len(y)), y], 1e-12, 1)).mean())


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cache", type=Path, default=None, help="vector cache (outside the repo)")
    args = ap.parse_args()
    inputs, y, groups = load_annomi(DATA, 0)
    encoder = Encoder()
    started = time.perf_counter()
    if args.cache is not None and args.cache.exists():
        x = np.load(args.cache)
    else:
        x = encoder.encode([i.text for i in inputs])
        if args.cache is not None:
            np.save(args.cache, x)
    encode_s = time.perf_counter() - started
    from sklearn.model_selection import GroupShuffleSplit

    dev, test = next(GroupShuffleSplit(1, test_size=0.2, random_state=0).split(x, groups=groups))
    spec = load_codebook_file(seeds.CODEBOOKS / "annomi.toml")
    book = spec  # prototypes() reads name, definition and examples, which a spec has too
    order = [t.key for t in book.techniques]
    remap = np.array([order.index(k) for k in LABELS])
    y = remap[y]  # AnnoMI's label order -> the codebook's
    grid = []
    for first in (True, False):
        for w in WEIGHTS:
            proto = prototypes(book, encoder, w, first)
            cos = x @ proto.T
            f1 = evaluate(y[dev], softmax(cos[dev], TEMPERATURE), order)["macro_f1"]
            grid.append({"first_sentence": first, "definition_weight": w, "dev_macro_f1": f1})
    best = max(grid, key=lambda r: r["dev_macro_f1"])
    shipped_cos = x @ prototypes(book, encoder).T  # the defaults in learning/zero_shot.py
    temps = {t: log_loss(softmax(shipped_cos[dev], t), y[dev]) for t in TEMPERATURES}
    t_best = min(temps, key=temps.__getitem__)
    result = {
        "data": "AnnoMI-simple therapist messages, annomi codebook, grouped 80/20 (seed 0)",
        "messages": {"dev": int(len(dev)), "test": int(len(test))},
        "encode_s": round(encode_s, 1),
        "grid_dev": grid,
        "best_on_dev": best,
        "temperature_by_dev_log_loss": {"best": t_best, "log_loss": temps},
        "shipped": {
            "first_sentence": FIRST_SENTENCE,
            "definition_weight": DEFINITION_WEIGHT,
            "temperature": TEMPERATURE,
        },
    }
    for split, rows in (("dev", dev), ("test", test)):
        m = evaluate(y[rows], softmax(shipped_cos[rows], TEMPERATURE), order)
        result[f"shipped_{split}"] = {
            "macro_f1": round(m["macro_f1"], 4),
            "accuracy": round(m["accuracy"], 4),
            "ece": round(m["ece"], 4),
            "per_technique_f1": {k: round(v["f1"], 3) for k, v in m["per_technique"].items()},
        }
    result["machine"] = platform.platform()
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
