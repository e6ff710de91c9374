"""Inter-coder agreement: Cohen's kappa per pair, Krippendorff's alpha (nominal), expert vs model.

Pure functions over labels, plus `agreement_report` which reads coders' current labels
from the store's events. Multi-label codes are compared as whole label sets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the kappa and alpha functions load without SQLAlchemy (the export card)
    from sqlalchemy.engine import Engine

    from store.artifacts import Artifacts
    from store.domain import CodebookView


def cohen_kappa(a: Sequence[Hashable] | Any, b: Sequence[Hashable] | Any) -> float:
    """Cohen's kappa of two coders over the same items (nan when chance agreement is 1),
    unweighted, as sklearn's cohen_kappa_score. Integer numpy arrays (label codes, as a
    round compares two models' predictions) are counted without a per-item loop."""
    if len(a) != len(b):
        raise ValueError("both coders must code the same items")
    n = len(a)
    if n == 0:
        return float("nan")
    if _int_array(a) and _int_array(b):
        observed, expected = _chance_of_codes(a, b)
    else:
        observed = sum(1 for x, y in zip(a, b, strict=True) if x == y) / n
        ca, cb = Counter(a), Counter(b)
        expected = sum(ca[k] * cb[k] for k in ca) / (n * n)
    if expected == 1.0:
        return float("nan")
    return (observed - expected) / (1.0 - expected)


def _int_array(values: object) -> bool:
    dtype = getattr(values, "dtype", None)
    return dtype is not None and dtype.kind in "iu" and getattr(values, "ndim", 0) == 1


def _chance_of_codes(a: Any, b: Any) -> tuple[float, float]:
    """Observed and chance agreement of two integer code arrays (codes may be negative)."""
    import numpy as np

    low = int(min(a.min(), b.min()))
    a, b = a - low, b - low
    k = int(max(a.max(), b.max())) + 1
    table = np.bincount(a * k + b, minlength=k * k).reshape(k, k).astype(np.float64)
    n = table.sum()
    return float(np.trace(table) / n), float(table.sum(axis=1) @ table.sum(axis=0)) / (n * n)


def krippendorff_alpha(units: Iterable[Sequence[Hashable]]) -> float:
    """Krippendorff's alpha, nominal level, from each unit's values (missing ones left out).

    Units with fewer than two values are not pairable and do not count. Computed from the
    coincidence matrix: alpha = 1 - (n - 1) * D_o / D_e over off-diagonal cells.
    """
    coincidences: dict[tuple[Hashable, Hashable], float] = {}
    for values in units:
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, nc in counts.items():
            for k, nk in counts.items():
                pairs = nc * (nk - 1) if c == k else nc * nk
                if pairs:
                    coincidences[(c, k)] = coincidences.get((c, k), 0.0) + pairs / (m - 1)
    totals: dict[Hashable, float] = {}
    for (c, _k), value in coincidences.items():
        totals[c] = totals.get(c, 0.0) + value
    n = sum(totals.values())
    if n <= 1:
        return float("nan")
    disagree = sum(v for (c, k), v in coincidences.items() if c != k)
    expected = (n * n - sum(t * t for t in totals.values())) / (n - 1)
    if expected == 0:
        return float("nan")
    return 1.0 - disagree / expected


def _value(labels: Sequence[str]) -> str:
    return "+".join(sorted(labels))


def agreement_report(
    engine: Engine, artifacts: Artifacts, book: CodebookView | None, *, model: bool = True
) -> dict[str, Any]:
    """Kappa per annotator pair, alpha overall and per technique, and expert-vs-model
    agreement (each coder against the suggestion that was on their screen), with counts.
    `book`: the workspace's codebook (None: techniques as found in the labels)."""
    coded, shown = _current_codes(engine)
    coders = sorted({name for labels in coded.values() for name in labels})
    pairs = []
    for a, b in combinations(coders, 2):
        both = [mid for mid, labels in coded.items() if a in labels and b in labels]
        if not both:
            continue
        ya = [_value(coded[mid][a]) for mid in both]
        yb = [_value(coded[mid][b]) for mid in both]
        pairs.append(
            {
                "a": a,
                "b": b,
                "items": len(both),
                "kappa": _num(cohen_kappa(ya, yb)),
                "percent_agreement": sum(x == y for x, y in zip(ya, yb, strict=True)) / len(both),
            }
        )
    multi = {mid: labels for mid, labels in coded.items() if len(labels) >= 2}
    techniques = (
        list(book.keys())
        if book
        else sorted({x for labels in coded.values() for ls in labels.values() for x in ls})
    )
    per_technique = {
        key: {
            "alpha": _num(
                krippendorff_alpha([[key in ls for ls in u.values()] for u in multi.values()])
            ),
            "coded": sum(key in ls for u in multi.values() for ls in u.values()),
        }
        for key in techniques
    }
    report: dict[str, Any] = {
        "codebook": book.key if book else None,
        "coders": {name: sum(1 for labels in coded.values() if name in labels) for name in coders},
        "items_coded": len(coded),
        "items_multiply_coded": len(multi),
        "alpha": _num(
            krippendorff_alpha([[_value(v) for v in u.values()] for u in multi.values()])
        ),
        "alpha_per_technique": per_technique,
        "pairs": pairs,
    }
    if model:
        report["expert_vs_model"] = _versus_model(artifacts, coded, shown)
    return report


def _current_codes(
    engine: Engine,
) -> tuple[dict[int, dict[str, tuple[str, ...]]], dict[int, dict[str, int]]]:
    """(message -> coder -> current labels, message -> coder -> model version on screen when
    they gave them), over messages that have coders' labels."""
    from store.events import iter_states

    coded: dict[int, dict[str, tuple[str, ...]]] = {}
    shown: dict[int, dict[str, int]] = {}
    for state in iter_states(engine):
        if state.coder_labels:
            coded[state.message_id] = dict(state.coder_labels)
            shown[state.message_id] = dict(state.coder_model)
    return coded, shown


def _against_model(
    artifacts: Artifacts,
    coded: dict[int, dict[str, tuple[str, ...]]],
    shown: dict[int, dict[str, int]],
) -> dict[str, tuple[list[str], list[str]]]:
    """Per coder: (their current codes, the top suggestion of the model version that was on
    their screen when they gave them), over the messages where that version suggested one.

    This is the one definition of "accepted as shown": a coder's current code equals the
    suggestion they saw. A correction or undo after accepting counts as not accepted; a
    message counts once however often it was relabelled."""
    tops: dict[int, dict[int, str]] = {}
    pairs: dict[str, tuple[list[str], list[str]]] = {}
    for mid, labels in coded.items():
        for name, version in shown[mid].items():
            if name not in labels:
                continue
            if version not in tops:
                tops[version] = artifacts.top_labels(version)
            top = tops[version].get(mid)
            if top is not None:
                human, machine = pairs.setdefault(name, ([], []))
                human.append(_value(labels[name]))
                machine.append(top)
    return dict(sorted(pairs.items()))


def suggestion_acceptance(engine: Engine, artifacts: Artifacts) -> dict[str, dict[str, int]]:
    """Per annotator: messages coded with a suggestion on screen (`shown`) and how many of
    them they accepted as shown (`accepted`). The stats screen and the agreement report's
    expert-vs-model rows both come from here."""
    coded, shown = _current_codes(engine)
    out = {}
    for name, (human, machine) in _against_model(artifacts, coded, shown).items():
        accepted = sum(h == m for h, m in zip(human, machine, strict=True))
        out[name] = {"shown": len(human), "accepted": accepted}
    return out


def acceptance_totals(
    engine: Engine, artifacts: Artifacts, annotator: str | None = None
) -> dict[str, int]:
    """suggestion_acceptance summed over everyone, or for one annotator."""
    per = suggestion_acceptance(engine, artifacts)
    if annotator is None:
        rows = list(per.values())
    else:
        rows = [per[annotator]] if annotator in per else []
    return {
        "shown": sum(r["shown"] for r in rows),
        "accepted": sum(r["accepted"] for r in rows),
    }


def _versus_model(
    artifacts: Artifacts,
    coded: dict[int, dict[str, tuple[str, ...]]],
    shown: dict[int, dict[str, int]],
) -> list[dict[str, Any]]:
    """Each coder against the top suggestion of the model version they saw."""
    out = []
    for name, (human, machine) in _against_model(artifacts, coded, shown).items():
        accepted = sum(h == m for h, m in zip(human, machine, strict=True))
        out.append(
            {
                "annotator": name,
                "items": len(human),
                "accepted": accepted,
                "kappa": _num(cohen_kappa(human, machine)),
                "percent_agreement": accepted / len(human),
            }
        )
    return out


def _num(value: float) -> float | None:
    """JSON-safe: nan becomes None."""
    return None if value != value else value


@dataclass(frozen=True)
class Dispute:
    """A message a lead should look at: coders disagree, a coder and the model disagree, or
    someone flagged it. Not yet adjudicated."""

    message_id: int
    reason: str
    """coders | model | flagged"""
    coder_labels: dict[str, tuple[str, ...]]
    model_label: str | None = None
    model_version_id: int | None = None
    flags: int = 0


def disputes(engine: Engine, artifacts: Artifacts, *, include_model: bool = True) -> list[Dispute]:
    """Open disputes, coder disagreements first, then flags, then coder-vs-model."""
    from store.events import iter_states

    tops: dict[int, dict[int, str]] = {}
    active = artifacts.active()

    def model_label(version: int | None, message_id: int) -> str | None:
        if version is None:
            return None
        if version not in tops:
            tops[version] = artifacts.top_labels(version)
        return tops[version].get(message_id)

    found: list[Dispute] = []
    for state in iter_states(engine):
        if state.adjudicated is not None or not (state.coder_labels or state.flags):
            continue
        labels = dict(state.coder_labels)
        distinct = {_value(v) for v in labels.values()}
        flags = len(state.flags)
        if len(distinct) > 1:
            found.append(Dispute(state.message_id, "coders", labels, flags=flags))
            continue
        if flags:
            found.append(Dispute(state.message_id, "flagged", labels, flags=flags))
            continue
        if include_model and len(labels) == 1:
            name = next(iter(labels))
            version = state.coder_model.get(name) or (active.id if active else None)
            top = model_label(version, state.message_id)
            if top is not None and top != _value(labels[name]):
                found.append(Dispute(state.message_id, "model", labels, top, version))
    order = {"coders": 0, "flagged": 1, "model": 2}
    return sorted(found, key=lambda d: (order[d.reason], d.message_id))
