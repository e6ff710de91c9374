"""The embedding cache: encoder vectors stored in blocks of many messages per row.

A block holds (n,) little-endian int64 message ids and an (n, dim) float32 matrix as raw
bytes, so reading a 100,000-message pool is a few dozen rows rather than 100,000 (and the
driver's per-row cost, which dominated, goes away). Blocks are append-only; a message is
written once per encoder key (duplicates from concurrent writers are harmless: same key,
same vector). Vectors cached one row per message by older versions are moved into blocks
the first time their encoder is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from store.db import driver_sql, raw_rows

BLOCK_ROWS = 4_096
"""Vectors per block: 6 MB at 384 dimensions, a size both SQLite and PostgreSQL read at
full speed."""
IDS = np.dtype("<i8")
FLOATS = np.dtype("<f4")


@contextmanager
def _blob_cursor(conn: Any) -> Iterator[Any]:
    """A driver cursor for reading blocks; PostgreSQL's returns bytea in binary (text would
    double the bytes)."""
    dbapi = conn.connection.dbapi_connection
    cursor = dbapi.cursor(binary=True) if conn.dialect.name == "postgresql" else dbapi.cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def _index(conn: Any, encoder: str) -> list[tuple[int, np.ndarray]]:
    """(block id, message ids) of every block of `encoder`, oldest first."""
    rows = raw_rows(
        conn,
        "SELECT id, message_ids FROM embedding_blocks WHERE encoder = ? ORDER BY id",
        (encoder,),
    )
    return [(int(bid), np.frombuffer(ids, dtype=IDS)) for bid, ids in rows]


def cached_ids(engine: Engine, encoder: str) -> np.ndarray:
    """Sorted distinct ids of the messages with a cached vector for `encoder`."""
    _migrate(engine, encoder)
    with engine.connect() as conn:
        parts = [ids for _, ids in _index(conn, encoder)]
    return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)


def read(
    engine: Engine, encoder: str, message_ids: Sequence[int] | np.ndarray, dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, found) for `message_ids` in their order (repeats allowed): an (n, dim)
    float32 matrix with zeros where nothing is cached, and a boolean mask of what is."""
    out = np.zeros((len(message_ids), dim), dtype=np.float32)
    (found,) = read_into(engine, encoder, [(message_ids, out)])
    return out, found


def read_into(
    engine: Engine, encoder: str, targets: Sequence[tuple[Sequence[int] | np.ndarray, np.ndarray]]
) -> list[np.ndarray]:
    """Copy cached vectors straight into (n, dim) arrays or column views, row i of a target
    from its id i (repeats allowed; ids without a vector, such as -1, leave the row as it
    was). One pass over the blocks serves every target. Returns a found-mask per target."""
    wants = [np.asarray(ids, dtype=np.int64) for ids, _ in targets]
    found = [np.zeros(len(w), dtype=bool) for w in wants]
    if not any(len(w) for w in wants):
        return found
    dim = targets[0][1].shape[1]
    orders = [np.argsort(w, kind="stable") for w in wants]
    ranked = [w[o] for w, o in zip(wants, orders, strict=True)]
    _migrate(engine, encoder)
    with engine.connect() as conn:
        plan: dict[int, list[tuple[int, np.ndarray, np.ndarray]]] = {}
        for bid, ids in _index(conn, encoder):
            for t, (order, sorted_ids) in enumerate(zip(orders, ranked, strict=True)):
                left = np.searchsorted(sorted_ids, ids, "left")
                count = np.searchsorted(sorted_ids, ids, "right") - left
                if not count.any():
                    continue
                # Block row r fills every position of the target holding its id.
                rows = np.repeat(np.arange(len(ids)), count)
                starts = np.repeat(left, count)
                offsets = np.arange(len(rows)) - np.repeat(np.cumsum(count) - count, count)
                plan.setdefault(bid, []).append((t, rows, order[starts + offsets]))
        if not plan:
            return found
        with _blob_cursor(conn) as cursor:
            wanted = sorted(plan)
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                cursor.execute(
                    driver_sql(
                        conn, f"SELECT id, dim, vectors FROM embedding_blocks WHERE id IN ({marks})"
                    ),
                    tuple(chunk),
                )
                for bid, block_dim, blob in iter(cursor.fetchone, None):
                    if int(block_dim) != dim:
                        continue  # another model under the same key: treat as not cached
                    matrix = np.frombuffer(blob, dtype=FLOATS).reshape(-1, dim)
                    for t, rows, positions in plan[int(bid)]:
                        targets[t][1][positions] = matrix[rows]
                        found[t][positions] = True
    return found


def write(engine: Engine, encoder: str, message_ids: Sequence[int], vectors: np.ndarray) -> int:
    """Cache vectors of messages not cached yet for `encoder`; returns how many were new."""
    ids = np.asarray(message_ids, dtype=np.int64)
    matrix = np.ascontiguousarray(vectors, dtype=FLOATS)
    if matrix.ndim != 2 or len(matrix) != len(ids):
        raise ValueError(f"{len(ids)} message ids but vectors of shape {matrix.shape}")
    _migrate(engine, encoder)
    with engine.begin() as conn:
        known = [i for _, i in _index(conn, encoder)]
        ids, first = np.unique(ids, return_index=True)
        matrix = matrix[first]
        if known:
            new = ~np.isin(ids, np.concatenate(known))
            ids, matrix = ids[new], matrix[new]
        _insert(conn, encoder, ids, matrix)
    return len(ids)


def _insert(conn: Any, encoder: str, ids: np.ndarray, matrix: np.ndarray) -> None:
    if not len(ids):
        return
    conn.exec_driver_sql(
        driver_sql(
            conn,
            "INSERT INTO embedding_blocks (encoder, dim, count, message_ids, vectors) "
            "VALUES (?, ?, ?, ?, ?)",
        ),
        [
            (
                encoder,
                int(matrix.shape[1]),
                len(ids[s : s + BLOCK_ROWS]),
                ids[s : s + BLOCK_ROWS].astype(IDS).tobytes(),
                matrix[s : s + BLOCK_ROWS].astype(FLOATS).tobytes(),
            )
            for s in range(0, len(ids), BLOCK_ROWS)
        ],
    )


def count(engine: Engine, encoder: str) -> int:
    """Messages with a cached vector for `encoder`."""
    return len(cached_ids(engine, encoder))


def _migrate(engine: Engine, encoder: str) -> None:
    """Move vectors cached one row per message (before blocks) into blocks, once."""
    with engine.connect() as conn:
        legacy = raw_rows(conn, "SELECT 1 FROM embeddings WHERE encoder = ? LIMIT 1", (encoder,))
    if not legacy:
        return
    with engine.begin() as conn:
        rows = raw_rows(
            conn,
            "SELECT message_id, dim, vector FROM embeddings WHERE encoder = ? ORDER BY message_id",
            (encoder,),
        )
        by_dim: dict[int, list[tuple[int, bytes]]] = {}
        for mid, dim, vector in rows:
            by_dim.setdefault(int(dim), []).append((int(mid), bytes(vector)))
        known = [i for _, i in _index(conn, encoder)]
        seen = np.concatenate(known) if known else np.zeros(0, dtype=np.int64)
        for dim, items in by_dim.items():
            ids = np.asarray([mid for mid, _ in items], dtype=np.int64)
            matrix = np.frombuffer(b"".join(v for _, v in items), dtype=FLOATS).reshape(-1, dim)
            new = ~np.isin(ids, seen)
            _insert(conn, encoder, ids[new], matrix[new])
        conn.exec_driver_sql(
            driver_sql(conn, "DELETE FROM embeddings WHERE encoder = ?"), (encoder,)
        )
