"""Seed ensembles of fine-tuned models: the same recipe trained with seeds s, s+1, ...;
the members' probabilities are averaged.

One fine-tuned MiniLM's macro-F1 on AnnoMI moves by about a point from seed to seed
(bench/finetune_annomi.py); averaging a few members removes most of that and is usually
better than any one of them. Each member is a full training run (and each prediction runs
every member), so it is a setting for GPU machines or for a final model, not for every
CPU round: ``members`` in techne.toml's [model] (default 1, a single model).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from learning.finetune import FinetuneClassifier, Progress, read_saved, saved_meta
from learning.inputs import ModelInput
from learning.metrics import macro_f1_of_scores
from learning.settings import FinetuneSettings

ENSEMBLE_FILE = "ensemble.json"


class FinetuneEnsemble:
    """FinetuneClassifier's interface over `settings.members` fine-tuned models."""

    backend = "finetune"

    def __init__(
        self, labels: list[str], settings: FinetuneSettings, *, multi_label: bool = False
    ) -> None:
        self.labels = list(labels)
        self.settings = settings
        self.multi_label = multi_label
        self.members: list[FinetuneClassifier] = []
        self.dev_history: list[float] = []
        """The ensemble's dev macro-F1 (one value: it is measured once, after training)."""
        self.best_epoch: int | None = None
        self.epochs_run = 0

    @property
    def device(self) -> str:
        return self.members[0].device if self.members else self.settings.device

    def fit(
        self,
        inputs: list[ModelInput],
        y: np.ndarray,
        dev_inputs: list[ModelInput] | None = None,
        dev_y: np.ndarray | None = None,
        progress: Progress | None = None,
    ) -> FinetuneEnsemble:
        """Train the members one after another, each with its own seed, on the same dev
        split when one is given (without one, each member holds out its own seeded 10%,
        and the ensemble has no dev score)."""
        n = self.settings.members
        self.members = []
        for i in range(n):
            member_settings = replace(self.settings, seed=self.settings.seed + i, members=1)
            member = FinetuneClassifier(self.labels, member_settings, multi_label=self.multi_label)

            def step(msg: str, frac: float, i: int = i) -> None:
                if progress is not None:
                    progress(f"model {i + 1}/{n}: {msg}", (i + frac) / n)

            member.fit(inputs, y, dev_inputs, dev_y, step)
            self.members.append(member)
        self.epochs_run = max(m.epochs_run for m in self.members)
        if dev_inputs is not None and dev_y is not None and len(dev_inputs):
            logits = self.predict_logits(dev_inputs)
            self.dev_history = [macro_f1_of_scores(np.asarray(dev_y), logits, self.multi_label)]
        if progress is not None:
            progress("done", 1.0)
        return self

    def member_probabilities(self, inputs: Sequence[ModelInput]) -> np.ndarray:
        """(members, n, k): each member's probabilities."""
        if not self.members:
            raise RuntimeError("fit() or load() first")
        return np.stack([m.predict_proba(inputs) for m in self.members])

    def predict_proba(self, inputs: Sequence[ModelInput], batch_size: int = 64) -> np.ndarray:
        return self.member_probabilities(inputs).mean(axis=0)

    def predict_logits(self, inputs: Sequence[ModelInput], batch_size: int = 64) -> np.ndarray:
        """Scores whose softmax (sigmoid when multi-label) is the averaged probability:
        log-probabilities (log-odds), so temperature scaling applies as to one model."""
        p = np.clip(self.predict_proba(inputs, batch_size), 1e-7, 1 - 1e-7)
        return np.log(p / (1 - p)) if self.multi_label else np.log(p)

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for i, member in enumerate(self.members):
            member.save(folder / f"member-{i}")
        meta = {**saved_meta(self), "members": len(self.members)}
        (folder / ENSEMBLE_FILE).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: Path, device: str = "auto") -> FinetuneEnsemble:
        folder = Path(folder)
        meta, settings = read_saved(folder / ENSEMBLE_FILE, device)
        self = cls(meta["labels"], settings, multi_label=meta["multi_label"])
        self.members = [
            FinetuneClassifier.load(folder / f"member-{i}", device=device)
            for i in range(int(meta["members"]))
        ]
        self.dev_history = list(meta.get("dev_macro_f1", []))
        self.epochs_run = max((m.epochs_run for m in self.members), default=0)
        return self


def new_finetune(
    labels: list[str], settings: FinetuneSettings, *, multi_label: bool = False
) -> Any:
    """One fine-tuned model, or a seed ensemble when ``settings.members`` > 1."""
    if settings.members > 1:
        return FinetuneEnsemble(labels, settings, multi_label=multi_label)
    return FinetuneClassifier(labels, settings, multi_label=multi_label)


def load_finetune(folder: Path, device: str = "auto") -> Any:
    """A saved fine-tuned model or ensemble."""
    if (Path(folder) / ENSEMBLE_FILE).is_file():
        return FinetuneEnsemble.load(folder, device)
    return FinetuneClassifier.load(folder, device)
