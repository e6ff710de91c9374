"""The encoder refresh: MiniLM fine-tuned on the workspace's gold labels (the `finetune`
backend's recipe), kept as a second feature extractor for the `embed` rounds. The rounds
stay cheap: the refresh runs on its own (`techne refresh-encoder`), encodes the pool into
the vector cache, and only then becomes the one rounds use; a round never waits on it.

Measured on AnnoMI dev (bench/encoder_refresh_annomi.py): frozen MiniLM + lexical head
0.704 / 0.712 at 800 / 1,600 labels; with the tuned encoder's vectors beside the frozen
ones 0.725 / 0.738. Below ~800 labels it does not pay (0.690 against 0.687 at 400)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from learning.encoders import resolve_model_path
from learning.features import ProgressFn, cached_embeddings
from learning.inputs import following_turns
from learning.pool import Pool, held_out
from learning.registry import checksum_folder
from learning.round_steps import RoundError, labels_digest
from learning.runtimes import quiet_transformers
from learning.settings import LearningSettings
from learning.tuned import ENCODERS, TunedEncoder
from store import Repository

REFRESH_MIN_LABELS = 200
"""Fewest gold labels (outside the held-out conversations) a refresh trains on."""


def refresh_encoder(
    repo: Repository,
    models_dir: Path,
    settings: LearningSettings,
    progress: ProgressFn | None = None,
) -> tuple[TunedEncoder, dict[str, float]]:
    """Fine-tune the encoder on the gold labels outside the held-out conversations, encode
    every pool message (and its neighbours) with it into the cache, then make it current.
    Returns it and the seconds each step took."""
    from learning.finetune import FinetuneClassifier, FinetuneSettings
    from learning.rounds import pool_inputs

    if settings.backend != "embed":
        raise RoundError("the encoder refresh feeds the embed backend's rounds")
    pool = Pool.build(repo, repo.codebook(), seed=settings.seed, eval_share=settings.eval_share)
    if pool.multi_label:
        raise RoundError("the encoder refresh is for single-label codebooks")
    train = pool.train_indices
    if len(train) < REFRESH_MIN_LABELS:
        raise RoundError(
            f"an encoder refresh needs at least {REFRESH_MIN_LABELS} gold labels outside the "
            f"held-out conversations; there are {len(train)}"
        )
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    inputs = pool_inputs(repo, pool, 1, following_turns("previous", 1))
    is_dev = [held_out(pool.conversations[i], settings.seed + 1, 0.1) for i in train]
    dev = [i for i, d in zip(train, is_dev, strict=True) if d]
    fit = [i for i, d in zip(train, is_dev, strict=True) if not d]
    if len(dev) < 10:
        fit, dev = list(train), []
    tuned = FinetuneClassifier(
        pool.labels,
        FinetuneSettings(
            model_path=resolve_model_path(settings.encoder),
            context_mode="previous",
            context_turns=1,
            max_length=settings.max_length,
            epochs=settings.epochs,
            lr=settings.lr,
            seed=settings.seed,
            device=settings.device,
        ),
    )
    tuned.fit(
        [inputs[i] for i in fit],
        pool.y[fit],
        dev_inputs=[inputs[i] for i in dev] or None,
        dev_y=pool.y[dev] if dev else None,
        progress=(lambda what, share: progress(f"fine-tuning: {what}", share))
        if progress
        else None,
    )
    seconds["finetune"] = round(time.perf_counter() - clock, 1)
    digest = labels_digest(pool)
    name = f"e{len(train)}-{digest[:10]}"
    root = models_dir / ENCODERS
    folder = root / name
    partial = root / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    quiet_transformers()  # no "Writing model shards" bar: the progress is ours
    tuned.save(partial)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    made = TunedEncoder(name, folder, checksum_folder(folder), len(train), digest)
    clock = time.perf_counter()
    every = np.unique(np.concatenate([pool.message_ids, pool.previous_ids, pool.next_ids]))
    # into the cache (each message and its neighbours once), so rounds read and never encode
    cached_embeddings(
        repo, made.encoder(settings.device, settings.max_length), every[every >= 0], progress
    )
    seconds["encode_pool"] = round(time.perf_counter() - clock, 1)
    pointer = root / "current.json"
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {
                "name": name,
                "checksum": made.checksum,
                "labels": made.labels,
                "labels_digest": digest,
                "seconds": seconds,
            },
            indent=2,
        )
    )
    os.replace(tmp, pointer)  # rounds switch to it only now, with its vectors cached
    return made, seconds
