"""What an export is asked for and what it reports: shared by the exporter and its card."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExportOptions:
    fmt: str = "jsonl"
    gold: str = "single"
    """Weakest gold source accepted: adjudicated | majority | single."""
    context_turns: int = 3
    split: tuple[float, float, float] | None = None
    seed: int = 0
    force: bool = False
    """Replace an existing export (atomically); without it an existing output is refused."""


@dataclass(frozen=True)
class ExportReport:
    path: str
    card: str
    format: str
    rows: int
    conversations: int
    splits: dict[str, int]
    labels: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)
