"""Large pools: the AnchorAL-style subsample any strategy runs on, on small constructed pools
with thresholds scaled down (the 1,000,000-message timing is bench/pool_bench.py)."""

from __future__ import annotations

import numpy as np
import pytest

from learning.calibration import softmax
from learning.strategies import STRATEGIES
from learning.subsample import Subsampling, select_subsampled, subsample

SMALL = Subsampling(threshold=200, size=120, anchors_per_class=3, random_share=0.0, scan=10_000)


def three_clusters(per: int = 400, seed: int = 0) -> dict[str, np.ndarray]:
    """Unit vectors in three far-apart clusters A, B, C; two labelled messages in A (class
    0) and two in B (class 1); nothing labelled in C."""
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 16, dtype=np.float32)
    cluster = np.repeat(np.arange(3), per)
    x = centres[cluster] + rng.normal(scale=0.05, size=(3 * per, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    labelled = np.array([0, 1, per, per + 1])
    y_labelled = np.array([0, 0, 1, 1])
    candidates = np.setdiff1d(np.arange(3 * per), labelled)
    proba = softmax(x[:, :2] * 5, 1.0)
    return {
        "x": x,
        "cluster": cluster,
        "labelled": labelled,
        "y": y_labelled,
        "candidates": candidates,
        "proba": proba,
    }


def test_small_pools_are_not_subsampled() -> None:
    pool = three_clusters(per=50)
    out = subsample(pool["candidates"], pool["labelled"], pool["y"], pool["x"], 0, SMALL)
    assert np.array_equal(out, pool["candidates"])


def test_subsample_is_the_anchors_neighbourhood() -> None:
    """Without a random share, the subsample is made of the labelled clusters' neighbours
    (A and B, about half each: k per anchor), nothing from the unlabelled cluster C; with a
    random share of 0.5, C gets some of it."""
    pool = three_clusters()
    out = subsample(pool["candidates"], pool["labelled"], pool["y"], pool["x"], 0, SMALL)
    assert set(out) <= set(pool["candidates"]) and len(out) <= SMALL.size
    clusters = np.bincount(pool["cluster"][out], minlength=3)
    assert clusters[2] == 0 and clusters[0] >= SMALL.size // 3 and clusters[1] >= SMALL.size // 3
    mixed = Subsampling(threshold=200, size=120, anchors_per_class=3, random_share=0.5)
    out = subsample(pool["candidates"], pool["labelled"], pool["y"], pool["x"], 0, mixed)
    assert len(out) == 120 and np.bincount(pool["cluster"][out], minlength=3)[2] > 0


def test_subsample_without_embeddings_or_labels_is_random_within_the_pool() -> None:
    pool = three_clusters()
    for embeddings, labelled in ((None, pool["labelled"]), (pool["x"], pool["labelled"][:0])):
        out = subsample(
            pool["candidates"], labelled, pool["y"][: len(labelled)], embeddings, 1, SMALL
        )
        assert len(out) == SMALL.size and set(out) <= set(pool["candidates"])


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("n", [1, 7])
def test_every_strategy_picks_inside_the_pool_and_respects_the_batch(strategy: str, n: int) -> None:
    """Wrapped by the subsampling, each strategy returns exactly n distinct candidates from
    the subsample (never a labelled message), as pool indices."""
    pool = three_clusters()
    picks = select_subsampled(
        strategy,
        pool["proba"],
        pool["candidates"],
        pool["labelled"],
        pool["y"],
        n,
        embeddings=pool["x"],
        seed=3,
        settings=SMALL,
    )
    allowed = subsample(pool["candidates"], pool["labelled"], pool["y"], pool["x"], 3, SMALL)
    assert len(picks) == len(set(picks)) == n
    assert set(picks) <= set(allowed.tolist()) and not set(picks) & set(pool["labelled"].tolist())
