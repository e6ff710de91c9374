"""Simulated active learning: the file's own labels are the oracle. Learning curves per
strategy (mean ± sd over seeds), area under the curve, labels needed to reach a target."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from learning.classifiers import EmbedClassifier
from learning.metrics import evaluate
from learning.strategies import select

ProgressFn = Callable[[str, float], None]


@dataclass(frozen=True)
class SimulationData:
    """Features and labels of labelled messages, with their conversations (for grouping)."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    labels: list[str]
    embeddings: np.ndarray | None = None


def grouped_split(
    groups: np.ndarray, test_share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Conversation-grouped train/test indices (scikit-learn's GroupShuffleSplit)."""
    from sklearn.model_selection import GroupShuffleSplit

    splitter = GroupShuffleSplit(n_splits=1, test_size=test_share, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(groups)), groups=groups))
    return train, test


def _fit_eval(data: SimulationData, train: np.ndarray, test: np.ndarray, seed: int) -> float:
    clf = EmbedClassifier(data.labels, calibrate=False, seed=seed).fit(data.x[train], data.y[train])
    return float(evaluate(data.y[test], clf.predict_proba(data.x[test]), data.labels)["macro_f1"])


def curve(
    data: SimulationData,
    strategy: str,
    budgets: Sequence[int],
    seed: int,
    *,
    step: int = 50,
    initial: int = 20,
    test_share: float = 0.2,
    split: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[float]:
    """Macro-F1 on a held-out conversation split at each label budget. `split` fixes the
    (train pool, test) indices; by default each seed draws its own grouped split."""
    train_pool, test = split if split is not None else grouped_split(data.groups, test_share, seed)
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(train_pool, size=min(initial, len(train_pool)), replace=False))
    scores: list[float] = []
    for budget in sorted(budgets):
        while len(labelled) < min(budget, len(train_pool)):
            known = np.asarray(labelled)
            if len(set(data.y[known].tolist())) < 2:
                rest = np.setdiff1d(train_pool, known)
                labelled.extend(rng.choice(rest, size=min(step, len(rest)), replace=False).tolist())
                continue
            clf = EmbedClassifier(data.labels, calibrate=False, seed=seed).fit(
                data.x[known], data.y[known]
            )
            candidates = np.setdiff1d(train_pool, known)
            proba = np.zeros((len(data.y), len(data.labels)))
            proba[candidates] = clf.predict_proba(data.x[candidates])
            n = min(step, budget - len(labelled))
            labelled.extend(
                select(
                    strategy,
                    proba,
                    candidates,
                    known,
                    data.y[known],
                    n,
                    embeddings=data.embeddings,
                    seed=seed + len(labelled),
                )
            )
        scores.append(_fit_eval(data, np.asarray(labelled), test, seed))
    return scores


def labels_to_reach(budgets: Sequence[int], means: Sequence[float], target: float) -> float | None:
    """Labels at which the mean curve first reaches `target` (linear between budgets)."""
    points = list(zip(budgets, means, strict=True))
    for (b0, m0), (b1, m1) in zip([(0, 0.0), *points], points, strict=False):
        if m1 >= target:
            if m0 >= target or m1 == m0:
                return float(b1)
            return float(b0 + (target - m0) * (b1 - b0) / (m1 - m0))
    return None


def simulate(
    data: SimulationData,
    strategies: Sequence[str],
    budgets: Sequence[int],
    seeds: Sequence[int],
    *,
    target: float = 0.70,
    step: int = 50,
    split: tuple[np.ndarray, np.ndarray] | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Learning curves for each strategy, plus the all-labels ceiling per seed."""
    budgets = sorted(budgets)
    runs = len(strategies) * len(seeds)
    result: dict[str, Any] = {
        "budgets": budgets,
        "seeds": list(seeds),
        "target": target,
        "strategies": {},
    }
    done = 0
    if progress and strategies:
        progress(f"simulating {strategies[0]}: 0 of {runs} runs", 0.0)
    for name in strategies:
        per_seed = []
        for seed in seeds:
            per_seed.append(curve(data, name, budgets, seed, step=step, split=split))
            done += 1
            if progress:
                progress(f"simulating {name}: {done} of {runs} runs", done / runs)
        scores = np.asarray(per_seed)
        means = scores.mean(axis=0)
        span = max(budgets) - min(budgets) or 1
        result["strategies"][name] = {
            "macro_f1": scores.tolist(),
            "mean": means.round(4).tolist(),
            "sd": scores.std(axis=0, ddof=1 if len(seeds) > 1 else 0).round(4).tolist(),
            "auc": round(float(np.trapezoid(means, budgets) / span), 4)
            if len(budgets) > 1
            else float(means[0]),
            "labels_to_target": labels_to_reach(budgets, means.tolist(), target),
        }
    full = [_fit_eval(data, *(split or grouped_split(data.groups, 0.2, s)), s) for s in seeds]
    result["all_labels"] = {"mean": round(float(np.mean(full)), 4), "per_seed": full}
    return result


def plot(result: dict[str, Any], width: int = 80, height: int = 20) -> str:
    """The learning curves as a terminal plot (plotext), returned as text."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    for name, row in result["strategies"].items():
        plt.plot(result["budgets"], row["mean"], label=name, marker="dot")
    plt.hline(result["target"])
    plt.title("macro-F1 by labels (mean over seeds)")
    plt.xlabel("labels")
    return str(plt.build())
