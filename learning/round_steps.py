"""What every kind of round shares, trained or from the codebook (learning.zero_shot): its
errors and result, the labels' digest, the next batch to queue, and registering a version
with its predictions and queue in one commit."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from learning.pool import Pool
from learning.registry import ModelCard, save_model
from learning.settings import LearningSettings
from learning.subsample import select_subsampled
from store import Repository, TechneError
from store.artifacts import ModelVersionView, NewModelVersion, PredictionBatch, RoundView

MIN_LABELS = 8

ProgressFn = Callable[[str, float], None]


MODEL_SETTINGS = (
    "backend",
    "encoder",
    "context_mode",
    "context_turns",
    "max_length",
    "calibrate",
    "epochs",
    "lr",
    "members",
    "self_training",
    "pseudo_confidence",
    "eval_share",
    "seed",
)
"""Settings that change the model a round trains (not the strategy, batch or device): with
the same labels and these unchanged, a new round would only repeat the active version."""


class RoundError(TechneError):
    """A round that could not run; the store and the active model are unchanged."""


class NoNewLabels(RoundError):
    """No gold label was added or changed since the active model version was trained (and
    its settings are the same): no new version is registered, nothing is written. `active`
    is the tag of the model that stays active; callers show the message as a notice, not
    as a failure."""

    def __init__(self, active: str, labels: int) -> None:
        self.active = active
        self.labels = labels
        super().__init__(
            f"no new labels since model {active} (trained on {labels} labels): "
            "no new model version; label more messages, then retrain"
        )


@dataclass
class RoundResult:
    model: ModelVersionView
    round: RoundView
    metrics: dict[str, Any]
    queried: list[int]
    timings: dict[str, float] = field(default_factory=dict)


RECALIBRATE_GROWTH = 1.25
"""A round cross-validates its temperature (5 extra fits of both heads, most of a warm
round's training time) only when the labels have grown by this factor since the temperature
in use was fitted; in between it keeps the active version's. The temperature moves slowly
with the label count and never changes a suggestion (the argmax), only the confidences."""


def kept_temperature(
    parent: ModelVersionView | None, settings: Any, train_size: int, labels: list[str]
) -> float | None:
    """The active version's temperature when a round may keep it: same embed model settings
    and techniques, fitted on at least train_size / RECALIBRATE_GROWTH labels (and not more
    than now). None: cross-validate a new one."""
    if parent is None or not settings.calibrate or settings.backend != "embed":
        return None
    fitted_at = parent.metrics.get("temperature_fitted_at")
    if (
        not isinstance(fitted_at, int)
        or not fitted_at <= train_size < fitted_at * RECALIBRATE_GROWTH
    ):
        return None
    if list(parent.metrics.get("label_counts", {})) != list(labels):
        return None
    if any(parent.settings.get(k) != getattr(settings, k) for k in MODEL_SETTINGS):
        return None
    return float(parent.metrics["temperature"])


def labels_digest(pool: Pool) -> str:
    """sha256 of every gold label of the pool (message id and label), train and held out:
    equal digests mean no label was added, removed or corrected in between."""
    rows = np.flatnonzero(pool.labelled)
    digest = hashlib.sha256(np.ascontiguousarray(pool.message_ids[rows], dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(pool.y[rows], dtype=np.int64).tobytes())
    return digest.hexdigest()


def check_new_labels(
    parent: ModelVersionView | None, digest: str, settings: LearningSettings
) -> None:
    """NoNewLabels when the active version saw exactly these labels with these settings."""
    if parent is None or parent.metrics.get("labels_digest") != digest:
        return
    same = all(parent.settings.get(k) == getattr(settings, k) for k in MODEL_SETTINGS)
    if same:
        raise NoNewLabels(parent.tag, int(parent.metrics.get("train_size", 0)))


def next_batch(
    repo: Repository,
    pool: Pool,
    proba: np.ndarray,
    train: np.ndarray,
    settings: LearningSettings,
    embeddings: np.ndarray | None,
) -> tuple[list[int], list[int]]:
    """Message ids to queue: the strategy's batch from the candidates (an AnchorAL-style
    subsample of them in a large pool: learning.subsample), then a few random ones from
    held-out conversations (for unbiased metrics); and those held-out ids."""
    rounds_so_far = len(repo.artifacts.rounds())
    y_train = pool.y[train] if not pool.multi_label else pool.y[train].argmax(axis=1)
    chosen = select_subsampled(
        settings.strategy,
        proba,
        pool.candidate_indices,
        train,
        y_train,
        settings.batch_size,
        embeddings=embeddings,
        seed=settings.seed + rounds_so_far,
    )
    rng = np.random.default_rng(settings.seed + 7919 * (rounds_so_far + 1))
    eval_pool = pool.eval_candidate_indices
    eval_picks = (
        rng.choice(
            eval_pool, size=min(settings.eval_queries, len(eval_pool)), replace=False
        ).tolist()
        if len(eval_pool)
        else []
    )
    eval_ids = [int(pool.message_ids[i]) for i in eval_picks]
    return [int(pool.message_ids[i]) for i in chosen] + eval_ids, eval_ids


def register(
    repo: Repository,
    models_dir: Path,
    tag: str,
    clf: Any,
    card: ModelCard,
    version: NewModelVersion,
    predictions: PredictionBatch,
    settings: LearningSettings,
    queried: list[int],
    stats: dict[str, Any],
) -> tuple[ModelVersionView, RoundView]:
    """Save the weights under models_dir/tag and commit version, predictions and queue at
    once; on any failure the folder is removed and the store is unchanged."""
    folder = models_dir / tag
    try:
        checksum = save_model(folder, clf, card)
        return repo.artifacts.commit_round(
            replace(version, path=str(folder.relative_to(models_dir.parent)), checksum=checksum),
            tag,
            predictions,
            settings.strategy,
            settings.batch_size,
            queried,
            stats,
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
