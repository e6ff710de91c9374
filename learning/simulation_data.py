"""What a simulation runs on: the labelled messages' vectors and labels, from a workspace's
store or from a labelled file imported into a throwaway one, reusing cached vectors."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from learning.simulate import ProgressFn, SimulationData
from store import TechneError

if TYPE_CHECKING:
    from learning.encoders import Encoder
    from learning.settings import LearningSettings
    from store import CodebookSpec, Repository


def encoder_for(settings: LearningSettings | None) -> Encoder:
    """The workspace's encoder, or the bundled default without a workspace."""
    from learning.encoders import Encoder

    if settings is None:
        return Encoder()
    return Encoder(settings.encoder, settings.device, settings.max_length)


def simulation_data(
    repo: Repository,
    settings: LearningSettings | None = None,
    context: str | None = None,
    progress: ProgressFn | None = None,
) -> SimulationData:
    """Vectors (with the context `context`, else the settings', else the embed backend's
    best) and gold labels of every labelled message; the labels are the oracle."""
    from learning.features import embed_features
    from learning.pool import Pool
    from learning.settings import BEST_CONTEXT

    mode = context or (settings.context_mode if settings else BEST_CONTEXT["embed"])
    pool = Pool.build(repo, repo.codebook(), eval_share=0.0)
    keep = np.flatnonzero(pool.labelled)
    if len(keep) == 0:
        raise TechneError("no labelled messages to simulate with (the labels are the oracle)")
    encoder = encoder_for(settings)
    x = embed_features(
        repo,
        encoder,
        pool.message_ids[keep],
        pool.previous_ids[keep],
        mode,
        progress,
        next_ids=pool.next_ids[keep],
    )
    ids = pool.message_ids[keep].tolist()
    texts = repo.message_texts(ids)
    return SimulationData(
        x=x,
        y=pool.y[keep],
        groups=np.asarray([pool.conversations[i] for i in keep]),
        labels=pool.labels,
        embeddings=x[:, : encoder.dim],
        texts=[texts[i] for i in ids],
    )


def reuse_vectors(source: Repository, repo: Repository, settings: LearningSettings | None) -> int:
    """Copy `source`'s cached vectors of every text `repo` also holds into `repo`'s cache
    (the same encoder key), so they are not encoded again. Returns how many were copied."""
    encoder = encoder_for(settings)
    ids_by_text: dict[str, int] = {}
    for msg in source.iter_messages():
        ids_by_text.setdefault(msg.text, msg.id)
    pairs = [(m.id, ids_by_text[m.text]) for m in repo.iter_messages() if m.text in ids_by_text]
    if not pairs:
        return 0
    mine = np.fromiter((a for a, _ in pairs), dtype=np.int64, count=len(pairs))
    theirs = np.fromiter((b for _, b in pairs), dtype=np.int64, count=len(pairs))
    rows = np.zeros((len(pairs), encoder.dim), dtype=np.float32)
    (found,) = source.artifacts.embeddings_into(encoder.key, [(theirs, rows)])
    if found.any():
        order = np.argsort(mine[found])
        repo.artifacts.put_embedding_matrix(encoder.key, mine[found][order], rows[found][order])
    return int(found.sum())


@contextmanager
def scratch_store(spec: CodebookSpec) -> Iterator[Repository]:
    """A throwaway SQLite store with `spec` installed as its codebook, removed on exit."""
    from store import Repository

    with tempfile.TemporaryDirectory() as tmp:
        repo = Repository.open(f"sqlite:///{Path(tmp) / 'sim.db'}", create=True)
        try:
            repo.install_codebook(spec)
            repo.codebook_key = spec.key
            yield repo
        finally:
            repo.close()
