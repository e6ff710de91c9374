"""Features for the embed backend: cached encoder vectors, with the previous turn as context."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from learning.encoders import Encoder
from store import Repository

ENCODE_CHUNK = 2_048
ProgressFn = Callable[[str, float], None]


def cached_embeddings(
    repo: Repository,
    encoder: Encoder,
    message_ids: Sequence[int],
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """(n, dim) vectors for these messages: read from the store, the missing ones encoded
    in chunks and written back, so no message is ever encoded twice."""
    ids = [int(i) for i in message_ids]
    cache = repo.artifacts.embeddings(encoder.key, ids)
    missing = [i for i in dict.fromkeys(ids) if i not in cache]
    for start in range(0, len(missing), ENCODE_CHUNK):
        chunk = missing[start : start + ENCODE_CHUNK]
        texts = repo.message_texts(chunk)
        vectors = encoder.encode([texts[i] for i in chunk])
        items = [(mid, vectors[j].tobytes()) for j, mid in enumerate(chunk)]
        repo.artifacts.put_embeddings(encoder.key, encoder.dim, items)
        cache.update(items)
        if progress:
            progress("encoding messages", min(1.0, (start + len(chunk)) / len(missing)))
    joined = b"".join([cache[mid] for mid in ids])
    # frombuffer views the joined bytes (read-only); callers copy into their own arrays.
    return np.frombuffer(joined, dtype=np.float32).reshape(len(ids), encoder.dim)


def embed_features(
    repo: Repository,
    encoder: Encoder,
    message_ids: np.ndarray,
    previous_ids: np.ndarray,
    context_mode: str,
    progress: ProgressFn | None = None,
    *,
    next_ids: np.ndarray | None = None,
) -> np.ndarray:
    """The message's vector, with the previous turn's vector beside it when context is on,
    and the next turn's after that with context "around" (zeros where a message opens or
    closes its conversation)."""
    if context_mode == "none":
        return cached_embeddings(repo, encoder, message_ids.tolist(), progress)
    sides = [np.asarray(previous_ids)]
    if context_mode == "around":
        if next_ids is None:
            raise ValueError('context "around" needs the ids of the turns after the messages')
        sides.append(np.asarray(next_ids))
    wanted = [int(i) for i in message_ids] + [int(i) for side in sides for i in side[side >= 0]]
    vectors = cached_embeddings(repo, encoder, wanted, progress)
    n, dim = len(message_ids), encoder.dim
    out = np.zeros((n, (1 + len(sides)) * dim), dtype=np.float32)
    out[:, :dim] = vectors[:n]
    start = n
    for j, side in enumerate(sides, start=1):
        has = side >= 0
        out[has, j * dim : (j + 1) * dim] = vectors[start : start + int(has.sum())]
        start += int(has.sum())
    return out
