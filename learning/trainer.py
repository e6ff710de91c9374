"""The fine-tuning trainer: small-text's ``TransformerBasedClassification`` with the
overrides ``learning.finetune`` needs (see the class docstring).

This module imports torch and small-text at the top: ``learning.finetune`` imports it only
when a model is built, so importing the fine-tuning API stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from small_text.integrations.pytorch.utils.data import dataloader
from small_text.integrations.transformers.classifiers.classification import (
    TransformerBasedClassification,
)

from learning.batching import length_bucketed_batches, segment_ids, trimmed_collate
from learning.metrics import macro_f1_of_scores


def autocast(device: str) -> Any:
    """bf16 autocast on CUDA; nothing on the CPU."""
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


class TrimmedTransformerClassification(TransformerBasedClassification):
    """small-text's TransformerBasedClassification with the overrides this module needs.

    Overridden (each the smallest hook small-text offers):
    - ``_create_collate_fn``: batches padded to their longest sequence (``trimmed_collate``);
      small-text's collate concatenates items already padded to ``max_length``.
    - ``_train_loop_process_batches`` (small-text's per-epoch loop, same bookkeeping):
      batches come from ``length_bucketed_batches`` (similar lengths together, batch order
      shuffled) rather than a uniform random sampler, so trimmed batches carry little
      padding; small-text has no seam for the sampler (``dataloader`` is a module function).
    - ``_train_single_batch``, ``_predict_proba``: the forward pass passes token_type_ids for
      text pairs (small-text passes ids and mask only, so BERT could not tell message from
      context) and runs under bf16 autocast on CUDA; training also reports progress.
    - ``validate``: returns (loss, dev macro-F1) so that small-text's early stopping and
      model selection (which read ``val_acc``) act on macro-F1 rather than accuracy.
    - ``_get_default_model_selection``: small-text ignores the ``model_selection`` passed to
      ``fit`` (and would keep the epoch with the lowest dev loss); ours keeps the best
      dev macro-F1 epoch.
    - ``_compute_loss``: multi-label targets are used as given (small-text one-hot encodes
      them again when there are exactly two classes).
    - ``forward`` with ``pooling="mean"``: the classifier reads the mean of the message's
      token states rather than the [CLS] pooler; ``_get_default_criterion`` adds label
      smoothing to small-text's cross-entropy.
    Warm-up is not overridden: small-text's ``fit`` accepts an optimizer and a scheduler, so
    ``FinetuneClassifier.fit`` passes AdamW (decoupled weight decay) and
    ``get_linear_schedule_with_warmup``.
    """

    progress: Any = None  # learning.finetune.Progress
    steps_done = 0
    steps_total = 1
    batch_rng = np.random.default_rng(0)
    dev_history: list[float]

    def _create_collate_fn(self, use_sample_weights: bool = False) -> Any:
        return functools.partial(
            trimmed_collate,
            pad_id=self.tokenizer.pad_token_id or 0,
            multi_label=self.multi_label,
            num_classes=self.num_classes,
            use_sample_weights=use_sample_weights,
        )

    pooling = "cls"
    label_smoothing = 0.0

    def forward(self, x: Any, masks: Any) -> Any:
        kwargs = {"attention_mask": masks}
        types = segment_ids(x, masks, self.tokenizer.sep_token_id)
        if (
            "token_type_ids" in self.tokenizer.model_input_names
            and getattr(self.model.config, "type_vocab_size", 0) > 1
        ):
            kwargs["token_type_ids"] = types
        with autocast(str(self.device)):
            if self.pooling == "cls":
                return self.model(x, **kwargs).logits.float()
            # mean of the message's own tokens (first segment, [CLS] and [SEP] included),
            # which attend to the context; fed to the model's dropout and classifier
            hidden = self.model.base_model(x, **kwargs).last_hidden_state
            weight = (masks * (types == 0)).unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weight).sum(1) / weight.sum(1).clamp(min=1)
            dropout = getattr(self.model, "dropout", torch.nn.Identity())
            return self.model.classifier(dropout(pooled)).float()

    def _get_default_criterion(self, class_weights: Any, use_sample_weights: bool = False) -> Any:
        criterion = super()._get_default_criterion(class_weights, use_sample_weights)
        if isinstance(criterion, torch.nn.CrossEntropyLoss):
            criterion.label_smoothing = self.label_smoothing
        return criterion

    @staticmethod
    def _get_default_model_selection(model_selection: Any) -> Any:
        # small-text 1.4.1 ignores a ModelSelection passed to fit() and builds its own,
        # which selects by validation loss; ours selects by dev macro-F1
        if model_selection is None or isinstance(model_selection, str):
            return TransformerBasedClassification._get_default_model_selection(model_selection)
        return model_selection

    def _train_loop_process_batches(
        self, num_epoch, sub_train_, sub_valid_, weights, early_stopping, model_selection,
        optimizer, scheduler, tmp_dir, validate_every=None
    ):  # fmt: skip
        # small-text's loop, with length-bucketed batches instead of uniform random ones
        # (one validation per epoch: validations_per_epoch is always 1 here)
        data = sub_train_.data
        if weights is not None:
            data = [d + (weights[i],) for i, d in enumerate(data)]
        collate = self._create_collate_fn(use_sample_weights=weights is not None)
        lengths = np.array([int(d[1].sum()) for d in data])
        train_loss = train_acc = 0.0
        for batch in length_bucketed_batches(lengths, self.mini_batch_size, self.batch_rng):
            x, masks, cls, weight = collate([data[i] for i in batch])
            loss, acc = self._train_single_batch(x, masks, cls, weight, optimizer)
            scheduler.step()
            train_loss, train_acc = train_loss + loss, train_acc + acc
        valid_loss, valid_acc = (
            self.validate(sub_valid_) if sub_valid_ is not None else (None, None)
        )
        scores = (
            train_acc / len(sub_train_),
            train_loss / len(sub_train_),
            valid_acc,
            valid_loss,
        )
        measured = dict(
            zip(("train_acc", "train_loss", "val_acc", "val_loss"), scores, strict=True)
        )
        stop = early_stopping.check_early_stop(num_epoch + 1, measured)
        self._save_model(optimizer, model_selection, f"{num_epoch}-b0", *scores, stop, tmp_dir)
        return scores[1], scores[0], valid_loss, valid_acc, stop

    def _compute_loss(self, cls: Any, outputs: Any) -> tuple[Any, Any]:
        logits = outputs if torch.is_tensor(outputs) else outputs.logits.float()
        if self.multi_label:
            return logits, self.criterion(logits, cls.float())
        if self.num_classes == 2:
            return logits, self.criterion(logits, F.one_hot(cls, 2).float())
        return logits, self.criterion(logits, cls)

    def _train_single_batch(
        self, x: Any, masks: Any, cls: Any, weight: Any, optimizer: Any
    ) -> tuple[float, float]:
        optimizer.zero_grad()
        x, masks, cls = x.to(self.device), masks.to(self.device), cls.to(self.device)
        logits, loss = self._compute_loss(cls, self.forward(x, masks))
        loss = (loss * weight.to(self.device)).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        optimizer.step()
        self.steps_done += 1
        if self.progress is not None:
            epoch = min(self.num_epochs, 1 + len(self.dev_history))
            self.progress(f"epoch {epoch}/{self.num_epochs}", self.steps_done / self.steps_total)
        return loss.detach().item(), self.sum_up_accuracy_(logits, cls)

    def validate(self, validation_set: Any) -> tuple[float, float]:
        self.model.eval()
        losses, logits_all = [], []
        collate = self._create_collate_fn()
        loader = dataloader(validation_set.data, self.mini_batch_size, collate, train=False)
        with torch.inference_mode():
            for x, masks, cls, _w in loader:
                x, masks, cls = x.to(self.device), masks.to(self.device), cls.to(self.device)
                logits, loss = self._compute_loss(cls, self.forward(x, masks))
                losses.append(loss.mean().item() * len(x))
                logits_all.append(logits.cpu().numpy())
        y = validation_set.y
        y = y.toarray() if self.multi_label else y
        f1 = macro_f1_of_scores(y, np.concatenate(logits_all), self.multi_label)
        self.dev_history.append(f1)
        if self.progress is not None:
            self.progress(
                f"epoch {len(self.dev_history)} dev macro-F1 {f1:.3f}",
                self.steps_done / self.steps_total,
            )
        return sum(losses) / len(validation_set), f1

    def _predict_proba(self, dataset_iter: Any, logits_transform: Any) -> np.ndarray:
        out = [
            logits_transform(self.forward(x.to(self.device), m.to(self.device))).cpu().numpy()
            for x, m, *_ in dataset_iter
        ]
        return np.concatenate(out) if out else np.empty((0, self.num_classes))
