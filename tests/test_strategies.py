"""The diverse query strategies (cluster-margin, badge, typiclust, auto) on small pools built
by hand, where the right picks can be worked out on paper."""

from __future__ import annotations

import numpy as np
import pytest

from learning import diversity, small_text_core
from learning.strategies import (
    AUTO_COLD_LABELS,
    STRATEGIES,
    StrategyError,
    make_strategy,
    select,
)


def blobs(sizes: list[int], spread: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points in well-separated clusters (unit axis directions in 16 dimensions, far apart
    after normalising), each with one point exactly at its centre; returns (vectors, cluster)."""
    rng = np.random.default_rng(seed)
    vectors, cluster = [], []
    for c, size in enumerate(sizes):
        centre = np.zeros(16)
        centre[c] = 1.0
        noise = rng.normal(scale=spread, size=(size - 1, 16))
        vectors.extend([centre, *(centre + noise)])
        cluster.extend([c] * size)
    return np.asarray(vectors, dtype=np.float32), np.asarray(cluster)


def proba_with_margin(margins: np.ndarray) -> np.ndarray:
    """Two-technique probabilities whose best-minus-second margin is the given one."""
    top = (1.0 + margins) / 2.0
    return np.column_stack([top, 1.0 - top])


def test_new_strategies_are_registered_by_name() -> None:
    """The registry lists the new names and builds a small-text QueryStrategy for each."""
    small_text_core.load()  # without torch, as a round loads it
    from small_text.query_strategies import QueryStrategy

    for name in ("auto", "cluster-margin", "badge", "typiclust"):
        assert name in STRATEGIES
        assert isinstance(make_strategy(name, seed=1), QueryStrategy)
    with pytest.raises(StrategyError, match="unknown strategy 'nope'"):
        make_strategy("nope")


def test_cluster_margin_takes_one_per_cluster_before_a_second() -> None:
    """Cluster 0 holds the 10 smallest margins, clusters 1 and 2 a few each: margin alone
    would take four from cluster 0; cluster-margin takes the smallest-margin member of each
    cluster, smallest cluster first, then a second from each."""
    clusters = np.array([0] * 10 + [1] * 3 + [2] * 5)
    margins = np.array(
        [0.01 * i for i in range(10)] + [0.5, 0.6, 0.7] + [0.3, 0.35, 0.4, 0.45, 0.9]
    )
    proba = proba_with_margin(margins)
    picks = diversity.cluster_margin(proba, np.zeros((18, 2)), 5, clusters=clusters)
    # in the shortlist (all 18): cluster 1 has 3, cluster 2 has 5, cluster 0 has 10
    assert picks == [10, 13, 0, 11, 14]


def test_cluster_margin_shortlist_keeps_only_uncertain_messages() -> None:
    """Only the shortlist (shortlist x n smallest margins) is ever picked from."""
    clusters = np.arange(20) % 4
    margins = np.linspace(0, 1, 20)
    picks = diversity.cluster_margin(
        proba_with_margin(margins), np.zeros((20, 2)), 2, clusters=clusters, shortlist=2
    )
    assert sorted(picks) == [0, 1]


def test_cluster_margin_spreads_a_round_over_clusters() -> None:
    """Through the registry: ten blobs, the ten most uncertain messages all in blob 0;
    the batch of five comes from five different blobs."""
    vectors, cluster = blobs([12] * 10)
    margins = np.where(cluster == 0, 0.0, 0.2) + np.arange(len(cluster)) * 1e-4
    proba = proba_with_margin(margins)
    candidates = np.arange(len(vectors))
    picks = select(
        "cluster-margin", proba, candidates, candidates[:0], np.array([]), 5, embeddings=vectors
    )
    assert len(set(cluster[picks])) == 5
    breaking_ties = select("breaking-ties", proba, candidates, candidates[:0], np.array([]), 5)
    assert set(cluster[breaking_ties]) == {0}


def test_typiclust_picks_the_densest_point_of_each_cluster_largest_first() -> None:
    """No labels: three blobs (30, 20 and 10 points, each with a point at its centre) and a
    batch of three: each blob's centre, the largest blob first."""
    vectors, _ = blobs([30, 20, 10])
    picks = diversity.typiclust(vectors, vectors[:0], 3)
    assert picks == [0, 30, 50]


def test_typiclust_skips_clusters_already_labelled() -> None:
    """A labelled message in the largest blob: the batch of two takes the centres of the
    two blobs with no labels."""
    vectors, _ = blobs([30, 20, 10])
    labelled = vectors[[1]]
    candidates = np.delete(np.arange(60), 1)
    picks = diversity.typiclust(vectors[candidates], labelled, 2)
    assert [int(candidates[p]) for p in picks] == [30, 50]


def test_typiclust_needs_no_model_through_the_registry() -> None:
    """Uniform probabilities (nothing learned yet): picks are still the blob centres."""
    vectors, _ = blobs([30, 20, 10])
    proba = np.full((60, 3), 1 / 3)
    picks = select(
        "typiclust", proba, np.arange(60), np.arange(0), np.array([]), 3, embeddings=vectors
    )
    assert picks == [0, 30, 50]


def test_badge_starts_with_the_largest_gradient_then_goes_far_from_it() -> None:
    """Gradient embeddings (p - onehot(argmax p)) x features, worked by hand:
    point 0: p (.5, .5), f (3, 0)   -> g (-1.5, 0, 1.5, 0), norm 2.12 (the largest)
    point 1: an exact copy of point 0 -> distance 0, never chosen after it
    point 2: p (.55, .45), f (3, .1) -> g close to point 0's (squared distance 0.05)
    point 3: p (.5, .5), f (0, 2)   -> g (0, -1, 0, 1), squared distance 6.5 from point 0
    BADGE takes point 0 first, then draws in proportion to squared distance: point 3 with
    probability 6.5 / 6.55."""
    features = np.array([[3.0, 0.0], [3.0, 0.0], [3.0, 0.1], [0.0, 2.0]])
    proba = np.array([[0.5, 0.5], [0.5, 0.5], [0.55, 0.45], [0.5, 0.5]])
    seconds = []
    for seed in range(100):
        picks = diversity.badge(proba, features, 2, seed=seed)
        assert picks[0] == 0 and picks[1] != 1
        seconds.append(picks[1])
    assert seconds.count(3) >= 95


def test_badge_gradient_embedding_is_the_outer_product_and_projection_keeps_norms() -> None:
    proba = np.array([[0.7, 0.2, 0.1]])
    features = np.array([[1.0, 2.0]])
    g = diversity.gradient_embeddings(proba, features)
    np.testing.assert_allclose(g, [[-0.3, -0.6, 0.2, 0.4, 0.1, 0.2]], atol=1e-6)
    rng = np.random.default_rng(0)
    wide = rng.normal(size=(50, 1024)).astype(np.float32)  # 3 x 1024 > BADGE_DIM
    p = rng.dirichlet(np.ones(3), size=50)
    exact = np.linalg.norm(p - np.eye(3)[p.argmax(axis=1)], axis=1) * np.linalg.norm(wide, axis=1)
    projected = np.linalg.norm(diversity.gradient_embeddings(p, wide), axis=1)
    assert np.allclose(projected / exact, 1.0, atol=0.15)


def test_auto_starts_as_random_then_draws_by_uncertainty() -> None:
    """Below AUTO_COLD_LABELS labels auto makes the very draw `random` makes (same seed, same
    picks); from there it draws by uncertainty: a tenth of the pool is uncertain (margin
    < 0.1, weight > 0.9) and nine tenths sure (margin 0.99, weight 0.011), so a batch of 20
    is expected to hold 20 x 0.9 x 120 / (0.9 x 120 + 0.011 x 1080) = 18 uncertain ones, and
    the batch comes most uncertain first."""
    vectors, _ = blobs([100] * 12, seed=1)
    n_pool = len(vectors)
    rng = np.random.default_rng(0)
    margins = np.where(np.arange(n_pool) % 10 == 0, rng.uniform(0, 0.1, n_pool), 0.99)
    proba = proba_with_margin(margins)
    candidates = np.arange(AUTO_COLD_LABELS, n_pool)
    few = np.arange(AUTO_COLD_LABELS - 1)
    many = np.arange(AUTO_COLD_LABELS)
    uncertain_picks = []
    for seed in range(10):
        cold = select(
            "auto", proba, candidates, few, np.zeros(len(few)), 20, embeddings=vectors, seed=seed
        )
        assert cold == select("random", proba, candidates, few, np.zeros(len(few)), 20, seed=seed)
        warm = select(
            "auto", proba, candidates, many, np.zeros(len(many)), 20, embeddings=vectors, seed=seed
        )
        assert len(set(warm)) == 20 and set(warm) <= set(candidates.tolist())
        assert list(margins[warm]) == sorted(margins[warm])
        uncertain_picks.append(sum(margins[i] < 0.1 for i in warm))
    assert 16 <= np.mean(uncertain_picks) <= 19.5
    assert min(uncertain_picks) < 20  # sure messages can still be drawn


def test_uncertainty_draw_follows_the_weights() -> None:
    """Three groups of 10 with margins 0, 0.5 and 1 weigh 1 + f, 0.5 + f and f (f the
    floor): a one-message draw lands in the first with probability 10.01 / 15.03 = 0.666
    and in the second with 0.333; over 3,000 seeds the shares are within 0.03 of that."""
    margins = np.repeat([0.0, 0.5, 1.0], 10)
    proba = proba_with_margin(margins)
    floor = diversity.UNCERTAINTY_FLOOR
    total = 10 * (1 + floor) + 10 * (0.5 + floor) + 10 * floor
    picks = np.array([diversity.uncertainty_draw(proba, 1, seed=s)[0] for s in range(3000)])
    group = picks // 10
    assert abs((group == 0).mean() - 10 * (1 + floor) / total) < 0.03
    assert abs((group == 1).mean() - 10 * (0.5 + floor) / total) < 0.03
    assert (group == 2).mean() < 0.01
    assert len(set(diversity.uncertainty_draw(proba, 30, seed=0))) == 30


def test_auto_without_embeddings_still_fills_a_batch() -> None:
    """The finetune backend gives no embeddings: auto needs none, cold or warm."""
    margins = np.linspace(0, 1, 300)
    picks = select(
        "auto", proba_with_margin(margins), np.arange(300), np.arange(0), np.array([]), 10
    )
    assert len(set(picks)) == 10
    warm = select(
        "auto", proba_with_margin(margins), np.arange(150, 300), np.arange(150), np.zeros(150), 10
    )
    assert len(set(warm)) == 10 and min(warm) >= 150
    assert np.mean(margins[warm]) < np.mean(margins[150:])


@pytest.mark.parametrize("name", ["cluster-margin", "badge", "typiclust"])
def test_diverse_strategies_without_embeddings_say_so(name: str) -> None:
    with pytest.raises(StrategyError, match="needs embeddings"):
        select(name, proba_with_margin(np.linspace(0, 1, 30)), np.arange(30), np.arange(0), [], 5)


@pytest.mark.parametrize("name", ["auto", "cluster-margin", "badge", "typiclust"])
def test_large_pool_picks_stay_distinct_candidates(name: str) -> None:
    """A pool larger than the clustering and BADGE samples: distinct candidates, none labelled."""
    rng = np.random.default_rng(0)
    n_pool = 12_000
    vectors = rng.normal(size=(n_pool, 8)).astype(np.float32)
    proba = rng.dirichlet(np.ones(4), size=n_pool)
    labelled = np.arange(200)
    candidates = np.arange(200, n_pool)
    picks = select(
        name, proba, candidates, labelled, rng.integers(0, 4, 200), 25, embeddings=vectors
    )
    assert len(set(picks)) == 25 and min(picks) >= 200
