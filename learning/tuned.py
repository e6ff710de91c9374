"""The refreshed encoder rounds use beside the frozen one (made by learning.encoder_refresh):
where it lives and which one is current."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from learning.encoders import Encoder

if TYPE_CHECKING:
    from learning.settings import LearningSettings
    from store import CodebookView

ENCODERS = "encoders"
"""Folder under the models folder holding the tuned encoders and `current.json`."""


@dataclass(frozen=True)
class TunedEncoder:
    """A refreshed encoder: its folder's name under models/encoders, the labels it saw."""

    name: str
    folder: Path
    checksum: str
    labels: int
    labels_digest: str

    def encoder(self, device: str = "auto", max_length: int = 128) -> Encoder:
        """Its encoder (torch), whose cached vectors are keyed by the refresh's name, not
        by the folder's path: a workspace that moves keeps its cache."""
        encoder = Encoder(str(self.folder), device, max_length, runtime="torch")
        encoder.name = f"tuned:{self.name}"
        return encoder


def current_tuned(models_dir: Path) -> TunedEncoder | None:
    """The refreshed encoder rounds use now, or None (none made yet, or its files gone)."""
    pointer = models_dir / ENCODERS / "current.json"
    if not pointer.is_file():
        return None
    meta = json.loads(pointer.read_text())
    folder = models_dir / ENCODERS / meta["name"]
    if not folder.is_dir():
        return None
    return TunedEncoder(
        meta["name"], folder, meta["checksum"], meta["labels"], meta["labels_digest"]
    )


REFRESH_GROWTH = 2
"""After the first refresh, the next falls due when the labels have doubled: the fine-tuning
costs grow with the labels, so all refreshes together cost about twice the last one."""


def refresh_due(labels: int, current_labels: int | None, first: int) -> bool:
    """Whether a round trained on `labels` gold labels should start an encoder refresh: from
    `first` labels on (0: never), then each time the labels have doubled since the encoder
    in use (trained on `current_labels`; None: none yet)."""
    if first <= 0 or labels < first:
        return False
    return current_labels is None or labels >= REFRESH_GROWTH * current_labels


def encoder_refresh_due(
    models_dir: Path, settings: LearningSettings, trained_on: object, codebook: CodebookView
) -> bool:
    """Whether a round just trained on `trained_on` labels should start a refresh of this
    workspace's encoder (`[learning] encoder_refresh_from`; embed rounds of single-label
    codebooks only)."""
    if settings.backend != "embed" or codebook.multi_label or not isinstance(trained_on, int):
        return False
    current = current_tuned(models_dir)
    return refresh_due(
        trained_on, current.labels if current else None, settings.encoder_refresh_from
    )
