"""What the learning loop writes: embedding cache, model versions, predictions, rounds."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
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

    def rows(self) -> Iterator[tuple[int, str, str, float]]:
        """(message id, probabilities as JSON, top label, uncertainty), JSON written by a
        format string: json.dumps per row was a third of a 100,000-message round."""
        template = "{" + ", ".join(f"{json.dumps(k)}: %.5f" for k in self.labels) + "}"
        probs = self.probabilities.tolist()
        for mid, p, t, u in zip(self.message_ids, probs, self.top, self.uncertainty, strict=True):
            yield int(mid), template % tuple(p), self.labels[t], float(u)


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

    # -- embedding cache ---------------------------------------------------------------------

    def embeddings(self, encoder: str, message_ids: Sequence[int]) -> dict[int, bytes]:
        """Cached vectors (raw float32 bytes) of these messages for `encoder`."""
        table = _table("embeddings")
        out: dict[int, bytes] = {}
        with self.engine.connect() as conn:
            if len(message_ids) > 20_000:
                # Most of the store: one plain scan beats thousands of IN lists, and the
                # driver's rows beat SQLAlchemy's at 100,000s of blobs.
                wanted = set(message_ids)
                rows = raw_rows(
                    conn, "SELECT message_id, vector FROM embeddings WHERE encoder = ?", (encoder,)
                )
                out = {mid: bytes(v) for mid, v in rows if mid in wanted}
            else:
                for start in range(0, len(message_ids), CHUNK):
                    chunk = list(message_ids[start : start + CHUNK])
                    found = conn.execute(
                        select(table.c.message_id, table.c.vector)
                        .where(table.c.encoder == encoder)
                        .where(table.c.message_id.in_(chunk))
                    )
                    out.update((mid, bytes(v)) for mid, v in found)
        return out

    def put_embeddings(self, encoder: str, dim: int, items: Iterable[tuple[int, bytes]]) -> int:
        """Store vectors; returns how many were written. Existing ones are left alone."""
        rows = [(encoder, mid, dim, vec) for mid, vec in items]
        if not rows:
            return 0
        with self.engine.begin() as conn:
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            conflict = "ON CONFLICT (encoder, message_id) DO NOTHING"
            conn.exec_driver_sql(
                f"INSERT INTO embeddings (encoder, message_id, dim, vector) "
                f"VALUES ({mark}, {mark}, {mark}, {mark}) {conflict}",
                rows,
            )
        return len(rows)

    def count_embeddings(self, encoder: str) -> int:
        table = _table("embeddings")
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(table).where(table.c.encoder == encoder)
                ).scalar_one()
            )

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
        with self.engine.begin() as conn:
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


def _insert_predictions(
    conn: Any, version_id: int, predictions: PredictionBatch | Sequence[PredictionRow]
) -> None:
    if isinstance(predictions, PredictionBatch):
        rows: Iterable[tuple[int, str, str, float]] = predictions.rows()
    else:
        rows = (
            (p.message_id, json.dumps(p.probabilities), p.top_label, p.uncertainty)
            for p in predictions
        )
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    probs = f"CAST({mark} AS JSON)" if conn.dialect.name == "postgresql" else mark
    params = [(mid, version_id, probs_json, top, unc) for mid, probs_json, top, unc in rows]
    if not params:
        return
    conn.exec_driver_sql(
        "INSERT INTO predictions (message_id, model_version_id, probabilities, top_label, "
        f"uncertainty) VALUES ({mark}, {mark}, {probs}, {mark}, {mark})",
        params,
    )
