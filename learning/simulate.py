"""Simulated active learning: the file's own labels are the oracle. Learning curves per
learner and strategy (mean ± sd over seeds), area under the curve, the labels each needs to
reach random's score at the largest budget (and the saving), labels to reach a target."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from learning.classifiers import EmbedClassifier
from learning.metrics import evaluate
from learning.self_training import self_train
from learning.strategies import select

ProgressFn = Callable[[str, float], None]
BASELINE = "random"
"""Every strategy is judged against random sampling with the same learner."""


@dataclass(frozen=True)
class SimulationData:
    """Features and labels of labelled messages, with their conversations (for grouping)."""

    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    labels: list[str]
    embeddings: np.ndarray | None = None
    texts: list[str] | None = None
    """The messages' texts, row for row (for learners that need more than vectors)."""


Scorer = Callable[[np.ndarray], np.ndarray]
"""A fitted learner: probabilities (rows, techniques) for rows of the simulation's data."""


def _embed_learner(
    data: SimulationData,
    train: np.ndarray,
    seed: int,
    unlabelled: np.ndarray,
    *,
    pseudo: bool = True,
) -> Scorer:
    """The round learner: the embedding head, plus the lexical head when texts are known,
    refitted with pseudo-labels of the `unlabelled` rows as a round does
    (learning.self_training) unless `pseudo` is False."""
    counts = _counts(data)
    clf = EmbedClassifier(data.labels, calibrate=False, seed=seed).fit(
        data.x[train], data.y[train], counts[train] if counts is not None else None
    )
    if pseudo:
        clf = self_train(clf, data.x, counts, train, data.y[train], unlabelled)
    if counts is None:
        return lambda rows: np.asarray(clf.predict_proba(data.x[rows]))
    return lambda rows: np.asarray(clf.predict_proba(data.x[rows], counts[rows]))


_COUNTS: list[tuple[SimulationData, Any]] = []


def _counts(data: SimulationData) -> Any:
    """The data's n-gram counts (computed once per simulation's data), or None without texts."""
    if data.texts is None:
        return None
    if not _COUNTS or _COUNTS[0][0] is not data:
        from learning.lexical import LexicalSpec

        _COUNTS[:] = [(data, LexicalSpec().transform(data.texts).tocsr())]
    return _COUNTS[0][1]


def _embed_gold_only(
    data: SimulationData, train: np.ndarray, seed: int, unlabelled: np.ndarray
) -> Scorer:
    return _embed_learner(data, train, seed, unlabelled, pseudo=False)


LEARNERS: dict[str, Callable[[SimulationData, np.ndarray, int, np.ndarray], Scorer]] = {
    "embed": _embed_learner,
    "embed-gold-only": _embed_gold_only,
}
"""Round learners by name: fit(data, training rows, seed, unlabelled pool rows) -> a scorer
of rows. `embed` is the app's round learner; `embed-gold-only` the same without
pseudo-labels (learning.self_training). A learner that needs more than the vectors (n-gram
counts, say) reads `data.texts`."""


def grouped_split(
    groups: np.ndarray, test_share: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Conversation-grouped train/test indices (scikit-learn's GroupShuffleSplit)."""
    from sklearn.model_selection import GroupShuffleSplit

    splitter = GroupShuffleSplit(n_splits=1, test_size=test_share, random_state=seed)
    train, test = next(splitter.split(np.zeros(len(groups)), groups=groups))
    return train, test


def _fit_eval(
    data: SimulationData,
    train: np.ndarray,
    test: np.ndarray,
    seed: int,
    learner: str = "embed",
    unlabelled: np.ndarray | None = None,
) -> float:
    """Macro-F1 on `test` of the learner fitted on `train` (and the `unlabelled` pool rows:
    none when every label is used)."""
    rest = unlabelled if unlabelled is not None else np.zeros(0, dtype=np.int64)
    score = LEARNERS[learner](data, train, seed, rest)
    return float(evaluate(data.y[test], score(test), data.labels)["macro_f1"])


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
    learner: str = "embed",
    on_budget: Callable[[], None] | None = None,
) -> list[float]:
    """Macro-F1 on a held-out conversation split at each label budget. `split` fixes the
    (train pool, test) indices; by default each seed draws its own grouped split.
    `on_budget` is called after each budget's score (a unit of progress)."""
    train_pool, test = split if split is not None else grouped_split(data.groups, test_share, seed)
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(train_pool, size=min(initial, len(train_pool)), replace=False))
    make = LEARNERS[learner]
    scores: list[float] = []
    for budget in sorted(budgets):
        while len(labelled) < min(budget, len(train_pool)):
            known = np.asarray(labelled)
            if len(set(data.y[known].tolist())) < 2:
                rest = np.setdiff1d(train_pool, known)
                labelled.extend(rng.choice(rest, size=min(step, len(rest)), replace=False).tolist())
                continue
            candidates = np.setdiff1d(train_pool, known)
            score = make(data, known, seed, candidates)
            proba = np.zeros((len(data.y), len(data.labels)))
            proba[candidates] = score(candidates)
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
        known = np.asarray(labelled)
        rest = np.setdiff1d(train_pool, known)
        scores.append(_fit_eval(data, known, test, seed, learner, rest))
        if on_budget:
            on_budget()
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


def _summary(scores: np.ndarray, budgets: list[int], target: float | None) -> dict[str, Any]:
    means = scores.mean(axis=0)
    span = max(budgets) - min(budgets) or 1
    row: dict[str, Any] = {
        "macro_f1": scores.tolist(),
        "mean": means.round(4).tolist(),
        "sd": scores.std(axis=0, ddof=1 if len(scores) > 1 else 0).round(4).tolist(),
        "auc": round(float(np.trapezoid(means, budgets) / span), 4)
        if len(budgets) > 1
        else float(means[0]),
    }
    if target is not None:
        row["labels_to_target"] = labels_to_reach(budgets, means.tolist(), target)
    return row


def simulate(
    data: SimulationData,
    strategies: Sequence[str],
    budgets: Sequence[int],
    seeds: Sequence[int],
    *,
    target: float | None = None,
    step: int = 50,
    split: tuple[np.ndarray, np.ndarray] | None = None,
    progress: ProgressFn | None = None,
    learners: Sequence[str] = ("embed",),
) -> dict[str, Any]:
    """Learning curves for each learner and strategy, plus the all-labels ceiling per seed.

    Random sampling always runs (added when not asked for): each row says how many labels
    its mean curve needs to reach random's mean score at the largest budget
    (`labels_to_random`, None when it never does) and the share of the largest budget that
    saves (`saving_vs_random`: 0.25 = a quarter fewer labels; negative = more). Rows are keyed
    by strategy, or by "learner/strategy" when more than one learner runs. Progress counts
    work units: one per learner x strategy x seed x budget."""
    budgets = sorted(budgets)
    strategies = list(dict.fromkeys([*strategies, BASELINE]))
    unknown = [name for name in learners if name not in LEARNERS]
    if unknown:
        from learning.strategies import StrategyError

        raise StrategyError(
            f"unknown learner {unknown[0]!r}; known learners: {', '.join(LEARNERS)}"
        )
    # The baseline first, so every other row can be compared with it as it lands.
    order = [BASELINE, *(s for s in strategies if s != BASELINE)]
    total = len(learners) * len(order) * len(seeds) * len(budgets)
    result: dict[str, Any] = {
        "budgets": budgets,
        "seeds": list(seeds),
        "target": target,
        "learners": list(learners),
        "baseline": BASELINE,
        "strategies": {},
    }
    done = 0
    for learner in learners:
        for name in order:
            per_seed = []
            for seed in seeds:

                def tick(learner: str = learner, name: str = name, seed: int = seed) -> None:
                    nonlocal done
                    done += 1
                    if progress:
                        progress(
                            f"simulating {learner}/{name} seed {seed}: {done}/{total} "
                            "(learner x strategy x seed x budget)",
                            done / total,
                        )

                per_seed.append(
                    curve(
                        data,
                        name,
                        budgets,
                        seed,
                        step=step,
                        split=split,
                        learner=learner,
                        on_budget=tick,
                    )
                )
            summary = _summary(np.asarray(per_seed), budgets, target)
            row = {"learner": learner, "strategy": name, **summary}
            key = name if len(learners) == 1 else f"{learner}/{name}"
            result["strategies"][key] = row
    _compare_with_baseline(result, budgets)
    full = {
        learner: [
            _fit_eval(data, *(split or grouped_split(data.groups, 0.2, s)), s, learner)
            for s in seeds
        ]
        for learner in learners
    }
    first = full[learners[0]]
    result["all_labels"] = {"mean": round(float(np.mean(first)), 4), "per_seed": first}
    if len(learners) > 1:
        result["all_labels"]["per_learner"] = {
            k: {"mean": round(float(np.mean(v)), 4), "per_seed": v} for k, v in full.items()
        }
    # Rows in the order asked for, the baseline where it was asked (or last).
    keys = [s if len(learners) == 1 else f"{lr}/{s}" for lr in learners for s in strategies]
    result["strategies"] = {k: result["strategies"][k] for k in keys}
    return result


def _compare_with_baseline(result: dict[str, Any], budgets: list[int]) -> None:
    """Add labels_to_random and saving_vs_random to every row (against the same learner)."""
    rows = result["strategies"]
    largest = budgets[-1]
    for row in rows.values():
        base = next(
            r for r in rows.values() if r["strategy"] == BASELINE and r["learner"] == row["learner"]
        )
        reference = base["mean"][-1]
        reach = labels_to_reach(budgets, row["mean"], reference)
        row["random_at_largest"] = reference
        row["labels_to_random"] = None if reach is None else round(reach, 1)
        row["saving_vs_random"] = None if reach is None else round(1 - reach / largest, 4)


def plot(result: dict[str, Any], width: int = 80, height: int = 20, colour: bool = True) -> str:
    """The learning curves as a terminal plot (plotext), returned as text; without colour
    codes when `colour` is off (output that is not a terminal)."""
    import plotext as plt

    plt.clear_figure()
    plt.plotsize(width, height)
    for j, (name, row) in enumerate(result["strategies"].items()):
        # Without colour, a marker of its own tells each curve apart.
        marker = "dot" if colour else MARKERS[j % len(MARKERS)]
        plt.plot(result["budgets"], row["mean"], label=name, marker=marker)
    if result.get("target") is not None:
        plt.hline(result["target"])
    plt.title("macro-F1 by labels (mean over seeds)")
    plt.xlabel("labels")
    text = str(plt.build())
    return text if colour else str(plt.uncolorize(text))


MARKERS = ("o", "x", "+", "*", "#", "@", "%", "=", "^", "~")
