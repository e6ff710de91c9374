"""The refreshed encoder rounds use beside the frozen one (made by learning.encoder_refresh):
where it lives and which one is current."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from learning.encoders import Encoder

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
