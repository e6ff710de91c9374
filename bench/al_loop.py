"""The default learning loop simulated on labelled data: the round learner (embedding head +
lexical head) and a query strategy, the file's labels as the oracle. Used by al_annomi.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from learning.classifiers import EmbedClassifier
from learning.metrics import evaluate
from learning.self_training import self_train
from learning.strategies import select
from learning.tuned import refresh_due


def fit_learner(x, counts, y, labels, train, seed: int, lexical: bool, unlabelled) -> Any:
    """The round learner on the `train` rows, refitted with pseudo-labels of the `unlabelled`
    rows as a round does (learning.self_training; none when `unlabelled` is None)."""
    clf = EmbedClassifier(labels, calibrate=False, seed=seed).fit(
        x[train], y[train], counts[train] if lexical else None
    )
    if unlabelled is None:
        return clf
    return self_train(clf, x, counts if lexical else None, train, y[train], unlabelled)


def fit_score(
    x, counts, y, labels, train, test, seed: int, lexical: bool = True, unlabelled=None
) -> float:
    clf = fit_learner(x, counts, y, labels, train, seed, lexical, unlabelled)
    proba = clf.predict_proba(x[test], counts[test] if lexical else None)
    return float(evaluate(y[test], proba, labels)["macro_f1"])


def curve(
    x: np.ndarray,
    counts: Any,
    y: np.ndarray,
    labels: list[str],
    embeddings: np.ndarray,
    pool: np.ndarray,
    test: np.ndarray,
    strategy: str,
    budgets: Sequence[int],
    seed: int,
    *,
    step: int = 50,
    initial: int = 20,
    lexical: bool = True,
    refresher: Callable[[np.ndarray], np.ndarray] | None = None,
    refresh_from: int = 400,
    self_training: bool = True,
) -> list[float]:
    """Macro-F1 on `test` at each budget; `initial` random labels, then `step` per round;
    the learner self-trains on the unlabelled pool as a round does, unless `self_training`
    is False.

    With `refresher` (labelled rows -> a refreshed encoder's features of every row), the
    app's encoder refresh runs in the loop on its schedule (learning.tuned.refresh_due): a
    round with L labels that finds it due starts one on those L labels, and it joins the
    features from the next round on (it runs while the expert labels that round's batch)."""
    rng = np.random.default_rng(seed)
    labelled = [int(i) for i in rng.choice(pool, size=initial, replace=False)]
    scores = []
    base, tuned_on = x, None
    for budget in sorted(budgets):
        while len(labelled) < budget:
            known = np.asarray(labelled)
            fresh = None
            if refresher is not None and refresh_due(len(known), tuned_on, refresh_from):
                fresh = refresher(known)
            candidates = np.setdiff1d(pool, known)
            proba = np.zeros((len(y), len(labels)))
            if len(set(y[known].tolist())) >= 2:
                rest = candidates if self_training else None
                clf = fit_learner(x, counts, y, labels, known, seed, lexical, rest)
                proba[candidates] = clf.predict_proba(
                    x[candidates], counts[candidates] if lexical else None
                )
            else:
                proba[:] = 1.0 / len(labels)
            n = min(step, budget - len(labelled))
            labelled.extend(
                select(
                    strategy,
                    proba,
                    candidates,
                    known,
                    y[known],
                    n,
                    embeddings=embeddings,
                    seed=seed + len(labelled),
                )
            )
            if fresh is not None:  # ready for the next round
                x, tuned_on = np.hstack([base, fresh]), len(known)
        known = np.asarray(labelled)
        rest = np.setdiff1d(pool, known) if self_training else None
        scores.append(fit_score(x, counts, y, labels, known, test, seed, lexical, rest))
    return scores


def labels_to_reach(budgets: Sequence[int], means: Sequence[float], target: float) -> float | None:
    """Labels at which the mean curve first reaches `target` (linear between budgets)."""
    points = list(zip(budgets, means, strict=True))
    for (b0, m0), (b1, m1) in zip([(0, 0.0), *points], points, strict=False):
        if m1 >= target:
            if m0 >= target or m1 == m0:
                return float(b1)
            return round(float(b0 + (target - m0) * (b1 - b0) / (m1 - m0)), 1)
    return None


def summarise(budgets: Sequence[int], per_strategy: dict[str, list[list[float]]]) -> dict:
    """Mean, sd, AUC per strategy; against random: labels to reach random's score at the
    largest budget (and as a share of it), budgets >= 100 where it is below random by more
    than one standard error (of the difference of means)."""
    out: dict[str, Any] = {}
    rand = np.asarray(per_strategy.get("random", []))
    span = max(budgets) - min(budgets)
    for name, runs in per_strategy.items():
        s = np.asarray(runs)
        mean, sd = s.mean(axis=0), s.std(axis=0, ddof=1)
        row: dict[str, Any] = {
            "mean": mean.round(4).tolist(),
            "sd": sd.round(4).tolist(),
            "auc": round(float(np.trapezoid(mean, budgets) / span), 4),
        }
        if len(rand) and name != "random":
            target = float(rand.mean(axis=0)[-1])
            need = labels_to_reach(budgets, mean.tolist(), target)
            se = np.sqrt(sd**2 / len(s) + rand.std(axis=0, ddof=1) ** 2 / len(rand))
            below = [
                b
                for b, m, r, e in zip(budgets, mean, rand.mean(axis=0), se, strict=True)
                if b >= 100 and m < r - e
            ]
            row.update(
                labels_to_random_final=need,
                share_of_final_budget=round(need / max(budgets), 3) if need else None,
                below_random_by_1se_at=below,
            )
        out[name] = row
    return out
