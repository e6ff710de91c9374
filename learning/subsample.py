"""Large pools: any query strategy runs on an AnchorAL-style subsample of the candidates
(Lesci & Vlachos 2024), so a round on 1,000,000 messages chooses its batch in seconds.

small-text 1.4.1's AnchorSubsampling builds an hnswlib index over the whole pool, which a
round (a fresh process each time) would rebuild every time, and it needs hnswlib. Here the
neighbours are exact, over a bounded random scan of the candidates: anchors are up to
`anchors_per_class` labelled messages per technique (k-means++ seeding, spread out), each
anchor brings its nearest candidates by cosine similarity, and a small random share keeps
some of the subsample away from what is already labelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learning.strategies import select


@dataclass(frozen=True)
class Subsampling:
    """Above `threshold` candidates, a strategy sees `size` of them (anchors' neighbours
    and a `random_share` drawn at random). Neighbours are searched among at most `scan`
    candidates drawn at random, which bounds the cost whatever the pool's size.

    The size bounds the slowest strategy: small-text's contrastive strategy costs about
    1 CPU-second per 1,000 candidates (bench/pool_bench.py); AnchorAL's own default is 500.
    Pools up to the threshold (a 20,000-message study) are never subsampled."""

    threshold: int = 50_000
    size: int = 3_000
    anchors_per_class: int = 10
    random_share: float = 0.1
    scan: int = 50_000
    chunk: int = 65_536
    """Candidates whose similarities to the anchors are computed at once (memory bound)."""


DEFAULT = Subsampling()


def _spread(vectors: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k rows of `vectors` chosen by k-means++ seeding (far apart, density-aware)."""
    if len(vectors) <= k:
        return np.arange(len(vectors))
    chosen = [int(rng.integers(len(vectors)))]
    nearest = ((vectors - vectors[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = nearest.sum()
        pick = (
            int(rng.choice(len(vectors), p=nearest / total))
            if total > 0
            else int(rng.integers(len(vectors)))
        )
        chosen.append(pick)
        nearest = np.minimum(nearest, ((vectors - vectors[pick]) ** 2).sum(axis=1))
    return np.asarray(chosen)


def anchors(
    embeddings: np.ndarray,
    labelled: np.ndarray,
    y_labelled: np.ndarray,
    per_class: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Pool indices of up to `per_class` labelled messages per technique, spread out."""
    out: list[np.ndarray] = []
    for c in np.unique(y_labelled):
        members = np.asarray(labelled)[np.asarray(y_labelled) == c]
        out.append(members[_spread(embeddings[members], per_class, rng)])
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def subsample(
    candidates: np.ndarray,
    labelled: np.ndarray,
    y_labelled: np.ndarray,
    embeddings: np.ndarray | None,
    seed: int,
    settings: Subsampling = DEFAULT,
) -> np.ndarray:
    """Sorted candidate indices a strategy should choose from: all of them when there are
    at most `threshold`; otherwise about `size` of them, the nearest neighbours of the
    anchors (k per anchor, as AnchorAL) plus a random share. Without embeddings or labels,
    a random subsample."""
    candidates = np.asarray(candidates)
    if len(candidates) <= settings.threshold:
        return candidates
    rng = np.random.default_rng(seed)
    size = min(settings.size, len(candidates))
    if embeddings is None or len(labelled) == 0:
        return np.sort(rng.choice(candidates, size=size, replace=False))
    at = anchors(embeddings, labelled, y_labelled, settings.anchors_per_class, rng)
    a = embeddings[at].astype(np.float32)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    scanned = (
        np.sort(rng.choice(candidates, size=settings.scan, replace=False))
        if len(candidates) > settings.scan
        else candidates
    )
    quota = int(size * (1 - settings.random_share))
    # Twice each anchor's share of neighbours, as anchors of one technique overlap; the
    # union is then cut to the quota.
    near = max(1, 2 * quota // len(at))
    # Per anchor, its `near` most similar candidates so far: (score, index) kept per chunk.
    best_sim = np.full((0, len(at)), -np.inf, dtype=np.float32)
    best_idx = np.empty((0, len(at)), dtype=np.int64)
    for start in range(0, len(scanned), settings.chunk):
        rows = scanned[start : start + settings.chunk]
        v = embeddings[rows].astype(np.float32, copy=False)
        sims = v @ a.T / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        sims = np.vstack([best_sim, sims])
        idx = np.vstack([best_idx, np.broadcast_to(rows[:, None], (len(rows), len(at)))])
        if len(sims) > near:
            top = np.argpartition(-sims, near - 1, axis=0)[:near]
            sims = np.take_along_axis(sims, top, axis=0)
            idx = np.take_along_axis(idx, top, axis=0)
        best_sim, best_idx = sims, idx
    # Round robin over the anchors: every anchor's nearest, then every anchor's second
    # nearest, ... so that each technique's anchors keep their share of the subsample.
    by_rank = np.take_along_axis(best_idx, np.argsort(-best_sim, axis=0, kind="stable"), axis=0)
    found = by_rank.ravel()  # row-major: rank by rank
    _, first = np.unique(found, return_index=True)
    chosen = np.sort(found[np.sort(first)][:quota])
    rest = np.setdiff1d(candidates, chosen, assume_unique=True)
    extra = min(len(rest), max(0, size - len(chosen)))
    if extra:
        chosen = np.union1d(chosen, rng.choice(rest, size=extra, replace=False))
    return chosen


def select_subsampled(
    name: str,
    proba: np.ndarray,
    candidates: np.ndarray,
    labelled: np.ndarray,
    y_labelled: np.ndarray,
    n: int,
    *,
    embeddings: np.ndarray | None = None,
    seed: int = 0,
    settings: Subsampling = DEFAULT,
) -> list[int]:
    """learning.strategies.select on the subsample of `candidates`: any strategy, the same
    arguments, picks that are always candidates (at most n of them). In a large pool the
    strategy is handed only the subsample and the labelled messages (re-indexed): some of
    small-text's strategies score every row of the dataset they are given, not only the
    candidates."""
    candidates = np.asarray(candidates)
    if len(candidates) <= settings.threshold:
        return select(
            name, proba, candidates, labelled, y_labelled, n, embeddings=embeddings, seed=seed
        )
    subset = subsample(candidates, labelled, y_labelled, embeddings, seed, settings)
    local = np.concatenate([subset, np.asarray(labelled, dtype=subset.dtype)])
    picks = select(
        name,
        proba[local],
        np.arange(len(subset)),
        np.arange(len(subset), len(local)),
        y_labelled,
        n,
        embeddings=None if embeddings is None else embeddings[local],
        seed=seed,
    )
    return [int(local[i]) for i in picks]
