"""Fine-tune a transformer encoder to classify messages, on small-text's trainer.

Training runs through small-text's ``TransformerBasedClassification`` (its epoch loop,
early stopping and best-epoch model selection), fed with our own tokenization:
``TransformersDataset`` items hold *unpadded* token ids, and every batch is padded only to
its own longest sequence (``pad_batch``), never to ``max_length``. Prediction sorts inputs
by length so that each batch holds similar lengths, then restores the caller's order.

The recipe in ``FinetuneSettings``' defaults was picked by dev macro-F1 in
``bench/finetune_annomi.py`` (conversation-grouped AnnoMI split; every run, with its test
score, is in that script's docstring): the previous turn as second segment, the [CLS]
head, lr 1e-4 with 10% warm-up then linear decay, 4 epochs, no class weights, label
smoothing 0.1 — dev 0.753, test 0.773 (without smoothing: dev 0.745, test 0.795; text-only:
dev 0.730, test 0.770). The turns before and after (``around``), a mean-pooling head and
more epochs were measured and did not beat it on dev. Over three seeds smoothing and none
tie on dev (.727 vs .723) and the seed spread (test .767-.795) is wider than any
difference between recipes: the bench's docstring has the numbers. ``members`` > 1 makes
a seed ensemble (learning/ensemble.py).

torch, transformers and small_text are imported inside functions only, so importing this
module stays cheap.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from learning.batching import encode, pad_batch
from learning.calibration import softmax
from learning.inputs import ModelInput
from learning.settings import FinetuneSettings, bundled_model_path

__all__ = ["FinetuneClassifier", "FinetuneSettings", "bundled_model_path", "read_saved"]

SETTINGS_FILE = "finetune.json"
Progress = Callable[[str, float], None]


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


# --- the classifier ----------------------------------------------------------------------


class FinetuneClassifier:
    """A fine-tuned encoder with a classification head over ``labels``."""

    def __init__(
        self, labels: list[str], settings: FinetuneSettings, multi_label: bool = False
    ) -> None:
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ValueError("need at least two distinct labels")
        self.labels = list(labels)
        self.settings = settings
        self.multi_label = multi_label
        self.device = resolve_device(settings.device)
        self.dev_history: list[float] = []
        self.best_epoch: int | None = None
        self.epochs_run = 0
        self._clf: Any = None

    # small-text plumbing

    def _new_classifier(self, model_path: str) -> Any:
        from small_text.integrations.transformers.classifiers.base import ModelLoadingStrategy
        from small_text.integrations.transformers.classifiers.classification import (
            TransformerModelArguments,
        )
        from torch.nn import Linear

        s = self.settings
        from learning.trainer import TrimmedTransformerClassification

        clf = TrimmedTransformerClassification(
            TransformerModelArguments(
                model_path, model_loading_strategy=ModelLoadingStrategy.ALWAYS_LOCAL
            ),
            num_classes=len(self.labels),
            multi_label=self.multi_label,
            num_epochs=s.epochs,
            lr=s.lr,
            mini_batch_size=s.batch_size,
            device=self.device,
            class_weight="balanced" if s.class_weights else None,
            verbosity=0,
        )
        clf.dev_history = self.dev_history
        clf.pooling, clf.label_smoothing = s.pooling, s.label_smoothing
        clf.initialize_transformer(None)
        if s.pooling == "mean" and not isinstance(getattr(clf.model, "classifier", None), Linear):
            raise ValueError("mean pooling needs a model whose classifier is one linear layer")
        clf.model.to(self.device)
        return clf

    def _dataset(self, inputs: Sequence[ModelInput], y: np.ndarray) -> Any:
        import torch
        from small_text.integrations.transformers.datasets import TransformersDataset

        ids = encode(self._clf.tokenizer, inputs, self.settings)
        if self.multi_label:
            labels: list = [np.flatnonzero(row) for row in y]
        else:
            labels = [int(v) for v in y]
        data = [
            (torch.tensor([r], dtype=torch.long), torch.ones((1, len(r)), dtype=torch.long), lab)
            for r, lab in zip(ids, labels, strict=True)
        ]
        return TransformersDataset(
            data, multi_label=self.multi_label, target_labels=np.arange(len(self.labels))
        )

    def _check_y(self, inputs: Sequence[ModelInput], y: Any) -> np.ndarray:
        y = np.asarray(y)
        k = len(self.labels)
        if self.multi_label:
            ok = y.ndim == 2 and y.shape[1] == k and np.isin(y, (0, 1)).all()
        else:
            ok = y.ndim == 1 and np.issubdtype(y.dtype, np.integer) and ((y >= 0) & (y < k)).all()
        if not ok or len(y) != len(inputs):
            shape = f"(n, {k}) 0/1 matrix" if self.multi_label else f"int array in [0, {k})"
            raise ValueError(f"y must be an {shape} with one row per input")
        return y.astype(int)

    # training

    def fit(
        self,
        inputs: list[ModelInput],
        y: np.ndarray,
        dev_inputs: list[ModelInput] | None = None,
        dev_y: np.ndarray | None = None,
        progress: Progress | None = None,
    ) -> FinetuneClassifier:
        """Fine-tune from ``settings.model_path``. Early stopping and the kept weights use
        dev macro-F1; without ``dev_inputs`` a seeded random 10% of ``inputs`` is held out
        (not grouped by conversation: pass a conversation-grouped dev set when you have one).
        """
        import torch
        from small_text.training.early_stopping import EarlyStopping, NoopEarlyStopping
        from small_text.training.metrics import Metric
        from small_text.training.model_selection import ModelSelection
        from transformers import get_linear_schedule_with_warmup

        s = self.settings
        y = self._check_y(inputs, y)
        if dev_inputs is None:
            if len(inputs) < 4:
                raise ValueError("need at least 4 inputs to hold out a dev split")
            order = np.random.default_rng(s.seed).permutation(len(inputs))
            n_dev = max(1, round(len(inputs) * 0.1))
            dev_idx, train_idx = np.sort(order[:n_dev]), np.sort(order[n_dev:])
            dev_inputs, dev_y = [inputs[i] for i in dev_idx], y[dev_idx]
            inputs, y = [inputs[i] for i in train_idx], y[train_idx]
        else:
            dev_y = self._check_y(dev_inputs, dev_y)

        _seed_everything(s.seed)
        self.dev_history.clear()
        self._clf = clf = self._new_classifier(s.model_path)
        train_set, dev_set = self._dataset(inputs, y), self._dataset(dev_inputs, dev_y)

        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
        named = [(n, p) for n, p in clf.model.named_parameters() if p.requires_grad]
        groups = [
            {
                "params": [p for n, p in named if not n.endswith(no_decay)],
                "weight_decay": s.weight_decay,
            },
            {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0},
        ]
        try:  # fused AdamW: ~30x faster steps on CPU than the per-tensor loop
            optimizer = torch.optim.AdamW(groups, lr=s.lr, eps=1e-8, fused=True)
        except (RuntimeError, TypeError):
            optimizer = torch.optim.AdamW(groups, lr=s.lr, eps=1e-8)
        steps = math.ceil(len(train_set) / s.batch_size) * s.epochs
        scheduler = get_linear_schedule_with_warmup(optimizer, int(s.warmup_ratio * steps), steps)
        clf.progress, clf.steps_done, clf.steps_total = progress, 0, steps
        clf.batch_rng = np.random.default_rng(s.seed)

        # small-text's patience counts epochs without improvement *before* the one that stops
        early = (
            EarlyStopping(Metric("val_acc", lower_is_better=False), patience=s.patience - 1)
            if s.patience > 0
            else NoopEarlyStopping()
        )
        selection = ModelSelection(default_select_by=["val_acc", "val_loss"])
        clf.fit(
            train_set,
            validation_set=dev_set,
            early_stopping=early,
            model_selection=selection,
            optimizer=optimizer,
            scheduler=scheduler,
        )
        clf.progress = None
        clf.model.eval()
        chosen = selection.select()
        self.epochs_run = len(self.dev_history)
        self.best_epoch = int(str(chosen.model_id).split("-")[0]) + 1 if chosen else None
        if progress is not None:
            progress("done", 1.0)
        return self

    # prediction

    def predict_logits(self, inputs: Sequence[ModelInput], batch_size: int = 64) -> np.ndarray:
        """Raw scores (n, k). Inputs are sorted by length into trimmed batches; the result
        is in the caller's order."""
        import torch

        if self._clf is None:
            raise RuntimeError("fit() or load() first")
        out = np.zeros((len(inputs), len(self.labels)), dtype=np.float32)
        if not inputs:
            return out
        clf = self._clf
        ids = encode(clf.tokenizer, inputs, self.settings)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        pad = clf.tokenizer.pad_token_id or 0
        clf.model.eval()
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                x, mask = pad_batch([ids[i] for i in chunk], pad)
                logits = clf.forward(x.to(clf.device), mask.to(clf.device))
                out[chunk] = logits.cpu().numpy()
        return out

    def predict_proba(self, inputs: Sequence[ModelInput], batch_size: int = 64) -> np.ndarray:
        """Softmax over labels, or independent sigmoids when multi-label."""
        logits = self.predict_logits(inputs, batch_size)
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
        return softmax(logits)

    # persistence

    def save(self, folder: Path) -> None:
        """Weights, tokenizer and ``finetune.json`` (settings, labels, training record)."""
        if self._clf is None:
            raise RuntimeError("nothing to save: fit() first")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._clf.model.save_pretrained(folder)
        self._clf.tokenizer.save_pretrained(folder)
        meta = {
            **saved_meta(self),
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
        }
        (folder / SETTINGS_FILE).write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: Path, device: str = "auto") -> FinetuneClassifier:
        meta, settings = read_saved(Path(folder) / SETTINGS_FILE, device)
        self = cls(meta["labels"], settings, multi_label=meta["multi_label"])
        self.dev_history.extend(meta.get("dev_macro_f1", []))
        self.best_epoch, self.epochs_run = meta.get("best_epoch"), meta.get("epochs_run", 0)
        self._clf = self._new_classifier(str(folder))
        self._clf.model.eval()
        return self


def saved_meta(model: Any) -> dict[str, Any]:
    """What every saved fine-tuned model (or ensemble) records about itself."""
    return {
        "settings": asdict(model.settings),
        "labels": model.labels,
        "multi_label": model.multi_label,
        "dev_macro_f1": model.dev_history,
    }


def read_saved(path: Path, device: str) -> tuple[dict[str, Any], FinetuneSettings]:
    """A saved model's metadata file, and its settings moved to `device`."""
    meta = json.loads(Path(path).read_text())
    return meta, replace(FinetuneSettings(**meta["settings"]), device=device)
