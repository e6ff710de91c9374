"""Self-training beside active learning: the round model is refitted on its gold labels plus
the pool messages it is surest of, labelled with its own prediction (pseudo-labels).

Uncertainty sampling labels the messages near the model's boundaries; the bulk of each
technique, which a random sample would have covered, stays unlabelled and the head learns
a skewed picture of it. Confident pseudo-labels give that bulk back at no expert cost
(Cost-Effective Active Learning, Wang et al., IEEE TCSVT 2017). Random labels already cover
the bulk, so the pseudo-labels add little to a random sample: the gain goes to the queue.

Chosen on AnnoMI dev only (grouped 5-fold cross-validation over the training side's
transcripts, 50 labels a round, bench/al_annomi.py's loop), mean macro-F1 of `auto` minus
random's at 200 / 400 / 800 / 1,200 / 1,600 labels, and the labels `auto` needs to reach
random's 1,600-label score. Seeds 0-3 (20 paired curves):

    pseudo-labels (confidence, share)   auto - random                    labels to random@1,600
    none                                +.013 +.011 +.008 +.005 +.001     1,460
    0.90, 1 x the technique's labels    +.016 +.006 +.012 +.008 +.007     1,173
    0.95, 1 x                           +.016 +.021 +.015 +.008 +.006     1,146
    0.99, 1 x  (adopted)                +.013 +.015 +.019 +.011 +.011     1,074

Confirmed on seeds 4-7 (20 fresh curves): 0.99 +.014 +.017 +.016 +.014 +.006 (1,037
labels), none +.013 +.012 +.005 +.007 +.001 (1,308). Over all 40, `auto` itself gained
+.002 / +.008 / +.002 / +.005 at 400 / 800 / 1,200 / 1,600 labels against no
pseudo-labels, and random lost .002-.005. With pseudo-labels, seeds 0-3, other queues:
smallest margin first +.022 +.018 +.018 +.012 +.009 (1,045 labels), weight (1 - margin)^2
+.015 +.012 +.014 +.008 +.007 (1,218): no clear gain over `auto`, which stays. AnnoMI test:
README (Learning).
"""

from __future__ import annotations

from typing import Any

import numpy as np

SELF_TRAINING_FROM = 100
"""Gold labels below which a round uses none: a model trained on fewer is too often
confidently wrong."""
PSEUDO_CONFIDENCE = 0.99
"""Probability (the heads' summed logits, uncalibrated: temperature 1) a message's predicted
technique needs to be used as a pseudo-label ([learning] pseudo_confidence). A model that is
sure of nothing (many techniques, few labels: the 12-technique demo at 250 labels tops out
at 0.89) gets none: self-training then changes nothing."""
PSEUDO_SHARE = 1.0
"""Pseudo-labels per technique at most, as a multiple of that technique's gold labels (the
surest first): pseudo-labels never outweigh the experts' labels, and a technique the
model predicts everywhere does not flood the refit."""
PSEUDO_CANDIDATES = 20_000
"""Unlabelled messages looked at, at most (a random sample of a larger pool): the
pseudo-labels are capped by the gold labels anyway, and a million-message pool's round
should not predict its pool twice."""


def pseudo_labels(
    logits: np.ndarray, y_gold: np.ndarray, k: int, confidence: float = PSEUDO_CONFIDENCE
) -> tuple[np.ndarray, np.ndarray]:
    """(positions into `logits`' rows, technique index) of the pseudo-labels: rows whose
    predicted technique has probability >= `confidence`, per technique at most
    PSEUDO_SHARE x its gold labels, the surest first. Empty with fewer than
    SELF_TRAINING_FROM gold labels."""
    empty = np.zeros(0, dtype=np.int64)
    if len(y_gold) < SELF_TRAINING_FROM or not len(logits):
        return empty, empty
    shifted = logits - logits.max(axis=1, keepdims=True)
    proba = np.exp(shifted)
    proba /= proba.sum(axis=1, keepdims=True)
    sureness, predicted = proba.max(axis=1), proba.argmax(axis=1)
    gold = np.bincount(np.asarray(y_gold, dtype=np.int64), minlength=k)
    rows: list[np.ndarray] = []
    for technique in range(k):
        sure = np.flatnonzero((predicted == technique) & (sureness >= confidence))
        order = np.argsort(-sureness[sure], kind="stable")
        rows.append(sure[order][: int(PSEUDO_SHARE * gold[technique])])
    chosen = np.sort(np.concatenate(rows)).astype(np.int64)
    return chosen, predicted[chosen].astype(np.int64)


def self_train(
    clf: Any,
    x: np.ndarray,
    lexical: Any,
    gold: np.ndarray,
    y_gold: np.ndarray,
    unlabelled: np.ndarray,
    confidence: float = PSEUDO_CONFIDENCE,
) -> Any:
    """`clf` (a fitted single-label EmbedClassifier) refitted on the gold rows `gold` (labels
    `y_gold`) plus the pseudo-labels (at `confidence`) of the `unlabelled` rows; `clf`
    itself when there are none. The refit keeps clf's temperature (cross-validated on gold
    labels only) and records how many pseudo-labels it used in `pseudo_labelled`. A pool larger than
    PSEUDO_CANDIDATES is sampled (seeded by clf.seed)."""
    from learning.classifiers import EmbedClassifier

    if clf.multi_label or len(gold) < SELF_TRAINING_FROM or not len(unlabelled):
        return clf
    unlabelled = np.asarray(unlabelled)
    if len(unlabelled) > PSEUDO_CANDIDATES:
        rng = np.random.default_rng(clf.seed)
        unlabelled = np.sort(rng.choice(unlabelled, PSEUDO_CANDIDATES, replace=False))
    counts = lexical[unlabelled] if lexical is not None and clf.lexical is not None else None
    logits = clf.logits(x[unlabelled], counts)
    positions, labels = pseudo_labels(logits, y_gold, len(clf.labels), confidence)
    if not len(positions):
        return clf
    extra = unlabelled[positions]
    rows = np.concatenate([np.asarray(gold), extra])
    refit = EmbedClassifier(
        clf.labels,
        calibrate=clf.calibrate,
        c=clf.c,
        seed=clf.seed,
        temperature=clf.temperature,
    ).fit(
        x[rows],
        np.concatenate([np.asarray(y_gold), labels]),
        lexical[rows] if lexical is not None and clf.lexical is not None else None,
    )
    refit.calibrated_on = clf.calibrated_on
    refit.pseudo_labelled = int(len(extra))
    return refit
