"""Held-out metrics: macro-F1, per-technique precision/recall/F1, confusion matrix, ECE."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def expected_calibration_error(proba: np.ndarray, y: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-class confidence, equal-width bins (0..1)."""
    if len(y) == 0:
        return float("nan")
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(ece)


def macro_f1(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Macro-F1 over the techniques present in the gold labels ``y`` (single-label codes
    0..k-1): the one definition every report, round and early stop uses."""
    from sklearn.metrics import precision_recall_fscore_support

    _p, _r, f, support = precision_recall_fscore_support(
        y, pred, labels=list(range(k)), zero_division=0
    )
    present = support > 0
    return float(f[present].mean()) if present.any() else float("nan")


def macro_f1_of_scores(y: np.ndarray, scores: np.ndarray, multi_label: bool) -> float:
    """Macro-F1 of raw scores (logits or probabilities' logits): argmax for single-label,
    score > 0 (probability > 0.5) per technique for multi-label (``y`` a 0/1 matrix)."""
    if multi_label:
        from sklearn.metrics import f1_score

        return float(f1_score(y, (scores > 0).astype(int), average="macro", zero_division=0))
    return macro_f1(y, scores.argmax(axis=1), scores.shape[1])


def evaluate(y: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Everything a maintainer needs to judge a single-label model on held-out messages."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    k = len(labels)
    pred = proba.argmax(axis=1)
    p, r, f, support = precision_recall_fscore_support(
        y, pred, labels=list(range(k)), zero_division=0
    )
    present = support > 0
    return {
        "n": int(len(y)),
        "accuracy": float((pred == y).mean()) if len(y) else float("nan"),
        "macro_f1": float(f[present].mean()) if present.any() else float("nan"),
        "per_technique": {
            label: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion": confusion_matrix(y, pred, labels=list(range(k))).tolist(),
        "ece": expected_calibration_error(proba, y),
    }


def evaluate_multilabel(y: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """Multi-label: per-technique and macro F1 at threshold 0.5."""
    from sklearn.metrics import precision_recall_fscore_support

    pred = (proba >= 0.5).astype(int)
    p, r, f, support = precision_recall_fscore_support(y, pred, zero_division=0)
    present = support > 0
    return {
        "n": int(len(y)),
        "macro_f1": float(f[present].mean()) if present.any() else float("nan"),
        "per_technique": {
            label: {
                "precision": float(p[i]),
                "recall": float(r[i]),
                "f1": float(f[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "subset_accuracy": float((pred == y).all(axis=1).mean()) if len(y) else float("nan"),
    }
