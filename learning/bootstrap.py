"""Seeded percentile bootstrap: means, differences between two groups, correlations."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

RESAMPLES = 2_000
LEVEL = 0.95
CORRELATIONS = ("pearson", "spearman")


@dataclass(frozen=True)
class Interval:
    """A point estimate and its percentile bootstrap interval."""

    estimate: float
    low: float
    high: float
    resamples: int
    """Replicates that gave a value (a correlation is undefined on a constant resample)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "estimate": _finite(self.estimate),
            "ci": [_finite(self.low), _finite(self.high)],
            "resamples": self.resamples,
        }


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def rng_for(seed: int, name: str) -> np.random.Generator:
    """A generator for one named statistic, so its interval is the same whatever else is
    computed beside it or in which order."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def percentile_interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The (1 - level) / 2 and (1 + level) / 2 quantiles of the finite replicates."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def resampled_means(x: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Means of `resamples` samples of x drawn with replacement, each of len(x)."""
    x = np.asarray(x, dtype=float)
    return x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)


def mean_ci(
    x: np.ndarray, rng: np.random.Generator, resamples: int = RESAMPLES, level: float = LEVEL
) -> Interval:
    """The mean of x with its percentile bootstrap interval."""
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    reps = resampled_means(x, rng, resamples)
    return Interval(float(x.mean()), *percentile_interval(reps, level), resamples)


def difference_ci(
    a: np.ndarray,
    b: np.ndarray,
    rng: np.random.Generator,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Interval:
    """mean(b) - mean(a), resampling each group on its own (sizes kept)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    reps = resampled_means(b, rng, resamples) - resampled_means(a, rng, resamples)
    return Interval(float(b.mean() - a.mean()), *percentile_interval(reps, level), resamples)


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank (as Spearman's rho needs)."""
    _, codes, counts = np.unique(
        np.asarray(x, dtype=float), return_inverse=True, return_counts=True
    )
    below = np.cumsum(counts) - counts
    return (below + (counts + 1) / 2)[codes]


def _resampled_ranks(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Average ranks within each row of x[idx], vectorised: a resample only holds values of
    x, so counting each distinct value per row gives every rank at once."""
    values, codes = np.unique(x, return_inverse=True)
    rows = idx.shape[0]
    counts = np.zeros((rows, values.size))
    np.add.at(counts, (np.arange(rows)[:, None], codes[idx]), 1)
    below = np.cumsum(counts, axis=1) - counts
    table = below + (counts + 1) / 2
    return np.take_along_axis(table, codes[idx], axis=1)


def _row_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r per row; NaN for a row where x or y is constant."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    denom = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=1) / denom
    r[denom <= 1e-12] = np.nan
    return r


def correlation(x: np.ndarray, y: np.ndarray, method: str = "pearson") -> float:
    """Pearson's r or Spearman's rho (NaN when either is constant)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if method == "spearman":
        x, y = average_ranks(x), average_ranks(y)
    elif method != "pearson":
        raise ValueError(f"method must be one of {CORRELATIONS}, got {method!r}")
    return float(_row_pearson(x[None, :], y[None, :])[0])


def correlation_ci(
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    method: str = "pearson",
    resamples: int = RESAMPLES,
    level: float = LEVEL,
) -> Interval:
    """A correlation with its percentile interval, resampling (x, y) pairs; resamples where
    x or y is constant give no correlation and are left out (Interval.resamples says how many
    remain)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    estimate = correlation(x, y, method) if x.size > 1 else float("nan")
    if x.size < 3:
        return Interval(estimate, float("nan"), float("nan"), 0)
    idx = rng.integers(0, x.size, size=(resamples, x.size))
    if method == "spearman":
        reps = _row_pearson(_resampled_ranks(x, idx), _resampled_ranks(y, idx))
    else:
        reps = _row_pearson(x[idx], y[idx])
    defined = int(np.isfinite(reps).sum())
    return Interval(estimate, *percentile_interval(reps, level), defined)
