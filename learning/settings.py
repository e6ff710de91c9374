"""Model and learning settings, read from a workspace's [model] and [learning] sections."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from store import Workspace, WorkspaceError

BACKENDS = ("embed", "finetune")
BEST_CONTEXT = {"embed": "none", "finetune": "previous"}
"""Measured on AnnoMI (conversation-grouped 80/20): the embed head scored 0.718 macro-F1
text-only vs 0.709 with the previous turn's vector (bench/al_annomi.py); fine-tuning scored
0.770 text-only vs 0.795 with the previous turn as a second segment (bench/finetune_annomi.py)."""


@dataclass(frozen=True)
class LearningSettings:
    encoder: str = "all-MiniLM-L6-v2"
    """Bundled model name, a local Hugging Face folder, or a hub id when online."""
    backend: str = "embed"
    device: str = "auto"
    context_mode: str = ""
    """How the model sees context: none | previous | window (see learning.inputs); empty
    means the backend's measured default (BEST_CONTEXT)."""
    context_turns: int = 2
    max_length: int = 128
    strategy: str = "breaking-ties"
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
        if self.context_mode not in ("none", "previous", "window"):
            raise WorkspaceError(
                f"{where}: context_mode must be none, previous or window, got {self.context_mode!r}"
            )
        if self.backend not in BACKENDS:
            raise WorkspaceError(
                f"{where}: backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}"
            )
        if not 0 <= self.eval_share < 1:
            raise WorkspaceError(f"{where}: eval_share must be in [0, 1), got {self.eval_share}")
        if self.batch_size < 1:
            raise WorkspaceError(f"{where}: batch_size must be at least 1")
