"""Inference runtimes for the encoder: PyTorch, or ONNX Runtime in fp32 or int8 on CPU.

`[model] runtime = auto | torch | onnx | onnx-int8`. auto is torch on CUDA and CPU_DEFAULT on
CPU, unless the active model's held-out check found that runtime more than FIDELITY_DROP
macro-F1 below torch fp32 (learning/fidelity.py): then the exact fp32 ONNX graph is used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def quiet_transformers() -> None:
    """No weight-loading progress bars or advice on stderr: Techne reports its own progress."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


RUNTIMES = ("auto", "torch", "onnx", "onnx-int8")
CPU_DEFAULT = "onnx-int8"
"""Measured by bench/predict_bench.py (README, Benchmarks): on 2 cores int8 ONNX ran at
several times torch fp32's messages/s with AnnoMI test macro-F1 within 0.005 and ECE within
0.05."""
EXACT = "onnx"
"""The runtime auto falls back to when the default one failed its check: same vectors as
torch fp32 (cosine >= 0.999, in practice 1 - 1e-6)."""
FIDELITY_DROP = 0.005

log = logging.getLogger("techne.encoder")


def cuda_present() -> bool:
    """Whether a CUDA GPU may be there, without importing torch when the NVIDIA driver is
    not even loaded (the common CPU-only case)."""
    if not Path("/proc/driver/nvidia").exists() and not Path("/dev/nvidia0").exists():
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_runtime(runtime: str, device: str) -> str:
    """The runtime that will run: torch on CUDA (ONNX Runtime here is CPU-only), else the
    asked one, auto meaning CPU_DEFAULT."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    gpu = device.startswith("cuda") or (device == "auto" and cuda_present())
    if gpu or runtime == "torch":
        return "torch"
    return CPU_DEFAULT if runtime == "auto" else runtime


def cpu_workers() -> int:
    """Batches run at once: one per core this process may use, each on one thread."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class OnnxSession:
    """One ONNX Runtime session shared by worker threads (run() is thread-safe and releases
    the GIL); each run uses one intra-op thread, so batches never wait on each other's thread
    barriers and nothing spins against other processes on a shared machine."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(rows, dim) pooled, L2-normalised sentence vectors."""
        import numpy as np

        out = self.session.run(None, {"input_ids": tokens, "attention_mask": mask})[0]
        return np.asarray(out, dtype=np.float32)


class FastTokenizer:
    """The model's tokenizer.json through `tokenizers` directly (no torch or transformers
    import): the same ids as transformers' fast tokenizer, truncated to max_length."""

    def __init__(self, model_path: str, max_length: int) -> None:
        self._tokenizer: Any
        file = Path(model_path) / "tokenizer.json"
        if file.is_file():
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(str(file))
            self._tokenizer.enable_truncation(max_length)
            self._tokenizer.no_padding()
            self._fast = True
        else:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(model_path)
            self._fast = False
        self.max_length = max_length

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        if self._fast:
            return [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        return list(
            self._tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        )
