"""A model version's predictions, stored as one row of packed arrays (`prediction_sets`) and
read through a per-repository cache.

A round scores its whole pool (100,000s of messages). Writing one row per message cost the
round most of its time (0.9 s of 2.8 s at 100,000 messages on SQLite); the packed row is a
few megabytes written at once. Versions never change once committed, so what was read is
kept: the suggestion for the message on screen, the queue order and the top labels are then
array look-ups. Stores whose versions have per-message rows (`predictions`, written by
releases before this one) are still read through those rows.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from store.db import raw_rows

if TYPE_CHECKING:
    import numpy as np
    from sqlalchemy.engine import Engine

KEEP_SETS = 6
"""Whole prediction sets kept in memory (a 100,000-message set is about 4 MB)."""


@dataclass(frozen=True)
class PredictionRow:
    message_id: int
    probabilities: dict[str, float]
    top_label: str
    uncertainty: float


class PackedPredictions:
    """One version's predictions: message ids, (n, k) float32 probabilities, technique keys."""

    def __init__(self, labels: Sequence[str], message_ids: np.ndarray, proba: np.ndarray) -> None:
        import numpy as np

        self.labels = list(labels)
        self.message_ids = message_ids
        self.probabilities = proba
        self._order = np.argsort(message_ids, kind="stable")
        self.sorted_ids = message_ids[self._order]

    def __len__(self) -> int:
        return len(self.message_ids)

    def positions(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Row of each message id in this set, -1 where it has none."""
        import numpy as np

        wanted = np.asarray(ids, dtype=np.int64)
        if not len(self.sorted_ids):
            return np.full(len(wanted), -1, dtype=np.int64)
        at = np.searchsorted(self.sorted_ids, wanted)
        inside = at < len(self.sorted_ids)
        found = np.zeros(len(wanted), dtype=bool)
        found[inside] = self.sorted_ids[at[inside]] == wanted[inside]
        return np.where(found, self._order[np.minimum(at, len(self._order) - 1)], -1)

    def uncertainty(self) -> np.ndarray:
        """1 - (top probability - second), per message: what the queue is ordered by."""
        import numpy as np

        p = self.probabilities
        if p.shape[1] < 2:
            return np.zeros(len(p))
        two = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:].astype(np.float64)
        return 1.0 - (two[:, 1] - two[:, 0])

    def queue_order(self) -> list[int]:
        """Message ids, most uncertain first (ties by id)."""
        import numpy as np

        return self.message_ids[np.lexsort((self.message_ids, -self.uncertainty()))].tolist()

    def rows(self, ids: Sequence[int] | None = None) -> dict[int, PredictionRow]:
        """Stored predictions of these messages (all when None); absent ones are left out.
        Probabilities are rounded to 5 decimals, as they are shown."""
        import numpy as np

        at = np.arange(len(self)) if ids is None else self.positions(ids)
        at = at[at >= 0]
        proba = self.probabilities[at].astype(np.float64)
        unc = self.uncertainty()[at]
        top = proba.argmax(axis=1)
        out: dict[int, PredictionRow] = {}
        for j, (mid, row) in enumerate(
            zip(self.message_ids[at].tolist(), proba.round(5).tolist(), strict=True)
        ):
            out[mid] = PredictionRow(
                mid, dict(zip(self.labels, row, strict=True)), self.labels[top[j]], float(unc[j])
            )
        return out

    def top_labels(self) -> dict[int, str]:
        top = self.probabilities.argmax(axis=1).tolist()
        return {mid: self.labels[t] for mid, t in zip(self.message_ids.tolist(), top, strict=True)}


class PredictionSets:
    """Prediction sets read from one store, kept (they never change once written)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._sets: OrderedDict[int, PackedPredictions] = OrderedDict()
        self._absent: set[int] = set()
        self._ids: dict[int, np.ndarray] = {}
        """Sorted message ids per version: which versions have a message, without the rest."""

    def get(self, version_id: int) -> PackedPredictions | None:
        """The version's set, or None when it has none (its predictions are rows)."""
        import numpy as np

        with self._lock:
            if version_id in self._sets:
                self._sets.move_to_end(version_id)
                return self._sets[version_id]
            if version_id in self._absent:
                return None
        sql = (
            "SELECT labels, message_ids, probabilities FROM prediction_sets "
            "WHERE model_version_id = ?"
        )
        with self.engine.connect() as conn:
            found = raw_rows(conn, sql, (version_id,))
        with self._lock:
            if not found:
                self._absent.add(version_id)  # a set is written with its version or never
                return None
            names, ids, blob = found[0]
            labels = json.loads(names) if isinstance(names, str) else list(names)
            mids = np.frombuffer(bytes(ids), dtype="<i8").astype(np.int64)
            proba = np.frombuffer(bytes(blob), dtype="<f4").reshape(len(mids), len(labels))
            packed = PackedPredictions(labels, mids, proba)
            self._sets[version_id] = packed
            self._ids[version_id] = packed.sorted_ids
            while len(self._sets) > KEEP_SETS:
                self._sets.popitem(last=False)
            return packed

    def contains(self, version_id: int, message_id: int) -> bool | None:
        """Whether the version's set has the message; None when the version has no set.
        Reads only the version's message ids the first time."""
        import numpy as np

        with self._lock:
            ids = self._ids.get(version_id)
            absent = version_id in self._absent
        if absent:
            return None
        if ids is None:
            with self.engine.connect() as conn:
                found = raw_rows(
                    conn,
                    "SELECT message_ids FROM prediction_sets WHERE model_version_id = ?",
                    (version_id,),
                )
            with self._lock:
                if not found:
                    self._absent.add(version_id)
                    return None
                ids = np.sort(np.frombuffer(bytes(found[0][0]), dtype="<i8").astype(np.int64))
                self._ids[version_id] = ids
        at = int(np.searchsorted(ids, message_id))
        return at < len(ids) and int(ids[at]) == message_id


def packed_arrays(message_ids: Sequence[int], probabilities: Any) -> tuple[bytes, bytes]:
    """(ids, probabilities) as stored: little-endian int64 and float32 bytes."""
    import numpy as np

    return (
        np.asarray(message_ids, dtype="<i8").tobytes(),
        np.asarray(probabilities, dtype="<f4").tobytes(),
    )
