"""The embed backend: frozen encoder features + a balanced linear head (small-text's
SklearnClassifier), temperature-calibrated on cross-validated logits."""

from __future__ import annotations

import json
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from learning import small_text_core
from learning.calibration import fit_temperature, softmax

ABSENT_LOGIT = -30.0
"""Logit of a technique with no training labels yet: never predicted."""


class EmbedClassifier:
    """Logistic regression (class weights balanced) on embedding features."""

    backend = "embed"

    def __init__(
        self,
        labels: list[str],
        *,
        multi_label: bool = False,
        calibrate: bool = True,
        c: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.labels = list(labels)
        self.multi_label = multi_label
        self.calibrate = calibrate
        self.c = c
        self.seed = seed
        self.temperature = 1.0
        self.clf: Any = None

    def _model(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            class_weight="balanced", max_iter=2000, C=self.c, random_state=self.seed
        )

    def fit(self, x: np.ndarray, y: np.ndarray) -> EmbedClassifier:
        """Train on features `x` and label indices `y` (0/1 matrix when multi-label)."""
        # A linear head on a few thousand rows is faster on one BLAS thread than on several
        # competing ones (7x here while a model trains beside it).
        with threadpool_limits(1):
            return self._fit(x, y)

    def _fit(self, x: np.ndarray, y: np.ndarray) -> EmbedClassifier:
        from scipy.sparse import csr_matrix

        small_text_core.load()
        from small_text import SklearnClassifier, SklearnDataset

        k = len(self.labels)
        self.clf = SklearnClassifier(self._model(), num_classes=k, multi_label=self.multi_label)
        targets = csr_matrix(y) if self.multi_label else np.asarray(y)
        with ThreadPoolExecutor(1) as side:
            # the temperature's cross-validation runs beside the final fit
            temperature = (
                side.submit(self._cross_validated_temperature, x, np.asarray(y))
                if self.calibrate and not self.multi_label
                else None
            )
            self.clf.fit(SklearnDataset(x, targets, target_labels=np.arange(k)))
            if temperature is not None:
                self.temperature = temperature.result()
        return self

    def _cross_validated_temperature(self, x: np.ndarray, y: np.ndarray) -> float:
        from sklearn.model_selection import StratifiedKFold

        counts = np.bincount(y)
        folds = int(min(5, counts[counts > 0].min())) if len(counts) else 0
        if folds < 2 or len(y) < 20:
            return 1.0
        logits = np.zeros((len(y), len(self.labels)))
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.seed)

        def fold(split: tuple[np.ndarray, np.ndarray]) -> None:
            train, test = split
            model = self._model().fit(x[train], y[train])
            logits[test] = _full_logits(model, x[test], len(self.labels))

        # The folds are independent and numpy releases the GIL in their array work: on two
        # cores a round's calibration takes about half the time in threads.
        with ThreadPoolExecutor(min(folds, os.cpu_count() or 1)) as pool:
            list(pool.map(fold, splitter.split(x, y)))
        return fit_temperature(logits, y)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return _full_logits(self.clf.model, x, len(self.labels))

    def predict_proba(self, x: np.ndarray, batch_size: int = 65_536) -> np.ndarray:
        """Calibrated probabilities, (n, techniques)."""
        if self.multi_label:
            return np.asarray(self.clf.model.predict_proba(x))
        with threadpool_limits(1):
            parts = [
                softmax(self.logits(x[s : s + batch_size]), self.temperature)
                for s in range(0, len(x), batch_size)
            ]
        return np.vstack(parts) if parts else np.zeros((0, len(self.labels)))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "head.pkl").open("wb") as fh:
            pickle.dump(self.clf.model, fh)
        meta = {
            "backend": self.backend,
            "labels": self.labels,
            "multi_label": self.multi_label,
            "temperature": self.temperature,
            "c": self.c,
            "seed": self.seed,
        }
        (folder / "classifier.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: Path) -> EmbedClassifier:
        small_text_core.load()
        from small_text import SklearnClassifier

        meta = json.loads((folder / "classifier.json").read_text())
        self = cls(meta["labels"], multi_label=meta["multi_label"], c=meta["c"], seed=meta["seed"])
        self.temperature = float(meta["temperature"])
        with (folder / "head.pkl").open("rb") as fh:
            model = pickle.load(fh)  # noqa: S301 - our own file, checksummed in the registry
        self.clf = SklearnClassifier(
            model, num_classes=len(self.labels), multi_label=self.multi_label
        )
        self.clf.model = model
        return self


def _full_logits(model: Any, x: np.ndarray, k: int) -> np.ndarray:
    """Logits for all k techniques, whatever subset the model was trained on."""
    classes = np.asarray(model.classes_, dtype=int)
    raw = model.decision_function(x)
    out = np.full((len(x), k), ABSENT_LOGIT)
    if raw.ndim == 1:  # two classes seen: sklearn gives the logit of the second
        out[:, classes[0]] = 0.0
        out[:, classes[1]] = raw
    else:
        out[:, classes] = raw
    return out
