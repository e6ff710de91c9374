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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from learning.encoders import resolve_model_path
from learning.features import ProgressFn, cached_embeddings
from learning.inputs import ModelInput, following_turns
from learning.pool import Pool, held_out
from learning.registry import checksum_folder
from learning.round_steps import RoundError, labels_digest
from learning.runtimes import quiet_transformers
from learning.settings import LearningSettings
from learning.tuned import ENCODERS, TunedEncoder, current_tuned
from store import Repository

if TYPE_CHECKING:
    from learning.finetune import FinetuneClassifier

REFRESH_MIN_LABELS = 200
"""Fewest gold labels (outside the held-out conversations) a refresh trains on."""


@dataclass(frozen=True)
class Refreshed:
    """What a refresh made, the seconds each step took, and how many unused encoders went."""

    encoder: TunedEncoder
    seconds: dict[str, float]
    pruned: int


LOCK = ".refresh.lock"
"""In the encoders folder while a refresh runs: the process id of the one that does."""


@contextmanager
def refresh_lock(root: Path) -> Iterator[None]:
    """One refresh at a time per models folder (the app's background one, a maintainer's
    `techne refresh-encoder`): a second is refused while the first's process lives; the lock
    of one that died (killed, power cut) is taken over."""
    root.mkdir(parents=True, exist_ok=True)
    lock = root / LOCK
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _lock_holder(lock)
            if holder is not None:
                raise RoundError(
                    f"an encoder refresh is already running (process {holder}); "
                    "rounds use the new encoder once it has finished"
                ) from None
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    else:
        raise RoundError(f"{lock}: could not take the refresh lock")
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def _lock_holder(lock: Path) -> int | None:
    """The live process holding the lock, or None (gone, unreadable, or this process)."""
    try:
        pid = int(lock.read_text().strip())
        if pid == os.getpid():
            return None
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        return pid
    except (OSError, ValueError):
        return None
    return pid


def refresh_encoder(
    repo: Repository,
    models_dir: Path,
    settings: LearningSettings,
    progress: ProgressFn | None = None,
) -> Refreshed:
    """Fine-tune the encoder on the gold labels outside the held-out conversations, encode
    every pool message (and its neighbours) with it into the cache, then make it current;
    then delete the encoders no model version uses. One at a time per models folder."""
    with refresh_lock(models_dir / ENCODERS):
        return _refresh(repo, models_dir, settings, progress)


def _refresh(
    repo: Repository,
    models_dir: Path,
    settings: LearningSettings,
    progress: ProgressFn | None,
) -> Refreshed:
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
    tuned = tune_encoder(
        [inputs[i] for i in train],
        pool.y[train],
        [pool.conversations[i] for i in train],
        pool.labels,
        settings,
        progress,
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
    replaced = current_tuned(models_dir)
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
    keep = {name} | ({replaced.name} if replaced is not None else set())
    return Refreshed(made, seconds, prune_encoders(repo, root, keep))


def prune_encoders(repo: Repository, root: Path, keep: set[str]) -> int:
    """Delete refreshed encoders no model version uses (90 MB each), but those in `keep`
    (the current one, and the one it replaced: a round that read it may be committing), and
    what refreshes that were stopped half-way left. Returns how many went. Call it holding
    the refresh lock."""
    used = {str(v.metrics.get("tuned_encoder") or "") for v in repo.artifacts.versions()}
    gone = 0
    for folder in root.iterdir():
        if not folder.is_dir() or folder.name in keep or folder.name in used:
            continue
        if folder.name.startswith(".") and not folder.name.endswith(".partial"):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        gone += 1
    return gone


def tune_encoder(
    inputs: Sequence[ModelInput],
    y: np.ndarray,
    conversations: Sequence[str],
    labels: list[str],
    settings: LearningSettings,
    progress: ProgressFn | None = None,
) -> FinetuneClassifier:
    """MiniLM fine-tuned on these labelled messages with the `finetune` recipe (the message
    and the turn before it), early-stopping on a tenth of their conversations (a stable
    hash; all of them train when that leaves under 10 messages). What a refresh trains, and
    what bench/al_annomi.py's loop with refreshes trains."""
    from learning.finetune import FinetuneClassifier, FinetuneSettings

    is_dev = [held_out(c, settings.seed + 1, 0.1) for c in conversations]
    dev = [i for i, d in enumerate(is_dev) if d]
    fit = [i for i, d in enumerate(is_dev) if not d]
    if len(dev) < 10:
        fit, dev = list(range(len(inputs))), []
    tuned = FinetuneClassifier(
        labels,
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
    return tuned.fit(
        [inputs[i] for i in fit],
        y[fit],
        dev_inputs=[inputs[i] for i in dev] or None,
        dev_y=y[dev] if dev else None,
        progress=(lambda what, share: progress(f"fine-tuning: {what}", share))
        if progress
        else None,
    )
