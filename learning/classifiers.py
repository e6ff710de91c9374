"""The embed backend: frozen encoder features + a balanced linear head (small-text's
SklearnClassifier), plus (given the messages' hashed n-grams) a lexical head whose logits
add to it; temperature-calibrated on cross-validated logits."""

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
from learning.lexical import LexicalHead, LexicalSpec

ABSENT_LOGIT = -30.0
"""Logit of a technique with no training labels yet: never predicted."""
DENSE_C = 0.3
"""Inverse regularisation of the embedding head (grouped 5-fold CV on AnnoMI's training
side: 0.694 at 0.3 against 0.683 at 1.0 alone, and better beside the lexical head)."""


CALIBRATION_LARGE = 1_000
CALIBRATION_FOLDS_LARGE = 3
"""From CALIBRATION_LARGE labels the temperature is cross-validated over 3 folds, not 5.
On AnnoMI dev (held-out training-side transcripts; 1,000 / 2,000 / 3,000 labels x 3
draws) the calibrated model's ECE was the same (mean 0.0359 both ways) and the fitting
took 40% less time (2,000 labels: 0.57 s against 0.97 s)."""


class EmbedClassifier:
    """Logistic regression (class weights balanced) on embedding features."""

    backend = "embed"

    def __init__(
        self,
        labels: list[str],
        *,
        multi_label: bool = False,
        calibrate: bool = True,
        c: float = DENSE_C,
        seed: int = 0,
        temperature: float | None = None,
    ) -> None:
        """`temperature`: a calibration temperature to keep (the previous round's) instead of
        cross-validating one in `fit`."""
        self.labels = list(labels)
        self.multi_label = multi_label
        self.calibrate = calibrate
        self.c = c
        self.seed = seed
        self.temperature = 1.0 if temperature is None else float(temperature)
        self.fit_temperature = calibrate and temperature is None
        """Whether `fit` cross-validates the temperature (False: it keeps the given one)."""
        self.calibrated_on: int | None = None
        """How many labels `fit` cross-validated the temperature on (None: it did not)."""
        self.clf: Any = None
        self.lexical: LexicalHead | None = None
        """The lexical head, when the model was fitted with n-gram counts (single-label)."""
        self.pseudo_labelled = 0
        """Pool messages it was also fitted on with its own confident predictions as labels
        (learning.self_training)."""

    def _model(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            class_weight="balanced", max_iter=2000, C=self.c, random_state=self.seed
        )

    def fit(self, x: np.ndarray, y: np.ndarray, lexical: Any = None) -> EmbedClassifier:
        """Train on features `x` and label indices `y` (0/1 matrix when multi-label).

        `lexical`: the same messages' n-gram counts (LexicalSpec.transform or
        learning.features.lexical_features, rows as in x); single-label models then add a
        lexical head, and need the counts (or the texts) to predict."""
        # A linear head on a few thousand rows is faster on one BLAS thread than on several
        # competing ones (7x here while a model trains beside it).
        with threadpool_limits(1):
            return self._fit(x, y, None if self.multi_label else lexical)

    def _fit(self, x: np.ndarray, y: np.ndarray, lexical: Any) -> EmbedClassifier:
        from scipy.sparse import csr_matrix

        small_text_core.load()
        from small_text import SklearnClassifier, SklearnDataset

        k = len(self.labels)
        self.clf = SklearnClassifier(self._model(), num_classes=k, multi_label=self.multi_label)
        targets = csr_matrix(y) if self.multi_label else np.asarray(y)
        counts = _as_counts(lexical)
        with ThreadPoolExecutor(1) as side:
            # the temperature's cross-validation runs beside the final fit
            temperature = (
                side.submit(self._cross_validated_temperature, x, np.asarray(y), counts)
                if self.fit_temperature and not self.multi_label
                else None
            )
            self.clf.fit(SklearnDataset(x, targets, target_labels=np.arange(k)))
            if counts is not None:
                self.lexical = LexicalHead(LexicalSpec()).fit(counts, np.asarray(y), self.seed)
            fitted = temperature.result() if temperature is not None else None
            if fitted is not None:
                self.temperature, self.calibrated_on = fitted, len(y)
        return self

    def _cross_validated_temperature(
        self, x: np.ndarray, y: np.ndarray, counts: Any = None
    ) -> float | None:
        """The temperature that fits cross-validated logits; None with too few labels."""
        from sklearn.model_selection import StratifiedKFold

        per_label = np.bincount(y)
        most = CALIBRATION_FOLDS_LARGE if len(y) >= CALIBRATION_LARGE else 5
        folds = int(min(most, per_label[per_label > 0].min())) if len(per_label) else 0
        if folds < 2 or len(y) < 20:
            return None
        logits = np.zeros((len(y), len(self.labels)))
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.seed)

        def fold(split: tuple[np.ndarray, np.ndarray]) -> None:
            train, test = split
            model = self._model().fit(x[train], y[train])
            logits[test] = _full_logits(model, x[test], len(self.labels))
            if counts is not None:
                head = LexicalHead(LexicalSpec()).fit(counts[train], y[train], self.seed)
                logits[test] += _full_logits(head.model, counts[test], len(self.labels), head)

        # The folds are independent and numpy releases the GIL in their array work: on two
        # cores a round's calibration takes about half the time in threads.
        with ThreadPoolExecutor(min(folds, os.cpu_count() or 1)) as pool:
            list(pool.map(fold, splitter.split(x, y)))
        return fit_temperature(logits, y)

    @property
    def lexical_spec(self) -> LexicalSpec | None:
        """How to turn texts into the counts `predict_proba` needs; None: it needs none."""
        return self.lexical.spec if self.lexical is not None else None

    def logits(self, x: np.ndarray, lexical: Any = None) -> np.ndarray:
        out = _full_logits(self.clf.model, x, len(self.labels))
        if self.lexical is not None:
            counts = self._counts(lexical, len(x))
            out += _full_logits(self.lexical.model, counts, len(self.labels), self.lexical)
        return out

    def _counts(self, lexical: Any, rows: int) -> Any:
        if lexical is None:
            raise ValueError("this model has a lexical head: give the messages' texts or counts")
        counts = _as_counts(lexical, self.lexical.spec if self.lexical else None)
        if counts.shape[0] != rows:
            raise ValueError(f"{counts.shape[0]} lexical rows for {rows} feature rows")
        return counts

    def predict_proba(
        self, x: np.ndarray, lexical: Any = None, batch_size: int = 65_536
    ) -> np.ndarray:
        """Calibrated probabilities, (n, techniques). `lexical`: the messages' n-gram
        counts or their texts, needed when the model has a lexical head."""
        if self.multi_label:
            return np.asarray(self.clf.model.predict_proba(x))
        counts = self._counts(lexical, len(x)) if self.lexical is not None else None
        with threadpool_limits(1):
            parts = [
                softmax(
                    self.logits(
                        x[s : s + batch_size],
                        counts[s : s + batch_size] if counts is not None else None,
                    ),
                    self.temperature,
                )
                for s in range(0, len(x), batch_size)
            ]
        return np.vstack(parts) if parts else np.zeros((0, len(self.labels)))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "head.pkl").open("wb") as fh:
            pickle.dump(self.clf.model, fh)
        if self.lexical is not None:
            with (folder / "lexical.pkl").open("wb") as fh:
                pickle.dump(self.lexical, fh)
        meta = {
            "backend": self.backend,
            "labels": self.labels,
            "multi_label": self.multi_label,
            "temperature": self.temperature,
            "c": self.c,
            "seed": self.seed,
            "lexical": self.lexical.spec.as_dict() if self.lexical is not None else None,
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
        if meta.get("lexical"):
            with (folder / "lexical.pkl").open("rb") as fh:
                self.lexical = pickle.load(fh)  # noqa: S301 - as head.pkl
        return self


def _as_counts(lexical: Any, spec: LexicalSpec | None = None) -> Any:
    """n-gram counts as given, or computed from texts."""
    if lexical is None or hasattr(lexical, "tocsr"):
        return lexical.tocsr() if lexical is not None else None
    return (spec or LexicalSpec()).transform(list(lexical))


def _full_logits(model: Any, x: Any, k: int, head: LexicalHead | None = None) -> np.ndarray:
    """Logits for all k techniques, whatever subset the model was trained on (the lexical
    head's when `head` is given: x then holds n-gram counts)."""
    classes = np.asarray(model.classes_, dtype=int)
    raw = head.decision(x) if head is not None else model.decision_function(x)
    out = np.full((x.shape[0], k), ABSENT_LOGIT)
    if raw.ndim == 1:  # two classes seen: sklearn gives the logit of the second
        out[:, classes[0]] = 0.0
        out[:, classes[1]] = raw
    else:
        out[:, classes] = raw
    return out
