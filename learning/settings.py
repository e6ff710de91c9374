"""Model and learning settings, read from a workspace's [model] and [learning] sections."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
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
    context_mode: str = ""
    """How the model sees context: none | previous | window | around (learning.inputs);
    empty means the backend's measured default (BEST_CONTEXT). The embed backend reads
    window as previous (the previous turn's vector) and around as the previous and the next
    turn's vectors."""
    context_turns: int = 2
    """Turns of context: the window's length; for around, turns on each side."""
    max_length: int = 128
    strategy: str = "auto"
    """Query strategy (learning.strategies); auto: TypiClust cold start, then Cluster-Margin
    with a 10% random share."""
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
        if self.members < 1:
            raise WorkspaceError(f"{where}: members must be at least 1, got {self.members}")
        if self.max_length < 8 or self.epochs < 1 or not self.lr > 0:
            raise WorkspaceError(
                f"{where}: max_length must be at least 8, epochs at least 1 and lr above 0"
            )
