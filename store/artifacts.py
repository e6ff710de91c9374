"""What the learning loop writes: embedding cache, model versions, predictions, rounds."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, func, select, update
from sqlmodel import SQLModel

from store import models as m
from store.db import raw_rows
from store.errors import StoreError

if TYPE_CHECKING:
    from store.repository import Repository

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
class PredictionRow:
    message_id: int
    probabilities: dict[str, float]
    top_label: str
    uncertainty: float


@dataclass(frozen=True)
class PredictionBatch:
    """Predictions of a whole pool at once: ids, probabilities (n, k) and technique keys."""

    message_ids: Sequence[int]
    probabilities: Any
    labels: Sequence[str]
    top: Sequence[int]
    uncertainty: Sequence[float]

    def rows(self, version_id: int) -> list[tuple[int, int, str, str, float]]:
        """(message id, version id, probabilities as JSON, top label, uncertainty) rows."""
        if not len(self.message_ids) == len(self.top) == len(self.uncertainty):
            raise ValueError("message ids, top labels and uncertainties differ in length")
        return list(
            zip(
                [int(i) for i in self.message_ids],
                repeat(version_id),
                probability_json(self.labels, self.probabilities),
                [self.labels[int(t)] for t in self.top],
                [float(u) for u in self.uncertainty],
                strict=False,  # repeat() is endless; the lengths are checked above
            )
        )


def probability_json(labels: Sequence[str], probabilities: Any) -> list[str]:
    """Rows of an (n, k) probability array as JSON objects, `{"a": 0.12345, ...}`.

    Every value in [0, 1] written with 5 decimals has the width of "0.12345", so numpy
    writes the digits of all rows into one byte buffer and each row is a slice of it: a
    100,000-message pool takes 30 ms instead of a third of a second formatting per row.
    """
    import numpy as np

    p = np.asarray(probabilities, dtype=np.float64)
    prefixes = [("{" if j == 0 else ", ") + json.dumps(k) + ": " for j, k in enumerate(labels)]
    if p.ndim != 2 or p.shape[1] != len(labels):
        raise ValueError(f"{len(labels)} labels but probabilities of shape {p.shape}")
    if not len(labels):
        return ["{}"] * len(p)
    if not (np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()):
        template = "".join(f"{pre}%.5f" for pre in prefixes) + "}"
        return [template % tuple(row) for row in p.tolist()]
    width = sum(len(pre) + 7 for pre in prefixes) + 1
    buf = np.empty((len(p), width), dtype=np.uint8)
    scaled = np.rint(p * 100_000).astype(np.int64)
    at = 0
    for j, pre in enumerate(prefixes):
        buf[:, at : at + len(pre)] = np.frombuffer(pre.encode("ascii"), dtype=np.uint8)
        at += len(pre)
        value = scaled[:, j]
        buf[:, at] = 48 + value // 100_000
        buf[:, at + 1] = ord(".")
        for d in range(5):
            buf[:, at + 2 + d] = 48 + (value // 10 ** (4 - d)) % 10
        at += 7
    buf[:, at] = ord("}")
    text = buf.tobytes().decode("ascii")
    return [text[s : s + width] for s in range(0, len(text), width)]


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
    """Access to the learning loop's tables, through a Repository's engine."""

    def __init__(self, repo: Repository) -> None:
        self.engine = repo.engine

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
        return f"v{count + 1}"

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
            _insert_predictions(conn, version_id, predictions)
            if isinstance(predictions, PredictionBatch):
                _insert_prediction_set(conn, version_id, predictions)
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

    def add_predictions(self, version_id: int, predictions: Sequence[PredictionRow]) -> None:
        """Replace a version's stored predictions for these messages."""
        table = _table("predictions")
        ids = [p.message_id for p in predictions]
        sets = _table("prediction_sets")
        with self.engine.begin() as conn:
            # The version's one-row copy no longer matches: readers fall back to the rows.
            conn.execute(delete(sets).where(sets.c.model_version_id == version_id))
            for start in range(0, len(ids), CHUNK):
                conn.execute(
                    delete(table)
                    .where(table.c.model_version_id == version_id)
                    .where(table.c.message_id.in_(ids[start : start + CHUNK]))
                )
            _insert_predictions(conn, version_id, predictions)

    def predictions(
        self, version_id: int, message_ids: Sequence[int] | None = None
    ) -> dict[int, PredictionRow]:
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
                    out[mid] = PredictionRow(mid, dict(probs), top, float(unc))
        return out

    def top_labels(self, version_id: int) -> dict[int, str]:
        """Message id -> the version's predicted technique (no probabilities parsed)."""
        sql = "SELECT message_id, top_label FROM predictions WHERE model_version_id = ?"
        with self.engine.connect() as conn:
            return {int(mid): str(top) for mid, top in raw_rows(conn, sql, (version_id,))}

    def top_label_codes(self, version_id: int, labels: Sequence[str]) -> tuple[Any, Any]:
        """(message ids, codes) of a version's predicted techniques as int64 arrays: the
        index in `labels`, or -1 for a technique not among them. Read from the version's
        one-row prediction set when it has one (milliseconds for 100,000 messages)."""
        import numpy as np

        sql = (
            "SELECT labels, message_ids, probabilities FROM prediction_sets "
            "WHERE model_version_id = ?"
        )
        index = {label: i for i, label in enumerate(labels)}
        with self.engine.connect() as conn:
            found = raw_rows(conn, sql, (version_id,))
            if found:
                names, ids, blob = found[0]
                names = json.loads(names) if isinstance(names, str) else list(names)
                mids = np.frombuffer(ids, dtype="<i8").astype(np.int64)
                proba = np.frombuffer(blob, dtype="<f4").reshape(len(mids), len(names))
                remap = np.asarray([index.get(n, -1) for n in names], dtype=np.int64)
                return mids, remap[proba.argmax(axis=1)]
            rows = raw_rows(
                conn,
                "SELECT message_id, top_label FROM predictions WHERE model_version_id = ?",
                (version_id,),
            )
        mids = np.fromiter((mid for mid, _ in rows), dtype=np.int64, count=len(rows))
        codes = np.fromiter((index.get(t, -1) for _, t in rows), dtype=np.int64, count=len(rows))
        return mids, codes

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
    """The version's predictions again, as one row of packed arrays."""
    import numpy as np

    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    labels = f"CAST({mark} AS JSON)" if conn.dialect.name == "postgresql" else mark
    conn.exec_driver_sql(
        "INSERT INTO prediction_sets (model_version_id, labels, count, message_ids, "
        f"probabilities) VALUES ({mark}, {labels}, {mark}, {mark}, {mark})",
        (
            version_id,
            json.dumps(list(batch.labels)),
            len(batch.message_ids),
            np.asarray(batch.message_ids, dtype="<i8").tobytes(),
            np.asarray(batch.probabilities, dtype="<f4").tobytes(),
        ),
    )


def _insert_predictions(
    conn: Any, version_id: int, predictions: PredictionBatch | Sequence[PredictionRow]
) -> None:
    """Bulk-insert a version's predictions: COPY on PostgreSQL, one executemany on SQLite."""
    if isinstance(predictions, PredictionBatch):
        rows = predictions.rows(version_id)
    else:
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
