"""Self-training beside active learning (learning.self_training): which pool messages become
pseudo-labels, the refit that uses them, and a round that records them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from learning.classifiers import EmbedClassifier
from learning.self_training import (
    PSEUDO_CONFIDENCE,
    SELF_TRAINING_FROM,
    pseudo_labels,
    self_train,
)
from learning.settings import LearningSettings
from store import WorkspaceError, load_workspace
from tui.demo import build_demo

SURE = 8.0
"""A logit margin that makes a probability above PSEUDO_CONFIDENCE among three techniques."""


def logits_row(technique: int, margin: float) -> list[float]:
    row = [0.0, 0.0, 0.0]
    row[technique] = margin
    return row


def test_pseudo_labels_are_the_surest_within_each_techniques_cap() -> None:
    """Gold labels 60 / 30 / 10: technique 0 has 70 sure rows (the 60 surest are taken),
    technique 1 has 5 sure rows and 3 unsure ones (the 5), technique 2 has 20 sure rows
    (the 10 surest)."""
    rows = (
        [logits_row(0, SURE + i / 100) for i in range(70)]
        + [logits_row(1, SURE) for _ in range(5)]
        + [logits_row(1, 2.0) for _ in range(3)]
        + [logits_row(2, SURE + i / 100) for i in range(20)]
    )
    logits = np.asarray(rows)
    assert np.exp(SURE) / (np.exp(SURE) + 2) >= PSEUDO_CONFIDENCE > np.exp(2) / (np.exp(2) + 2)
    gold = np.repeat([0, 1, 2], [60, 30, 10])
    positions, labels = pseudo_labels(logits, gold, 3)
    expected = list(range(10, 70)) + list(range(70, 75)) + list(range(78 + 10, 98))
    assert positions.tolist() == expected
    assert labels.tolist() == [0] * 60 + [1] * 5 + [2] * 10


def test_no_pseudo_labels_below_the_first_gold_count() -> None:
    logits = np.asarray([logits_row(0, SURE)] * 10)
    gold = np.zeros(SELF_TRAINING_FROM - 1, dtype=int)
    positions, labels = pseudo_labels(logits, gold, 3)
    assert positions.size == 0 and labels.size == 0


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated clusters of 200 points each in 8 dimensions."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 8) * 6
    y = np.repeat([0, 1, 2], 200)
    return centres[y] + rng.normal(size=(600, 8)), y


def test_self_train_refits_on_gold_plus_the_pseudo_labels() -> None:
    """The refit has seen exactly the pseudo-labels pseudo_labels picks from the model's
    own logits, keeps the model's temperature, and predicts the clusters as well."""
    x, y = blobs()
    gold = np.arange(0, 600, 5)  # 120 gold labels, 40 a cluster
    unlabelled = np.setdiff1d(np.arange(600), gold)
    clf = EmbedClassifier(["a", "b", "c"], calibrate=False, seed=0).fit(x[gold], y[gold])
    clf.temperature = 1.7
    refit = self_train(clf, x, None, gold, y[gold], unlabelled)
    positions, labels = pseudo_labels(clf.logits(x[unlabelled]), y[gold], 3)
    assert refit is not clf and refit.pseudo_labelled == len(positions) == 120
    assert (labels == y[unlabelled][positions]).all()  # separated clusters: all right
    assert refit.temperature == 1.7 and refit.pseudo_labelled > clf.pseudo_labelled == 0
    assert (refit.predict_proba(x).argmax(axis=1) == y).mean() > 0.99


def test_self_train_leaves_small_or_fully_labelled_models_alone() -> None:
    x, y = blobs()
    few = np.arange(0, 600, 10)  # 60 gold labels: too few
    clf = EmbedClassifier(["a", "b", "c"], calibrate=False).fit(x[few], y[few])
    assert self_train(clf, x, None, few, y[few], np.setdiff1d(np.arange(600), few)) is clf
    every = np.arange(600)
    clf = EmbedClassifier(["a", "b", "c"], calibrate=False).fit(x, y)
    assert self_train(clf, x, None, every, y, np.zeros(0, dtype=int)) is clf


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('self_training = "no"', "self_training must be true or false"),
        ("pseudo_confidence = 0", "pseudo_confidence must be above 0 and at most 1"),
        ("pseudo_confidence = 1.5", "pseudo_confidence must be above 0 and at most 1"),
    ],
)
def test_bad_self_training_settings_are_settings_errors(
    tmp_path: Path, line: str, error: str
) -> None:
    ws = build_demo(tmp_path / "demo", train=False)
    config = ws.config_path.read_text()
    ws.config_path.write_text(config.replace("[learning]\n", f"[learning]\n{line}\n"))
    with pytest.raises(WorkspaceError, match=error):
        LearningSettings.from_workspace(load_workspace(ws.root))
