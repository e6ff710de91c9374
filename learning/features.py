"""Features for the embed backend: cached encoder vectors, with the turns around as context,
and the messages' hashed n-gram counts."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from learning.encoders import Encoder
from learning.lexical import LexicalSpec
from store import Repository

ENCODE_CHUNK = 4_096
"""Messages encoded and written to the cache at a time (one cache block each)."""
ProgressFn = Callable[[str, float], None]


def cached_embeddings(
    repo: Repository,
    encoder: Encoder,
    message_ids: Sequence[int] | np.ndarray,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """(n, dim) float32 vectors for these messages: read from the store, the missing ones
    encoded in chunks and written back, so no message is ever encoded twice. A round whose
    vectors are all cached never loads the encoder's weights."""
    out = np.zeros((len(message_ids), encoder.dim), dtype=np.float32)
    fill_embeddings(repo, encoder, [(np.asarray(message_ids, dtype=np.int64), out)], progress)
    return out


def fill_embeddings(
    repo: Repository,
    encoder: Encoder,
    targets: list[tuple[np.ndarray, np.ndarray]],
    progress: ProgressFn | None = None,
) -> None:
    """Fill each (ids, rows) target: rows[i] gets the vector of message ids[i], cached or
    encoded now (and cached); rows whose id is -1 are left as they are."""
    found = repo.artifacts.embeddings_into(encoder.key, targets)
    todo = [
        (ids, rows, np.flatnonzero(~hit & (ids >= 0)))
        for (ids, rows), hit in zip(targets, found, strict=True)
    ]
    if not any(len(at) for _, _, at in todo):
        return
    missing = np.unique(np.concatenate([ids[at] for ids, _, at in todo]))
    total = len(missing)

    def encoded_so_far(done: int) -> None:
        if progress:
            progress(f"encoding {done:,} of {total:,} messages", done / total)

    encoded_so_far(0)
    for start in range(0, len(missing), ENCODE_CHUNK):
        chunk = missing[start : start + ENCODE_CHUNK]
        texts = repo.message_texts(chunk.tolist())

        def in_chunk(done: int, _total: int, start: int = start) -> None:
            encoded_so_far(start + done)

        encoded = encoder.encode([texts[int(i)] for i in chunk], in_chunk)
        repo.artifacts.put_embedding_matrix(encoder.key, chunk, encoded)
        for ids, rows, at in todo:
            where = np.searchsorted(chunk, ids[at])
            inside = where < len(chunk)
            inside[inside] = chunk[where[inside]] == ids[at][inside]
            rows[at[inside]] = encoded[where[inside]]


def embed_features(
    repo: Repository,
    encoder: Encoder,
    message_ids: np.ndarray,
    previous_ids: np.ndarray,
    context_mode: str,
    progress: ProgressFn | None = None,
    *,
    next_ids: np.ndarray | None = None,
    also: Encoder | None = None,
) -> np.ndarray:
    """The message's vector, with the previous turn's vector beside it when context is on,
    and the next turn's after that with context "around" (zeros where a message opens or
    closes its conversation); then the same blocks from `also` (a refreshed encoder,
    learning.tuned) when given."""
    sides = []
    if context_mode != "none":
        sides.append(np.asarray(previous_ids, dtype=np.int64))
    if context_mode == "around":
        if next_ids is None:
            raise ValueError('context "around" needs the ids of the turns after the messages')
        sides.append(np.asarray(next_ids, dtype=np.int64))
    encoders = [encoder] if also is None else [encoder, also]
    ids = [np.asarray(message_ids, dtype=np.int64), *sides]
    key = (tuple(e.key for e in encoders), context_mode, *(hash(a.tobytes()) for a in ids))
    with _FEATURES_LOCK:
        kept = _FEATURES.get(repo, {}).get(key)
    if kept is not None:
        return kept  # the pool has not changed since the last round: nor have its rows
    n = len(message_ids)
    out = np.empty((n, sum((1 + len(sides)) * e.dim for e in encoders)), dtype=np.float32)
    start = 0
    for enc in encoders:
        # Vectors are copied from the cache straight into their columns: no (n, dim) copy
        # per side on the way, which doubled the time of a 100,000-message round.
        columns = []
        for _ in ids:
            columns.append(out[:, start : start + enc.dim])
            start += enc.dim
        for side, column in zip(sides, columns[1:], strict=True):
            column[side < 0] = 0.0
        fill_embeddings(repo, enc, list(zip(ids, columns, strict=True)), progress)
    out.flags.writeable = False  # shared with the next round
    if out.nbytes <= FEATURES_KEPT_BYTES:
        with _FEATURES_LOCK:
            kept_here = _FEATURES.setdefault(repo, {})
            kept_here[key] = out
            while len(kept_here) > FEATURES_KEPT:
                del kept_here[next(iter(kept_here))]  # the oldest
    return out


FEATURES_KEPT_BYTES = 2 << 30
"""Largest feature matrix kept for the next round (100,000 messages with `around` take
0.46 GB, 0.92 GB with a refreshed encoder beside the frozen one)."""
FEATURES_KEPT = 2
"""Matrices kept per repository: a round's pool and its held-out check's."""
_FEATURES: weakref.WeakKeyDictionary[Repository, dict[Any, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)
"""Per repository: the last feature matrices embed_features built, by what they were built
from (encoders, context, the ids' bytes). A vector never changes under its key, so the same
pool gives the same rows: a warm round reads none of them again."""
_FEATURES_LOCK = threading.Lock()


_LEXICAL_CACHE: weakref.WeakKeyDictionary[Repository, dict[LexicalSpec, tuple[Any, Any]]] = (
    weakref.WeakKeyDictionary()
)
"""Per repository and spec: (message ids, sorted; their count rows in that order)."""
_LEXICAL_LOCK = threading.Lock()


def lexical_features(
    repo: Repository, message_ids: Sequence[int] | np.ndarray, spec: LexicalSpec | None = None
) -> Any:
    """(n, spec.width) CSR n-gram counts of these messages' texts (learning.lexical).

    Rows are kept per repository for the life of the process (texts never change, so a
    message's row never does): a later round reads and counts only new messages."""
    from scipy import sparse

    spec = spec or LexicalSpec()
    ids = np.asarray(message_ids, dtype=np.int64)
    with _LEXICAL_LOCK:
        per_spec = _LEXICAL_CACHE.setdefault(repo, {})
        known, rows = per_spec.get(
            spec, (np.zeros(0, dtype=np.int64), sparse.csr_matrix((0, spec.width)))
        )
        missing = np.setdiff1d(ids, known)
        if len(missing):
            texts = repo.message_texts(missing.tolist())
            new = spec.transform([texts.get(int(i), "") for i in missing])
            merged = np.concatenate([known, missing])
            order = np.argsort(merged, kind="stable")
            known = merged[order]
            rows = sparse.vstack([rows, new], format="csr")[order]
            per_spec[spec] = (known, rows)
    return rows[np.searchsorted(known, ids)]
