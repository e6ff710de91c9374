"""When to stop labelling: agreement of consecutive models' predictions (small-text's
KappaAverage criterion), computed on a round's arrays without a per-message loop."""

from __future__ import annotations

from typing import Any

import numpy as np

from learning.pool import Pool
from store import Repository, agreement
from store.artifacts import ModelVersionView

KAPPA_WINDOW = 3
KAPPA_STOP = 0.99
"""small-text's KappaAverage defaults: stop when the mean agreement of consecutive models'
predictions over the last rounds reaches 0.99."""


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float:
    """Cohen's kappa of two label-code arrays (store.agreement's), 1.0 when the two models
    agree everywhere (stopping reads full agreement as stable, even on a single class)."""
    if len(a) == 0 or bool((a == b).all()):
        return 1.0
    return agreement.cohen_kappa(a, b)


def kappa_stats(
    repo: Repository, pool: Pool, proba: np.ndarray, parent: ModelVersionView | None
) -> dict[str, Any]:
    """Agreement of this model's and the previous model's top predictions on unlabelled
    messages, its average over the last rounds, and whether that suggests stopping."""
    none = {"kappa_vs_previous": None, "kappa_average": None, "stop_suggested": False}
    if parent is None or pool.multi_label:
        return none
    before_ids, before = repo.artifacts.top_label_codes(parent.id, pool.labels)
    if not len(before_ids):
        return none
    unlabelled = pool.unlabelled_indices
    ids = pool.message_ids[unlabelled]
    order = np.argsort(before_ids, kind="stable")
    at = order[np.minimum(np.searchsorted(before_ids[order], ids), len(order) - 1)]
    known = before_ids[at] == ids
    if int(known.sum()) < 2:
        return none
    then = before[at[known]]
    now = proba[unlabelled[known]].argmax(axis=1)
    kappa = cohen_kappa(now, then)
    history = [
        r.stats["kappa_vs_previous"]
        for r in repo.artifacts.rounds()
        if r.stats.get("kappa_vs_previous") is not None
    ][-(KAPPA_WINDOW - 1) :] + [kappa]
    average = float(np.mean(history))
    return {
        "kappa_vs_previous": kappa,
        "kappa_average": average,
        "stop_suggested": len(history) >= KAPPA_WINDOW and average >= KAPPA_STOP,
    }
