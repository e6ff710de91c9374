"""Seed ensembles on AnnoMI from saved runs: each member's and each ensemble's macro-F1.

    for s in 0 1 2; do python bench/finetune_annomi.py --seed $s --save-probs runs/; done
    python bench/ensemble_annomi.py runs/

Reads the dev and test probabilities that `finetune_annomi.py --save-probs DIR` wrote per
seed (same split and recipe, only the seed differs) and prints JSON: dev and test
macro-F1 of every member, their mean and standard deviation, and of the ensembles of the
first k seeds (probabilities averaged, as learning/ensemble.py does), with the expected
calibration error of each ensemble's test probabilities (as they are, and after a
temperature fitted on dev). Whether to use an ensemble is
decided on dev; test is reported.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from learning import metrics  # noqa: E402
from learning.calibration import fit_temperature, softmax  # noqa: E402
from learning.metrics import expected_calibration_error  # noqa: E402


def calibrated_ece(
    dev: np.ndarray, y_dev: np.ndarray, test: np.ndarray, y_test: np.ndarray
) -> float:
    """ECE on test after a temperature fitted on dev (log-probabilities as logits, as a
    round calibrates an ensemble)."""
    t = fit_temperature(np.log(np.clip(dev, 1e-7, None)), y_dev)
    return expected_calibration_error(softmax(np.log(np.clip(test, 1e-7, None)), t), y_test)


def macro_f1(y: np.ndarray, proba: np.ndarray) -> float:
    """learning.metrics' macro-F1 (the one definition) of the probabilities' argmax."""
    return round(metrics.macro_f1(y, proba.argmax(1), proba.shape[1]), 4)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("runs", type=Path, help="folder of seedN.npz files")
    args = ap.parse_args(argv)
    files = sorted(args.runs.glob("seed*.npz"), key=lambda p: int(p.stem[4:]))
    if not files:
        sys.exit(f"{args.runs}: no seedN.npz files (run finetune_annomi.py --save-probs)")
    runs = [np.load(f) for f in files]
    y_dev, y_test = runs[0]["y_dev"], runs[0]["y_test"]
    for f, r in zip(files, runs, strict=True):
        if not (np.array_equal(r["y_dev"], y_dev) and np.array_equal(r["y_test"], y_test)):
            sys.exit(f"{f}: a different split from {files[0]}")
    members = [
        {
            "seed": int(f.stem[4:]),
            "dev": macro_f1(y_dev, r["dev"]),
            "test": macro_f1(y_test, r["test"]),
        }
        for f, r in zip(files, runs, strict=True)
    ]
    ensembles = []
    for k in range(1, len(runs) + 1):
        dev = np.mean([r["dev"] for r in runs[:k]], axis=0)
        test = np.mean([r["test"] for r in runs[:k]], axis=0)
        ensembles.append(
            {
                "members": k,
                "seeds": [m["seed"] for m in members[:k]],
                "dev": macro_f1(y_dev, dev),
                "test": macro_f1(y_test, test),
                "test_ece": round(float(expected_calibration_error(test, y_test)), 4),
                "test_ece_temperature_scaled": round(
                    float(calibrated_ece(dev, y_dev, test, y_test)), 4
                ),
            }
        )
    result = {
        "bench": "ensemble_annomi",
        "runs": str(args.runs),
        "n": {"dev": int(len(y_dev)), "test": int(len(y_test))},
        "members": members,
        "member_test_mean": round(float(np.mean([m["test"] for m in members])), 4),
        "member_test_sd": round(float(np.std([m["test"] for m in members], ddof=1)), 4)
        if len(members) > 1
        else None,
        "member_dev_mean": round(float(np.mean([m["dev"] for m in members])), 4),
        "ensembles": ensembles,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
