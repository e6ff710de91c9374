"""Batch selection with diversity: Cluster-Margin, BADGE, TypiClust, and `auto`, which
combines them. Plain numpy on a round's probabilities and embeddings; positions returned
index into the candidates given.

Cluster-Margin: Citovsky et al., "Batch Active Learning at Scale", NeurIPS 2021.
BADGE: Ash et al., "Deep Batch Active Learning by Diverse, Uncertain Gradient Lower
Bounds", ICLR 2020. TypiClust: Hacohen, Dekel & Weinshall, "Active Learning on a Budget:
Opposite Strategies Suit High and Low Budgets", ICML 2022.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CLUSTER_SAMPLE = 2_000
"""Pool vectors a k-means is fitted on at most (the rest are assigned to its centres):
bounds a round's clustering time whatever the pool's size."""
BADGE_SAMPLE = 10_000
"""Candidates BADGE seeds over at most (a random subsample of a larger pool)."""
BADGE_DIM = 2_048
"""Gradient embeddings wider than this are randomly projected to it (Johnson-Lindenstrauss)."""
TYPICAL_NEIGHBOURS = 20
"""Neighbours whose mean distance defines a point's typicality (TypiClust's k)."""


Vectors = np.ndarray | Callable[[np.ndarray], np.ndarray]
"""Candidates' vectors: an array, or a function giving the rows at some positions (so a
large pool's vectors are only copied where a strategy looks)."""


def rows_of(vectors: Vectors, positions: np.ndarray) -> np.ndarray:
    if callable(vectors):
        return np.asarray(vectors(np.asarray(positions, dtype=np.int64)))
    return np.asarray(vectors)[positions]


def margin(proba: np.ndarray) -> np.ndarray:
    """Best minus second-best probability per row (0 is most uncertain)."""
    if proba.shape[1] < 2:
        return np.zeros(len(proba))
    top = np.partition(proba, -2, axis=1)
    return top[:, -1] - top[:, -2]


UNCERTAINTY_FLOOR = 1e-3
"""Weight of a message the model is sure of (margin 1) in `uncertainty_draw`: never quite
zero, so confident mistakes can still be drawn."""


def uncertainty_draw(proba: np.ndarray, n: int, *, seed: int = 0, power: float = 1.0) -> list[int]:
    """n positions drawn without replacement, each with weight (1 - margin)^power (+ a
    floor), the most uncertain first: stochastic uncertainty sampling (Kirsch et al.,
    "Stochastic Batch Acquisition", TMLR 2023). Top-k by margin spends a batch on near
    duplicates at one spot of the boundary and on the hopelessly ambiguous; drawing by
    weight keeps the lean towards uncertainty and the diversity of a random sample.

    Exact successive sampling in one pass (Efraimidis & Spirakis 2006): keys u^(1/w),
    the n largest win."""
    m = margin(proba)
    weight = (1.0 - m) ** power + UNCERTAINTY_FLOOR
    keys = np.log(np.random.default_rng(seed).random(len(m))) / weight
    n = min(n, len(m))
    top = np.argpartition(-keys, n - 1)[:n] if n else np.zeros(0, dtype=np.int64)
    return top[np.argsort(m[top], kind="stable")].tolist()


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def kmeans(vectors: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(centres, cluster of each row): k-means on unit vectors, fitted on a sample of at most
    CLUSTER_SAMPLE rows, every row assigned to its nearest centre."""
    from sklearn.cluster import KMeans

    x = _unit(np.asarray(vectors, dtype=np.float32))
    rng = np.random.default_rng(seed)
    fit_rows = (
        np.sort(rng.choice(len(x), CLUSTER_SAMPLE, replace=False))
        if len(x) > CLUSTER_SAMPLE
        else np.arange(len(x))
    )
    k = max(1, min(k, len(fit_rows)))
    model = KMeans(n_clusters=k, n_init=1, random_state=seed, max_iter=100).fit(x[fit_rows])
    centres = model.cluster_centers_.astype(np.float32)
    return centres, nearest(centres, x)


def nearest(centres: np.ndarray, x: np.ndarray, chunk: int = 65_536) -> np.ndarray:
    """Index of the nearest centre (squared Euclidean) for each row of x, in chunks."""
    c2 = (centres**2).sum(axis=1)
    out = np.empty(len(x), dtype=np.int64)
    for s in range(0, len(x), chunk):
        part = x[s : s + chunk]
        out[s : s + chunk] = (c2[None, :] - 2.0 * part @ centres.T).argmin(axis=1)
    return out


def round_robin(groups: np.ndarray, order_key: np.ndarray, n: int) -> list[int]:
    """Positions taken one per group in turn, groups smallest first (ties: the group whose
    best member comes first), members by `order_key` ascending within their group: every
    group gives one before any gives a second."""
    members: dict[int, list[int]] = {}
    for pos in np.argsort(order_key, kind="stable"):
        members.setdefault(int(groups[pos]), []).append(int(pos))
    queues = sorted(members.values(), key=lambda m: (len(m), order_key[m[0]]))
    out: list[int] = []
    depth = 0
    while len(out) < n and any(depth < len(q) for q in queues):
        out.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return out[:n]


def cluster_margin(
    proba: np.ndarray,
    vectors: Vectors,
    n: int,
    *,
    seed: int = 0,
    shortlist: int = 10,
    clusters: np.ndarray | None = None,
    k: int | None = None,
) -> list[int]:
    """Cluster-Margin: the `shortlist` x n smallest-margin candidates, taken round-robin
    over their clusters (smallest cluster first, smallest margin first within one).

    `clusters` gives each candidate's cluster; by default k-means with k = 2n clusters
    (at least 10) on the candidates' vectors."""
    scores = margin(proba)
    short = np.argsort(scores, kind="stable")[: max(n, shortlist * n)]
    if clusters is None:
        rng = np.random.default_rng(seed)
        total = len(proba)
        sample = (
            np.sort(rng.choice(total, CLUSTER_SAMPLE, replace=False))
            if total > CLUSTER_SAMPLE
            else np.arange(total)
        )
        centres, _ = kmeans(rows_of(vectors, sample), k or max(10, 2 * n), seed)
        groups = nearest(centres, _unit(rows_of(vectors, short).astype(np.float32)))
    else:
        groups = np.asarray(clusters)[short]
    picked = round_robin(groups, scores[short], n)
    return [int(short[p]) for p in picked]


def gradient_embeddings(proba: np.ndarray, features: np.ndarray, seed: int = 0) -> np.ndarray:
    """BADGE's embeddings: (p - onehot(argmax p)) outer the features, the gradient of a
    linear softmax head's loss at its own prediction; wider than BADGE_DIM, a Gaussian
    random projection of it (computed without forming the full outer product)."""
    p = np.asarray(proba, dtype=np.float32)
    f = np.asarray(features, dtype=np.float32)
    residual = p.copy()
    residual[np.arange(len(p)), p.argmax(axis=1)] -= 1.0
    k, d = p.shape[1], f.shape[1]
    if k * d <= BADGE_DIM:
        return (residual[:, :, None] * f[:, None, :]).reshape(len(p), k * d)
    rng = np.random.default_rng(seed)
    r = BADGE_DIM
    projection = rng.standard_normal((d, k * r), dtype=np.float32) / np.sqrt(r)
    fr = (f @ projection).reshape(len(p), k, r)
    return np.einsum("nk,nkr->nr", residual, fr)


def kmeans_pp(points: np.ndarray, n: int, seed: int = 0) -> list[int]:
    """k-means++ seeding as BADGE runs it: the largest-norm point first, then each next
    point drawn with probability proportional to its squared distance to the nearest chosen."""
    rng = np.random.default_rng(seed)
    x = np.asarray(points, dtype=np.float64)
    sq = (x**2).sum(axis=1)
    first = int(np.argmax(sq))
    chosen = [first]
    d2 = np.maximum(sq + sq[first] - 2.0 * x @ x[first], 0.0)
    while len(chosen) < min(n, len(x)):
        d2[chosen] = 0.0
        total = d2.sum()
        if total <= 0:  # every point coincides with a chosen one: fill at random
            rest = np.setdiff1d(np.arange(len(x)), chosen)
            chosen.extend(rng.permutation(rest)[: n - len(chosen)].tolist())
            break
        nxt = int(rng.choice(len(x), p=d2 / total))
        chosen.append(nxt)
        d2 = np.minimum(d2, np.maximum(sq + sq[nxt] - 2.0 * x @ x[nxt], 0.0))
    return chosen


def badge(proba: np.ndarray, features: Vectors, n: int, *, seed: int = 0) -> list[int]:
    """BADGE: k-means++ seeding over gradient embeddings of (a sample of) the candidates."""
    rng = np.random.default_rng(seed)
    rows = np.arange(len(proba))
    if len(rows) > BADGE_SAMPLE:
        rows = np.sort(rng.choice(rows, BADGE_SAMPLE, replace=False))
    g = gradient_embeddings(proba[rows], rows_of(features, rows), seed)
    return [int(rows[i]) for i in kmeans_pp(g, n, seed)]


def typicality(vectors: np.ndarray, neighbours: int = TYPICAL_NEIGHBOURS) -> np.ndarray:
    """1 / mean Euclidean distance to a point's nearest neighbours (within the given set)."""
    x = np.asarray(vectors, dtype=np.float64)
    if len(x) < 2:
        return np.ones(len(x))
    k = min(neighbours, len(x) - 1)
    sq = (x**2).sum(axis=1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0))
    np.fill_diagonal(d, np.inf)
    near = np.partition(d, k - 1, axis=1)[:, :k]
    return 1.0 / (near.mean(axis=1) + 1e-12)


def typiclust(
    vectors: Vectors,
    labelled_vectors: np.ndarray,
    n: int,
    *,
    seed: int = 0,
    max_clusters: int = 500,
    clusters: np.ndarray | None = None,
    candidates: int | None = None,
) -> list[int]:
    """TypiClust: cluster candidates and labelled messages together into |labelled| + n
    clusters; take the most typical candidate of the clusters with fewest labelled members,
    largest first; no labels or model needed.

    `clusters` (for candidates then labelled rows) replaces the k-means when given;
    `candidates` is their number when `vectors` is a function."""
    if candidates is None:
        candidates = len(vectors)  # type: ignore[arg-type]
    rows = np.arange(candidates)
    if clusters is None and len(rows) > CLUSTER_SAMPLE:  # typicality is quadratic per cluster
        rows = np.sort(np.random.default_rng(seed).choice(rows, CLUSTER_SAMPLE, replace=False))
    vectors = rows_of(vectors, rows)
    both = np.vstack([vectors, labelled_vectors]) if len(labelled_vectors) else vectors
    m = len(vectors)
    if clusters is None:
        k = min(len(labelled_vectors) + n, max_clusters, len(both))
        _, clusters = kmeans(both, k, seed)
    clusters = np.asarray(clusters)
    cand, lab = clusters[:m], clusters[m:]
    ids = np.unique(cand)
    labelled_in = {int(c): int((lab == c).sum()) for c in ids}
    size = {int(c): int((clusters == c).sum()) for c in ids}
    order = sorted((int(c) for c in ids), key=lambda c: (labelled_in[c], -size[c], c))
    ranked: dict[int, list[int]] = {}
    unit = _unit(np.asarray(vectors, dtype=np.float32))
    for c in order:
        members = np.flatnonzero(cand == c)
        score = typicality(unit[members])
        ranked[c] = [int(members[i]) for i in np.argsort(-score, kind="stable")]
    out: list[int] = []
    depth = 0
    while len(out) < n and any(depth < len(ranked[c]) for c in order):
        out.extend(ranked[c][depth] for c in order if depth < len(ranked[c]))
        depth += 1
    return [int(rows[i]) for i in out[:n]]
