"""A retrain round: gold labels -> train -> held-out metrics -> new model version -> scored
pool -> next batch. Either the whole round lands in the store, or nothing of it does."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from learning import small_text_core
from learning.choices import check_strategy
from learning.classifiers import EmbedClassifier
from learning.encoders import Encoder
from learning.features import embed_features, lexical_features
from learning.fidelity import choose_runtime, record_check
from learning.inputs import ModelInput, Turn, following_turns
from learning.metrics import evaluate, evaluate_multilabel
from learning.pool import Pool, held_out
from learning.registry import ModelCard
from learning.round_steps import (
    MIN_LABELS,
    NoNewLabels,
    ProgressFn,
    RoundError,
    RoundResult,
    check_new_labels,
    kept_temperature,
    labels_digest,
    next_batch,
    register,
)
from learning.self_training import self_train
from learning.settings import LearningSettings
from learning.stopping import kappa_stats
from learning.tuned import current_tuned
from store import Repository
from store.artifacts import NewModelVersion, PredictionBatch

__all__ = ["NoNewLabels", "RoundError", "RoundResult", "pool_inputs", "run_round"]
"""The round's errors and result live in learning.round_steps (shared with the codebook's v0
round); callers import them from here."""


def pool_inputs(repo: Repository, pool: Pool, turns: int, after: int = 0) -> list[ModelInput]:
    """ModelInputs (text, `turns` previous turns and `after` following turns) for every
    pool message, in pool order."""
    wanted = set(pool.index)
    out: dict[int, ModelInput] = {}
    history: list[Turn] = []
    waiting: list[tuple[int, ModelInput]] = []  # wanted messages still missing later turns
    conversation = None
    for msg in repo.iter_messages():
        if msg.conversation_id != conversation:
            conversation, history, waiting = msg.conversation_id, [], []
        turn = Turn(msg.speaker, msg.text)
        if waiting:
            waiting = [(mid, replace(x, following=(*x.following, turn))) for mid, x in waiting]
            out.update(waiting)
            waiting = [(mid, x) for mid, x in waiting if len(x.following) < after]
        if msg.id in wanted:
            item = ModelInput(msg.text, msg.speaker, tuple(history[-turns:]) if turns else ())
            out[msg.id] = item
            if after > 0:
                waiting.append((msg.id, item))
        history.append(turn)
    return [out[int(mid)] for mid in pool.message_ids]


def _check_trainable(pool: Pool) -> np.ndarray:
    train = pool.train_indices
    techniques = (
        int((pool.y[train].sum(axis=0) > 0).sum())
        if pool.multi_label
        else len(set(pool.y[train].tolist()))
    )
    if len(train) < MIN_LABELS or techniques < 2:
        raise RoundError(
            f"a round needs at least {MIN_LABELS} labelled messages in 2 or more techniques "
            f"outside the held-out conversations; there are {len(train)} in {techniques}"
        )
    return train


def _train_finetune(
    repo: Repository,
    pool: Pool,
    train: np.ndarray,
    settings: LearningSettings,
    progress: ProgressFn | None,
) -> tuple[Any, np.ndarray, float]:
    from learning.calibration import fit_temperature, softmax
    from learning.encoders import resolve_model_path
    from learning.ensemble import new_finetune
    from learning.finetune import FinetuneSettings

    after = following_turns(settings.context_mode, settings.context_turns)
    inputs = pool_inputs(repo, pool, settings.context_turns, after)
    dev_mask = np.array([held_out(pool.conversations[i], settings.seed + 1, 0.1) for i in train])
    fit_idx, dev_idx = train[~dev_mask], train[dev_mask]
    if len(dev_idx) < 10:
        fit_idx, dev_idx = train, train[:0]
    ft = FinetuneSettings(
        model_path=resolve_model_path(settings.encoder),
        context_mode=settings.context_mode,
        context_turns=settings.context_turns,
        max_length=settings.max_length,
        epochs=settings.epochs,
        lr=settings.lr,
        seed=settings.seed,
        device=settings.device,
        members=settings.members,
    )
    clf = new_finetune(pool.labels, ft, multi_label=pool.multi_label)
    clf.fit(
        [inputs[i] for i in fit_idx],
        pool.y[fit_idx],
        dev_inputs=[inputs[i] for i in dev_idx] or None,
        dev_y=pool.y[dev_idx] if len(dev_idx) else None,
        progress=progress,
    )
    if pool.multi_label:
        return clf, np.asarray(clf.predict_proba(inputs)), 1.0
    temperature = 1.0
    if settings.calibrate and len(dev_idx):
        temperature = fit_temperature(
            clf.predict_logits([inputs[i] for i in dev_idx]), pool.y[dev_idx]
        )
    return clf, softmax(np.asarray(clf.predict_logits(inputs)), temperature), temperature


def run_round(
    repo: Repository,
    models_dir: Path,
    settings: LearningSettings,
    progress: ProgressFn | None = None,
) -> RoundResult:
    """Run one retrain round and commit it (new active model, predictions, queue).

    Raises NoNewLabels (a RoundError) when no gold label changed since the active version
    was trained. A workspace with no model version at all and too few labels to train gets
    the codebook's zero-shot model, v0 (learning.zero_shot), instead of an error."""
    check_strategy(settings.strategy)  # before any loading, training or encoding
    settings.validate()
    if settings.backend == "embed":
        small_text_core.prefetch()  # scikit-learn loads while the store is read
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    book = repo.codebook()
    pool = Pool.build(repo, book, seed=settings.seed, eval_share=settings.eval_share)
    try:
        train = _check_trainable(pool)
    except RoundError:
        from learning.zero_shot import can_start_from_codebook, codebook_round

        if can_start_from_codebook(repo, pool):
            return codebook_round(repo, models_dir, settings, pool, book, progress)
        raise
    parent = repo.artifacts.active()
    digest = labels_digest(pool)
    tuned = current_tuned(models_dir) if settings.backend == "embed" else None
    tuned_name = tuned.name if tuned is not None and not pool.multi_label else None
    same_tuned = (parent.metrics.get("tuned_encoder") if parent else None) == tuned_name
    if same_tuned:  # a new refreshed encoder is worth a new version by itself
        check_new_labels(parent, digest, settings)
    lap("load")
    embeddings = None
    runtime = "torch"
    calibration: dict[str, Any] = {}
    if settings.backend == "embed":
        runtime, _ = choose_runtime(settings.runtime, settings.device, repo.artifacts.versions())
        encoder = Encoder(settings.encoder, settings.device, settings.max_length, runtime=runtime)
        also = (
            tuned.encoder(settings.device, settings.max_length)
            if tuned is not None and tuned_name is not None
            else None
        )
        x = embed_features(
            repo,
            encoder,
            pool.message_ids,
            pool.previous_ids,
            settings.context_mode,
            progress,
            next_ids=pool.next_ids,
            also=also,
        )
        blocks = x.shape[1] // (encoder.dim + (also.dim if also is not None else 0))
        frozen_width = blocks * encoder.dim  # the refreshed encoder's columns follow
        lexical = None if pool.multi_label else lexical_features(repo, pool.message_ids)
        lap("features")
        kept = kept_temperature(parent, settings, len(train), pool.labels) if same_tuned else None
        clf: Any = EmbedClassifier(
            pool.labels,
            multi_label=pool.multi_label,
            calibrate=settings.calibrate,
            seed=settings.seed,
            temperature=kept,
        ).fit(x[train], pool.y[train], lexical[train] if lexical is not None else None)
        if settings.self_training and not pool.multi_label:
            clf = self_train(
                clf,
                x,
                lexical,
                train,
                pool.y[train],
                pool.candidate_indices,
                settings.pseudo_confidence,
            )
        lap("train")
        proba = clf.predict_proba(x, lexical)
        temperature = getattr(clf, "temperature", 1.0)
        if kept is not None and parent is not None:
            calibration = {"temperature_fitted_at": parent.metrics["temperature_fitted_at"]}
            calibration["temperature_kept_from"] = parent.tag
        elif clf.calibrated_on is not None:
            calibration = {"temperature_fitted_at": clf.calibrated_on}
        embeddings = x[:, : encoder.dim]
        encoder_name, runtime = encoder.name, encoder.runtime
    else:
        clf, proba, temperature = _train_finetune(repo, pool, train, settings, progress)
        encoder_name = settings.encoder
        lap("train")
    lap("score")
    evaluation = pool.eval_indices
    if pool.multi_label:
        metrics = evaluate_multilabel(pool.y[evaluation], proba[evaluation], pool.labels)
    else:
        metrics = evaluate(pool.y[evaluation], proba[evaluation], pool.labels)
    counts = (
        pool.y[train].sum(axis=0)
        if pool.multi_label
        else np.bincount(pool.y[train], minlength=len(pool.labels))
    )
    metrics.update(
        train_size=int(len(train)),
        eval_size=int(len(evaluation)),
        label_counts={label: int(counts[i]) for i, label in enumerate(pool.labels)},
        temperature=float(temperature),
        labels_digest=digest,
        tuned_encoder=tuned_name,
        pseudo_labels=int(getattr(clf, "pseudo_labelled", 0)),
        **calibration,
    )
    if settings.backend == "embed":
        metrics.update(
            record_check(
                repo,
                encoder,
                clf,
                pool,
                evaluation,
                settings.context_mode,
                metrics,
                lexical=lexical[evaluation] if lexical is not None else None,
                extra=x[evaluation, frozen_width:] if also is not None else None,
            )
        )
    stats = kappa_stats(repo, pool, proba, parent)
    metrics.update(stats)
    lap("evaluate")
    queried, eval_ids = next_batch(repo, pool, proba, train, settings, embeddings)
    lap("query")
    tag = repo.artifacts.next_tag()
    card = ModelCard(
        backend=settings.backend,
        labels=pool.labels,
        multi_label=pool.multi_label,
        encoder=encoder_name,
        context_mode=settings.context_mode,
        context_turns=settings.context_turns,
        max_length=settings.max_length,
        temperature=float(temperature),
        runtime=runtime,
        tuned_encoder=tuned_name or "",
        tuned_checksum=tuned.checksum if tuned is not None and tuned_name else "",
    )
    model, round_view = register(
        repo,
        models_dir,
        tag,
        clf,
        card,
        NewModelVersion(
            backend=settings.backend,
            encoder=encoder_name,
            codebook_key=book.key,
            path="",
            checksum="",
            settings={**settings.__dict__},
            metrics=metrics,
            parent_id=parent.id if parent else None,
        ),
        PredictionBatch(pool.message_ids, proba, pool.labels),
        settings,
        queried,
        {
            **stats,
            "eval_queried": eval_ids,
            "macro_f1": metrics.get("macro_f1"),
            "train_size": int(len(train)),
            "eval_size": int(len(evaluation)),
        },
    )
    lap("save_commit")
    return RoundResult(model, round_view, metrics, queried, timings)
