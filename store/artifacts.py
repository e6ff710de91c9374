"""What the learning loop writes: embedding cache, model versions, predictions, rounds."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from store import models as m
from store.db import driver_sql, raw_rows
from store.errors import StoreError
from store.predictions import PredictionRow, PredictionSets, packed_arrays

CHUNK = 900


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


@dataclass(frozen=True)
class ModelVersionView:
    id: int
    tag: str
    created_at: str
    backend: str
    encoder: str
    codebook_key: str
    path: str | None
    checksum: str | None
    settings: dict[str, Any]
    metrics: dict[str, Any]
    parent_id: int | None
    active: bool


@dataclass(frozen=True)
class NewModelVersion:
    """A trained model about to be registered."""

    backend: str
    encoder: str
    codebook_key: str
    path: str
    checksum: str
    settings: dict[str, Any]
    metrics: dict[str, Any]
    parent_id: int | None = None


@dataclass(frozen=True)
class PredictionBatch:
    """Predictions of a whole pool at once: ids, probabilities (n, k) and technique keys.
    Stored as one packed row (store/predictions.py)."""

    message_ids: Sequence[int] | Any
    probabilities: Any
    labels: Sequence[str]

    def __post_init__(self) -> None:
        shape = getattr(self.probabilities, "shape", None)
        if shape is None or len(shape) != 2 or shape != (len(self.message_ids), len(self.labels)):
            raise ValueError(
                f"{len(self.message_ids)} messages and {len(self.labels)} labels but "
                f"probabilities of shape {shape}"
            )


@dataclass(frozen=True)
class RoundView:
    id: int
    number: int
    created_at: str
    strategy: str
    batch_size: int
    model_version_id: int | None
    queried_message_ids: list[int]
    stats: dict[str, Any] = field(default_factory=dict)


def _version_view(row: Any) -> ModelVersionView:
    return ModelVersionView(
        id=row.id,
        tag=row.tag,
        created_at=row.created_at.isoformat(),
        backend=row.backend,
        encoder=row.encoder,
        codebook_key=row.codebook_key,
        path=row.path,
        checksum=row.checksum,
        settings=dict(row.settings),
        metrics=dict(row.metrics),
        parent_id=row.parent_id,
        active=bool(row.active),
    )


class Artifacts:
    """Access to the learning loop's tables. `sets` caches the packed prediction sets read
    (they never change once committed); a repository builds one Artifacts and keeps it."""

    def __init__(self, engine: Engine, sets: PredictionSets | None = None) -> None:
        self.engine = engine
        self.sets: PredictionSets = sets if sets is not None else PredictionSets(engine)

    # -- embedding cache (store/vectors.py, loaded on first use: it needs numpy) ------------

    def embedding_matrix(self, encoder: str, message_ids: Sequence[int] | Any, dim: int) -> Any:
        """(vectors, found): cached float32 vectors of these messages in their order, zeros
        where none is cached, and a boolean mask of which ones are."""
        from store import vectors

        return vectors.read(self.engine, encoder, message_ids, dim)

    def embeddings_into(self, encoder: str, targets: Sequence[tuple[Any, Any]]) -> list[Any]:
        """Copy cached vectors into (n, dim) arrays or column views, row i from message id i
        of each (ids, array) target; returns a found-mask per target (store/vectors.py)."""
        from store import vectors

        return vectors.read_into(self.engine, encoder, targets)

    def put_embedding_matrix(
        self, encoder: str, message_ids: Sequence[int] | Any, matrix: Any
    ) -> int:
        """Cache vectors, row i for message_ids[i]; returns how many were not cached yet."""
        from store import vectors

        return vectors.write(self.engine, encoder, message_ids, matrix)

    def count_embeddings(self, encoder: str) -> int:
        """Messages with a cached vector for `encoder`."""
        from store import vectors

        return vectors.count(self.engine, encoder)

    # -- model versions ----------------------------------------------------------------------

    def versions(self) -> list[ModelVersionView]:
        table = _table("model_versions")
        with self.engine.connect() as conn:
            return [_version_view(r) for r in conn.execute(select(table).order_by(table.c.id))]

    def version(self, ref: int | str) -> ModelVersionView:
        """A model version by id or tag ("v3")."""
        for v in self.versions():
            if str(ref) in (str(v.id), v.tag):
                return v
        raise StoreError(f"no model version {ref!r} (see `techne models list`)")

    def active(self) -> ModelVersionView | None:
        return next((v for v in self.versions() if v.active), None)

    def activate(self, ref: int | str) -> ModelVersionView:
        """Make a version the active one (rollback is activating an older one)."""
        target = self.version(ref)
        table = _table("model_versions")
        with self.engine.begin() as conn:
            conn.execute(update(table).where(table.c.active.is_(True)).values(active=False))
            conn.execute(update(table).where(table.c.id == target.id).values(active=True))
        return self.version(target.id)

    def next_tag(self) -> str:
        table = _table("model_versions")
        with self.engine.connect() as conn:
            count = conn.execute(select(func.max(table.c.id))).scalar() or 0
            # The codebook's zero-shot model is v0 and only ever the first version: the
            # trained ones after it count from v1 all the same.
            zero = conn.execute(select(table.c.id).where(table.c.tag == "v0")).first()
        return f"v{count + (0 if zero else 1)}"

    # -- a round, committed in one transaction ------------------------------------------------

    def commit_round(
        self,
        model: NewModelVersion,
        tag: str,
        predictions: PredictionBatch | Sequence[PredictionRow],
        strategy: str,
        batch_size: int,
        queried: Sequence[int],
        stats: dict[str, Any],
    ) -> tuple[ModelVersionView, RoundView]:
        """Register the model (active), its predictions and the round, or nothing at all."""
        versions, rounds = _table("model_versions"), _table("rounds")
        with self.engine.begin() as conn:
            conn.execute(update(versions).where(versions.c.active.is_(True)).values(active=False))
            result = conn.execute(
                versions.insert().values(
                    tag=tag,
                    created_at=m.utcnow(),
                    backend=model.backend,
                    encoder=model.encoder,
                    codebook_key=model.codebook_key,
                    path=model.path,
                    checksum=model.checksum,
                    settings=model.settings,
                    metrics=model.metrics,
                    parent_id=model.parent_id,
                    active=True,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            version_id = int(key[0])
            if isinstance(predictions, PredictionBatch):
                _insert_prediction_set(conn, version_id, predictions)
            else:
                _insert_predictions(conn, version_id, predictions)
            number = (conn.execute(select(func.max(rounds.c.number))).scalar() or 0) + 1
            conn.execute(
                rounds.insert().values(
                    number=number,
                    created_at=m.utcnow(),
                    strategy=strategy,
                    batch_size=batch_size,
                    model_version_id=version_id,
                    queried_message_ids=list(queried),
                    stats=stats,
                )
            )
        round_view = self.latest_round()
        assert round_view is not None
        return self.version(version_id), round_view

    def predictions(
        self, version_id: int, message_ids: Sequence[int] | None = None
    ) -> dict[int, PredictionRow]:
        """A version's stored predictions for these messages (all when None)."""
        packed = self.sets.get(version_id)
        if packed is not None:
            return packed.rows(message_ids)
        table = _table("predictions")
        out: dict[int, PredictionRow] = {}
        query = select(
            table.c.message_id, table.c.probabilities, table.c.top_label, table.c.uncertainty
        ).where(table.c.model_version_id == version_id)
        with self.engine.connect() as conn:
            if message_ids is None:
                batches: Iterator[Any] = iter([conn.execute(query)])
            else:
                ids = list(message_ids)
                batches = (
                    conn.execute(query.where(table.c.message_id.in_(ids[s : s + CHUNK])))
                    for s in range(0, len(ids), CHUNK)
                )
            for rows in batches:
                for mid, probs, top, unc in rows:
                    if isinstance(probs, str):
                        probs = json.loads(probs)
                    out[mid] = PredictionRow(mid, dict(probs), top, float(unc))
        return out

    def prediction(self, version_id: int, message_id: int) -> PredictionRow | None:
        """One message's prediction by a version, or None when it has none."""
        if self.sets.contains(version_id, message_id) is False:
            return None  # the version's set (its message ids only) says no: nothing to read
        return self.predictions(version_id, [message_id]).get(message_id)

    def top_labels(self, version_id: int) -> dict[int, str]:
        """Message id -> the version's predicted technique."""
        packed = self.sets.get(version_id)
        if packed is not None:
            return packed.top_labels()
        sql = "SELECT message_id, top_label FROM predictions WHERE model_version_id = ?"
        with self.engine.connect() as conn:
            return {int(mid): str(top) for mid, top in raw_rows(conn, sql, (version_id,))}

    def top_label_codes(self, version_id: int, labels: Sequence[str]) -> tuple[Any, Any]:
        """(message ids, codes) of a version's predicted techniques as int64 arrays: the
        index in `labels`, or -1 for a technique not among them."""
        import numpy as np

        index = {label: i for i, label in enumerate(labels)}
        packed = self.sets.get(version_id)
        if packed is not None:
            remap = np.asarray([index.get(n, -1) for n in packed.labels], dtype=np.int64)
            return packed.message_ids.copy(), remap[packed.probabilities.argmax(axis=1)]
        with self.engine.connect() as conn:
            rows = raw_rows(
                conn,
                "SELECT message_id, top_label FROM predictions WHERE model_version_id = ?",
                (version_id,),
            )
        mids = np.fromiter((mid for mid, _ in rows), dtype=np.int64, count=len(rows))
        codes = np.fromiter((index.get(t, -1) for _, t in rows), dtype=np.int64, count=len(rows))
        return mids, codes

    def queue_order(self, version_id: int) -> list[int]:
        """The messages a version scored, most uncertain first (ties by id)."""
        packed = self.sets.get(version_id)
        if packed is not None:
            return packed.queue_order()
        with self.engine.connect() as conn:
            rows = raw_rows(
                conn,
                "SELECT message_id FROM predictions WHERE model_version_id = ? "
                "ORDER BY uncertainty DESC, message_id",
                (version_id,),
            )
        return [int(mid) for (mid,) in rows]

    # -- rounds ------------------------------------------------------------------------------

    def rounds(self) -> list[RoundView]:
        table = _table("rounds")
        with self.engine.connect() as conn:
            return [
                RoundView(
                    id=r.id,
                    number=r.number,
                    created_at=r.created_at.isoformat(),
                    strategy=r.strategy,
                    batch_size=r.batch_size,
                    model_version_id=r.model_version_id,
                    queried_message_ids=list(r.queried_message_ids),
                    stats=dict(r.stats),
                )
                for r in conn.execute(select(table).order_by(table.c.number))
            ]

    def latest_round(self) -> RoundView | None:
        rounds = self.rounds()
        return rounds[-1] if rounds else None


def _insert_prediction_set(conn: Any, version_id: int, batch: PredictionBatch) -> None:
    """The version's predictions as one row of packed arrays (store/predictions.py)."""
    labels = "CAST(? AS JSON)" if conn.dialect.name == "postgresql" else "?"
    ids, proba = packed_arrays(batch.message_ids, batch.probabilities)
    conn.exec_driver_sql(
        driver_sql(
            conn,
            "INSERT INTO prediction_sets (model_version_id, labels, count, message_ids, "
            f"probabilities) VALUES (?, {labels}, ?, ?, ?)",
        ),
        (version_id, json.dumps(list(batch.labels)), len(batch.message_ids), ids, proba),
    )


def _insert_predictions(conn: Any, version_id: int, predictions: Sequence[PredictionRow]) -> None:
    """Bulk-insert per-message prediction rows: COPY on PostgreSQL, executemany on SQLite."""
    rows = [
        (p.message_id, version_id, json.dumps(p.probabilities), p.top_label, p.uncertainty)
        for p in predictions
    ]
    if not rows:
        return
    columns = "message_id, model_version_id, probabilities, top_label, uncertainty"
    if conn.dialect.name == "postgresql":
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            with cursor.copy(f"COPY predictions ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.close()
        return
    conn.exec_driver_sql(f"INSERT INTO predictions ({columns}) VALUES (?, ?, ?, ?, ?)", rows)
