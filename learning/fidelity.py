"""Fidelity of an inference runtime, checked rather than assumed.

A round whose vectors come from ONNX Runtime records, next to its held-out macro-F1 and ECE,
the same head's macro-F1 and ECE on torch fp32 vectors of the same held-out messages. A
runtime that scores more than FIDELITY_DROP macro-F1 below torch fp32 there is not used by
default afterwards: `auto` then runs the exact fp32 ONNX graph (`techne models show` says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from learning.runtimes import CPU_DEFAULT, EXACT, FIDELITY_DROP, resolve_runtime
from store.artifacts import ModelVersionView

RECORD = "runtime_check"
"""The key of a version's metrics that holds the record."""


def record_check(
    repo: Any,
    encoder: Any,
    clf: Any,
    pool: Any,
    rows: np.ndarray,
    context_mode: str,
    metrics: dict[str, Any],
    lexical: Any = None,
    extra: np.ndarray | None = None,
) -> dict[str, Any]:
    """{RECORD: ...} for a round's metrics: the runtime's held-out numbers (from `metrics`)
    beside the same head's on torch fp32 vectors of the held-out messages `rows`. Vectors
    come through the workspace's cache (torch's own key), so later checks are cheap.
    `lexical`: the held-out rows' n-gram counts, for a head that has a lexical part;
    `extra`: their refreshed encoder's features (learning.tuned), which run on torch."""
    from learning.encoders import Encoder
    from learning.features import embed_features
    from learning.metrics import evaluate, evaluate_multilabel

    runtime = encoder.runtime
    entry: dict[str, Any] = {"runtime": runtime, "n": int(len(rows))}
    if runtime == "torch":
        return {RECORD: entry}
    if not len(rows):
        entry["verdict"] = "no held-out labels yet"
        return {RECORD: entry}
    exact = Encoder(encoder.name, "cpu", encoder.max_length, runtime="torch")
    x = embed_features(
        repo,
        exact,
        pool.message_ids[rows],
        pool.previous_ids[rows],
        context_mode,
        next_ids=pool.next_ids[rows],
    )
    if extra is not None:
        x = np.hstack([x, extra])
    proba = np.asarray(
        clf.predict_proba(x, lexical) if lexical is not None else clf.predict_proba(x)
    )
    score = evaluate_multilabel if pool.multi_label else evaluate
    torch_metrics = score(pool.y[rows], proba, pool.labels)
    ours, ref = _num(metrics.get("macro_f1")), _num(torch_metrics.get("macro_f1"))
    if ours is None or ref is None:
        entry["verdict"] = "no macro-F1 on the held-out set"
        return {RECORD: entry}
    drop = ref - ours
    entry.update(
        macro_f1=_num(metrics.get("macro_f1")),
        ece=_num(metrics.get("ece")),
        torch_fp32={
            "macro_f1": _num(torch_metrics.get("macro_f1")),
            "ece": _num(torch_metrics.get("ece")),
        },
        drop=round(drop, 4),
        passed=bool(drop <= FIDELITY_DROP),
    )
    return {RECORD: entry}


def _num(value: Any) -> float | None:
    return round(float(value), 4) if isinstance(value, (int, float)) and value == value else None


def failed(version: ModelVersionView) -> str | None:
    """The runtime this version's check found too far below torch fp32, or None."""
    entry = version.metrics.get(RECORD) or {}
    return entry.get("runtime") if entry.get("passed") is False else None


def choose_runtime(
    asked: str, device: str, versions: Sequence[ModelVersionView]
) -> tuple[str, str | None]:
    """(runtime, why) for a round: `asked`, or for auto the CPU default unless the latest
    version checked on it found it more than FIDELITY_DROP below torch fp32 (then EXACT)."""
    runtime = resolve_runtime(asked, device)
    if asked != "auto" or runtime != CPU_DEFAULT:
        return runtime, None
    for version in reversed(versions):
        entry = version.metrics.get(RECORD) or {}
        if entry.get("runtime") == CPU_DEFAULT and "passed" in entry:
            if not entry["passed"]:
                return EXACT, note(version)
            break
    return runtime, None


def predict_runtime(asked: str, device: str, trained_on: str, version: Any) -> str:
    """The runtime to score with: `asked`, or for auto the one the head was trained on when
    that passed its check, else vectors equal to torch fp32 (EXACT on CPU)."""
    runtime = resolve_runtime(asked, device)
    if asked != "auto" or runtime == "torch":
        return runtime
    if trained_on == CPU_DEFAULT and (version is None or failed(version) is None):
        return CPU_DEFAULT
    return EXACT


def note(version: ModelVersionView) -> str | None:
    """One line on the version's runtime check, for `techne models show`."""
    entry = version.metrics.get(RECORD)
    if not entry:
        return None
    runtime = entry.get("runtime")
    if runtime == "torch":
        return "encoded with torch fp32 (the reference)"
    if "passed" not in entry:
        return f"encoded with {runtime}; not checked against torch fp32 ({entry.get('verdict')})"
    ours, ref = entry["macro_f1"], entry["torch_fp32"]["macro_f1"]
    line = (
        f"encoded with {runtime}: held-out macro-F1 {ours:.3f} (ECE {entry['ece']:.3f}) vs "
        f"torch fp32 {ref:.3f} (ECE {entry['torch_fp32']['ece']:.3f}) on {entry['n']} messages"
    )
    if entry["passed"]:
        return f"{line}; within {FIDELITY_DROP} macro-F1, so it stays the default"
    return (
        f"{line}: more than {FIDELITY_DROP} below torch fp32, so {runtime} is not used by "
        f"default; rounds and predict use {EXACT} (fp32) unless runtime is set"
    )
