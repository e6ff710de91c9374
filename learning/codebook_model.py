"""The codebook's model (v0): probabilities from a message vector's cosine similarity to
each technique's prototype (built by learning.zero_shot), saved and loaded by the registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from learning.calibration import softmax

BACKEND = "zeroshot"
TEMPERATURE = 0.1
"""Softmax temperature over cosine similarities (MiniLM's similarities to the techniques
differ by a few hundredths, so 1.0 would give near-uniform probabilities). Chosen by
log-loss on AnnoMI's dev conversations (bench/zero_shot_annomi.py: 0.01-0.2 tried; 0.1
best), never on test."""


class CodebookClassifier:
    """Probabilities from cosine similarity to technique prototypes: softmax(cos / T)."""

    backend = BACKEND

    def __init__(
        self, labels: list[str], prototypes: np.ndarray, temperature: float = TEMPERATURE
    ) -> None:
        self.labels = list(labels)
        self.prototypes = np.asarray(prototypes, dtype=np.float32)
        self.temperature = float(temperature)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return softmax(unit @ self.prototypes.T, self.temperature)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "prototypes.npy", self.prototypes)
        (folder / "zero_shot.json").write_text(
            json.dumps({"labels": self.labels, "temperature": self.temperature}, indent=2)
        )

    @classmethod
    def load(cls, folder: Path) -> CodebookClassifier:
        meta = json.loads((folder / "zero_shot.json").read_text())
        return cls(meta["labels"], np.load(folder / "prototypes.npy"), meta["temperature"])
