"""Suggestions before any label: each message goes to the technique whose codebook text
(definition and examples) its encoder vector is nearest to, registered as model v0."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from learning.codebook_model import BACKEND, CodebookClassifier
from learning.encoders import Encoder
from learning.features import cached_embeddings
from learning.metrics import evaluate
from learning.pool import Pool
from learning.registry import ModelCard
from learning.round_steps import ProgressFn, RoundResult, labels_digest, next_batch, register
from learning.settings import LearningSettings
from store import CodebookView, Repository
from store.artifacts import NewModelVersion, PredictionBatch

V0 = "v0"
DEFINITION_WEIGHT = 0.25
"""Weight of the definition's vector against the mean of the examples' vectors in a
technique's prototype. Examples carry most of it: definitions are written for people,
full of "code X instead when..." that pulls a message towards the wrong technique. Chosen
on two dev sets (macro-F1 at weights 0 / 0.25 / 0.5 / 1): AnnoMI's 80% with the annomi
codebook 0.522 / 0.507 / 0.462 / 0.243; the demo corpus with the 12-technique mi codebook
0.314 / 0.340 / 0.313 / 0.148. A technique without examples is its definition alone."""
FIRST_SENTENCE = True
"""Whether a definition stands for its technique by its first sentence only (later ones
often say when to code *another* technique); chosen on AnnoMI dev."""


def technique_texts(
    name: str, definition: str, examples: Sequence[str], first_sentence: bool = FIRST_SENTENCE
) -> tuple[str, list[str]]:
    """The text that stands for a technique's definition (its name and its definition, or
    the definition's first sentence) and its examples."""
    text = definition.strip()
    if first_sentence:
        text = text.split(". ")[0].strip()
    return (f"{name}: {text}" if text else name), [e for e in examples if e.strip()]


def prototypes(
    book: CodebookView,
    encoder: Encoder,
    definition_weight: float = DEFINITION_WEIGHT,
    first_sentence: bool = FIRST_SENTENCE,
) -> np.ndarray:
    """(techniques, dim) unit vectors: the weighted mean of each technique's definition
    vector and the mean of its examples' vectors (the definition alone without examples)."""
    texts: list[str] = []
    spans: list[tuple[int, int]] = []
    for t in book.techniques:
        definition, examples = technique_texts(
            t.name or t.key, t.definition or "", t.examples, first_sentence
        )
        spans.append((len(texts), len(examples)))
        texts.extend([definition, *examples])
    vectors = encoder.encode(texts)
    out = np.zeros((len(spans), vectors.shape[1]), dtype=np.float32)
    for j, (start, count) in enumerate(spans):
        out[j] = vectors[start]
        if count:
            examples = vectors[start + 1 : start + 1 + count].mean(axis=0)
            out[j] = definition_weight * vectors[start] + (1 - definition_weight) * examples
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def can_start_from_codebook(repo: Repository, pool: Pool) -> bool:
    """A workspace gets v0 when it has no model version at all, a single-label codebook of
    two or more techniques and messages to suggest for."""
    return (
        not pool.multi_label
        and len(pool.labels) >= 2
        and len(pool) > 0
        and not repo.artifacts.versions()
    )


def codebook_round(
    repo: Repository,
    models_dir: Path,
    settings: LearningSettings,
    pool: Pool,
    book: CodebookView,
    progress: ProgressFn | None = None,
) -> RoundResult:
    """Register v0: the zero-shot model's probabilities for the whole pool (the suggestions)
    and a first queue chosen from them by the configured strategy. Held-out labels, when
    there are any, measure it like any other version."""

    started = time.perf_counter()
    encoder = Encoder(settings.encoder, settings.device, settings.max_length)
    x = cached_embeddings(repo, encoder, pool.message_ids, progress)
    clf = CodebookClassifier(pool.labels, prototypes(book, encoder))
    proba = clf.predict_proba(x)
    train, evaluation = pool.train_indices, pool.eval_indices
    metrics: dict[str, Any] = (
        evaluate(pool.y[evaluation], proba[evaluation], pool.labels)
        if len(evaluation)
        else {"n": 0, "macro_f1": None}
    )
    metrics.update(
        train_size=0,
        eval_size=int(len(evaluation)),
        temperature=clf.temperature,
        labels_digest=labels_digest(pool),
        zero_shot=True,
    )
    queried, eval_ids = next_batch(repo, pool, proba, train, settings, x)
    card = ModelCard(
        backend=BACKEND,
        labels=pool.labels,
        multi_label=False,
        encoder=encoder.name,
        context_mode="none",
        context_turns=0,
        max_length=settings.max_length,
        temperature=clf.temperature,
    )
    model, round_view = register(
        repo,
        models_dir,
        V0,
        clf,
        card,
        NewModelVersion(
            backend=BACKEND,
            encoder=encoder.name,
            codebook_key=book.key,
            path="",
            checksum="",
            settings={**settings.__dict__, "backend": BACKEND, "context_mode": "none"},
            metrics=metrics,
        ),
        PredictionBatch(pool.message_ids, proba, pool.labels),
        settings,
        queried,
        {
            "eval_queried": eval_ids,
            "macro_f1": metrics.get("macro_f1"),
            "train_size": 0,
            "eval_size": int(len(evaluation)),
            "zero_shot": True,
        },
    )
    timings = {"zero_shot": round(time.perf_counter() - started, 3)}
    return RoundResult(model, round_view, metrics, queried, timings)
