"""From technique codes to what works: technique profiles per conversation, the MI summary
indices, and how both differ between outcome groups or follow a numeric outcome."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from learning.bootstrap import (
    CORRELATIONS,
    LEVEL,
    RESAMPLES,
    Interval,
    correlation_ci,
    difference_ci,
    mean_ci,
    rng_for,
)
from learning.outcomes import InsightsError, Outcome, outcome_fields, read_outcome
from store import GOLD_LEVELS, Repository

__all__ = [
    "SOURCES",
    "CodedCorpus",
    "InsightsError",
    "MiIndex",
    "Outcome",
    "analyse",
    "collect",
    "insights",
    "metric_values",
    "mi_indices",
    "outcome_fields",
    "read_outcome",
]

SOURCES = ("gold", "model", "both")
INDEX_NAMES = {
    "reflection_to_question": "R:Q",
    "complex_reflection_pct": "%CR",
    "open_question_pct": "%OQ",
}
MODEL_THRESHOLD = 0.5
"""Multi-label codebooks: a technique the model gives at least this probability counts."""


@dataclass(frozen=True)
class MiIndex:
    """A MITI summary index: numerator codes over denominator codes, per conversation."""

    key: str
    name: str
    numerator: tuple[str, ...]
    denominator: tuple[str, ...]
    percent: bool


def mi_indices(techniques: Sequence[str]) -> dict[str, MiIndex | str]:
    """The MI summary indices this codebook has the codes for (by technique key, as in
    MITI 4); for each one it lacks, the reason."""
    have = set(techniques)
    refl = tuple(k for k in ("reflection", "simple_reflection", "complex_reflection") if k in have)
    ques = tuple(k for k in ("question", "open_question", "closed_question") if k in have)
    cr, oq = ("simple_reflection", "complex_reflection"), ("open_question", "closed_question")
    wanted = {
        # key: (numerator, denominator, a percentage, what a codebook needs for it)
        "reflection_to_question": (refl, ques, False, "a reflection code and a question code"),
        "complex_reflection_pct": (
            cr[1:],
            cr,
            True,
            "simple_reflection and complex_reflection codes",
        ),
        "open_question_pct": (oq[:1], oq, True, "open_question and closed_question codes"),
    }
    out: dict[str, MiIndex | str] = {}
    for key, (num, den, percent, needs) in wanted.items():
        ok = bool(num) and bool(den) and have >= set(num) | set(den)
        out[key] = MiIndex(key, INDEX_NAMES[key], num, den, percent) if ok else f"needs {needs}"
    return out


@dataclass(frozen=True)
class CodedCorpus:
    """Technique counts per conversation, and where each coded message's labels came from."""

    codebook: str
    techniques: tuple[str, ...]
    source: str
    model: str | None
    conversations: list[str]
    meta: list[dict[str, Any]]
    counts: np.ndarray
    """(conversations, techniques): coded messages carrying each technique."""
    labelable: np.ndarray
    from_gold: np.ndarray
    from_model: np.ndarray

    @property
    def coded(self) -> np.ndarray:
        return self.from_gold + self.from_model


def collect(repo: Repository, source: str = "gold", gold_level: str = "single") -> CodedCorpus:
    """Count techniques per conversation over the labelable messages: gold labels, the active
    model's predictions, or both (gold first, predictions for the messages without gold)."""
    if source not in SOURCES:
        raise InsightsError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if gold_level not in GOLD_LEVELS:
        raise InsightsError(f"gold must be one of {', '.join(GOLD_LEVELS)}, got {gold_level!r}")
    book = repo.codebook()
    keys = tuple(book.keys())
    column = {k: i for i, k in enumerate(keys)}
    gold = {mid: g.labels for mid, g in repo.gold(gold_level).items()} if source != "model" else {}
    model: dict[int, tuple[str, ...]] = {}
    tag = None
    if source != "gold":
        version = repo.artifacts.active()
        if version is None:
            raise InsightsError(
                f"--source {source} needs the active model's predictions and there is no "
                "model yet: run `techne retrain` first, or use --source gold"
            )
        if version.codebook_key != book.key:
            raise InsightsError(
                f"the active model {version.tag} codes with '{version.codebook_key}', "
                f"the workspace with '{book.key}'"
            )
        model, tag = _model_labels(repo, version.id, book.multi_label), version.tag
    rows: dict[int, int] = {}
    counts: list[list[int]] = []
    tallies: list[list[int]] = []  # labelable, from gold, from model
    for mid, cid, _ext, labelable in repo.message_index():
        if not labelable:
            continue
        if cid not in rows:
            rows[cid] = len(rows)
            counts.append([0] * len(keys))
            tallies.append([0, 0, 0])
        r = rows[cid]
        tallies[r][0] += 1
        labels, origin = (gold[mid], 1) if mid in gold else (model.get(mid), 2)
        if labels is None:
            continue
        tallies[r][origin] += 1
        for label in labels:
            if label in column:
                counts[r][column[label]] += 1
    info = {cid: (ext, meta) for cid, ext, meta in repo.iter_conversations() if cid in rows}
    order = sorted(rows, key=rows.__getitem__)
    t = np.asarray(tallies, dtype=int).reshape(-1, 3)
    return CodedCorpus(
        codebook=book.key,
        techniques=keys,
        source=source,
        model=tag,
        conversations=[info[c][0] for c in order],
        meta=[info[c][1] for c in order],
        counts=np.asarray(counts, dtype=float).reshape(-1, len(keys)),
        labelable=t[:, 0],
        from_gold=t[:, 1],
        from_model=t[:, 2],
    )


def _model_labels(repo: Repository, version_id: int, multi_label: bool) -> dict[int, tuple]:
    if not multi_label:
        return {mid: (top,) for mid, top in repo.artifacts.top_labels(version_id).items()}
    out = {}
    for mid, row in repo.artifacts.predictions(version_id).items():
        chosen = tuple(k for k, p in row.probabilities.items() if p >= MODEL_THRESHOLD)
        out[mid] = chosen or (row.top_label,)
    return out


def metric_values(corpus: CodedCorpus) -> dict[str, dict[str, np.ndarray]]:
    """Per-conversation values: technique shares (of coded messages) and the available MI
    indices. NaN where undefined: no coded message, or a zero denominator in an index (that
    conversation is left out of that index, never counted as 0 or infinity)."""
    coded = corpus.coded.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = corpus.counts / coded[:, None]
    shares[coded == 0] = np.nan
    column = {k: i for i, k in enumerate(corpus.techniques)}
    indices = {}
    for key, spec in mi_indices(corpus.techniques).items():
        if isinstance(spec, str):
            continue
        num = corpus.counts[:, [column[k] for k in spec.numerator]].sum(axis=1)
        den = corpus.counts[:, [column[k] for k in spec.denominator]].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            indices[key] = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    return {
        "shares": {k: shares[:, i] for i, k in enumerate(corpus.techniques)},
        "indices": indices,
    }


def analyse(
    corpus: CodedCorpus,
    outcome: str | None = None,
    groups: tuple[str, str] | None = None,
    *,
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> dict[str, Any]:
    """The whole report (JSON-ready): message provenance, MI indices, the mean of every
    metric over conversations, per-conversation profiles and, with an `outcome`, group
    differences or correlations. Intervals: percentile bootstrap over conversations."""
    if resamples < 100:
        raise InsightsError(f"resamples must be at least 100, got {resamples}")
    if not 0 < level < 1:
        raise InsightsError(f"level must be between 0 and 1, got {level}")
    values = metric_values(corpus)
    coded = corpus.coded

    def summary(kind: str) -> dict[str, Any]:
        out = {}
        for key, v in values[kind].items():
            ok = v[np.isfinite(v)]
            ci = mean_ci(ok, rng_for(seed, f"mean:{key}"), resamples, level)
            out[key] = {**ci.as_dict(), "conversations": int(ok.size)}
        return out

    indices = {
        key: {"available": False, "name": INDEX_NAMES[key], "reason": spec}
        if isinstance(spec, str)
        else {
            "available": True,
            "name": spec.name,
            "numerator": list(spec.numerator),
            "denominator": list(spec.denominator),
            "percent": spec.percent,
            "undefined": int(np.sum(~np.isfinite(values["indices"][key]) & (coded > 0))),
        }
        for key, spec in mi_indices(corpus.techniques).items()
    }
    found = read_outcome(corpus.meta, outcome, groups) if outcome else None
    return {
        "codebook": corpus.codebook,
        "techniques": list(corpus.techniques),
        "source": corpus.source,
        "model": corpus.model,
        "messages": {
            "labelable": int(corpus.labelable.sum()),
            "coded": int(coded.sum()),
            "from_gold": int(corpus.from_gold.sum()),
            "from_model": int(corpus.from_model.sum()),
            "uncoded": int((corpus.labelable - coded).sum()),
        },
        "conversations": {"total": len(corpus.conversations), "coded": int((coded > 0).sum())},
        "indices": indices,
        "summary": {"shares": summary("shares"), "indices": summary("indices")},
        "outcome": _compare(corpus, values, found, resamples, seed, level) if found else None,
        "bootstrap": {
            "method": "percentile",
            "unit": "conversation",
            "resamples": resamples,
            "seed": seed,
            "level": level,
        },
        "profiles": _profiles(corpus, values, found),
    }


def _compare(
    corpus: CodedCorpus,
    values: dict[str, dict[str, np.ndarray]],
    outcome: Outcome,
    resamples: int,
    seed: int,
    level: float,
) -> dict[str, Any]:
    """Binary: per metric, compared minus reference with each group resampled on its own.
    Numeric: Pearson and Spearman correlation, resampling conversations."""
    coded = corpus.coded
    used = np.array([v is not None for v in outcome.values]) & (coded > 0)
    report: dict[str, Any] = {"field": outcome.field, "kind": outcome.kind}
    report["left_out"] = int(len(coded) - used.sum())
    if outcome.kind == "binary":
        assert outcome.groups is not None
        ref, cmp_ = outcome.groups
        member = {g: used & np.array([v == g for v in outcome.values]) for g in (ref, cmp_)}
        report["reference"], report["compared"] = ref, cmp_
        report["difference"] = f"{cmp_} minus {ref}"
        report["groups"] = {g: _tally(corpus, mask) for g, mask in member.items()}
    else:
        y = np.array([np.nan if v is None else v for v in outcome.values], dtype=float)
        report.update(_tally(corpus, used))
    for kind, metrics in values.items():
        rows = report[kind] = {}
        for key, v in metrics.items():
            ok = used & np.isfinite(v)
            name = f"{outcome.field}:{key}"
            if outcome.kind == "binary":
                a, b = v[ok & member[ref]], v[ok & member[cmp_]]
                diff = difference_ci(a, b, rng_for(seed, f"difference:{name}"), resamples, level)
                rows[key] = {
                    "means": {ref: _mean(a), cmp_: _mean(b)},
                    **diff.as_dict(),
                    "conversations": {ref: int(a.size), cmp_: int(b.size)},
                }
            else:
                found: dict[str, Any] = {"conversations": int(ok.sum())}
                for method in CORRELATIONS:
                    rng = rng_for(seed, f"{method}:{name}")
                    ci: Interval = correlation_ci(v[ok], y[ok], rng, method, resamples, level)
                    found[method] = ci.as_dict()
                rows[key] = found
    return report


def _tally(corpus: CodedCorpus, mask: np.ndarray) -> dict[str, int]:
    return {
        "conversations": int(mask.sum()),
        "coded": int(corpus.coded[mask].sum()),
        "from_gold": int(corpus.from_gold[mask].sum()),
        "from_model": int(corpus.from_model[mask].sum()),
    }


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if x.size else None


def _profiles(
    corpus: CodedCorpus, values: dict[str, dict[str, np.ndarray]], outcome: Outcome | None
) -> list[dict[str, Any]]:
    """One row per conversation: counts and shares per technique, MI indices, provenance."""
    out = []
    for i, conversation in enumerate(corpus.conversations):
        out.append(
            {
                "conversation": conversation,
                "outcome": outcome.values[i] if outcome else None,
                "labelable": int(corpus.labelable[i]),
                "from_gold": int(corpus.from_gold[i]),
                "from_model": int(corpus.from_model[i]),
                "counts": {k: int(corpus.counts[i, j]) for j, k in enumerate(corpus.techniques)},
                "shares": {k: _num(v[i]) for k, v in values["shares"].items()},
                "indices": {k: _num(v[i]) for k, v in values["indices"].items()},
            }
        )
    return out


def _num(value: float) -> float | None:
    return round(float(value), 6) if np.isfinite(value) else None


def insights(
    repo: Repository,
    source: str = "gold",
    outcome: str | None = None,
    groups: tuple[str, str] | None = None,
    *,
    gold_level: str = "single",
    resamples: int = RESAMPLES,
    seed: int = 0,
    level: float = LEVEL,
) -> dict[str, Any]:
    """collect() then analyse(): the report for a workspace's store."""
    corpus = collect(repo, source, gold_level)
    return analyse(corpus, outcome, groups, resamples=resamples, seed=seed, level=level)
