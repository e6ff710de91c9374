"""ONNX exports of a BERT-family sentence encoder: fp32 and dynamic int8, made once per model
and kept in a checksummed cache folder.

The graph is written out here from the model's own modules (embeddings, then per layer
attention with an additive padding mask, feed-forward and layer norms, then mean pooling and
L2 normalisation), not traced through transformers' forward: that one builds its attention
mask with code that tracing bakes for the dummy input's shape (cosine ~0.91 to PyTorch at
other shapes under transformers 5). The export is checked against PyTorch on inputs of other
lengths and batch sizes before it is kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from store import TechneError

EXPORT_VERSION = 1
"""Bumped when the graph or quantisation changes: older exports are then made again."""
FILES = {"onnx": "encoder.onnx", "onnx-int8": "encoder-int8.onnx"}
MANIFEST = "export.json"
MIN_COSINE = 0.999
"""An fp32 export whose vectors are further than this from PyTorch's is not kept."""


class ExportError(TechneError):
    """An ONNX export that cannot be made, or a cached one that fails its checksum."""


def cache_root() -> Path:
    """Where exports are kept: $TECHNE_CACHE_DIR, else $XDG_CACHE_HOME/techne, else
    ~/.cache/techne (an export serves every workspace using that model)."""
    if os.environ.get("TECHNE_CACHE_DIR"):
        return Path(os.environ["TECHNE_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "techne"


def export_folder(model_path: str) -> Path:
    """The cache folder of one model's exports, named after the model's files (path, size and
    modification time of each) and EXPORT_VERSION."""
    digest = hashlib.sha256(f"v{EXPORT_VERSION}|{Path(model_path).resolve()}".encode())
    for f in sorted(Path(model_path).glob("*")):
        if f.is_file():
            stat = f.stat()
            digest.update(f"|{f.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return cache_root() / "onnx" / f"{Path(model_path).resolve().name}-{digest.hexdigest()[:16]}"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_file(folder: Path, runtime: str) -> Path | None:
    """The export for `runtime` when the folder has it and its bytes match the manifest's
    checksum; None when it was never made. Raises ExportError when it is there but changed."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    try:
        record = json.loads(manifest.read_text())["files"][runtime]
    except (ValueError, KeyError, TypeError):
        return None
    path = folder / FILES[runtime]
    if not path.is_file() or sha256_file(path) != record["sha256"]:
        raise ExportError(
            f"{path}: the ONNX file does not match its recorded checksum; not loading it"
        )
    return path


def ensure_export(model_path: str, runtime: str) -> Path:
    """The checksummed ONNX file for `runtime` (onnx | onnx-int8), exported (and for int8
    quantised) the first time it is asked for."""
    folder = export_folder(model_path)
    found = verified_file(folder, runtime)
    if found is not None:
        return found
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Built in a scratch folder and moved in whole: a concurrent or interrupted export never
    # leaves a half-written file under a valid manifest.
    scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=folder.parent))
    try:
        _build(model_path, scratch)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(scratch, folder)
        except OSError:
            if not folder.exists():  # a concurrent export won the race: use that one
                raise
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"cannot export {model_path} to ONNX: {exc}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    found = verified_file(folder, runtime)
    assert found is not None
    return found


def _build(model_path: str, scratch: Path) -> None:
    """fp32 (traced, fused, checked) and int8 exports and their manifest, in `scratch`."""
    fp32 = scratch / FILES["onnx"]
    model = _export_fp32(model_path, scratch / "traced.onnx")
    _fuse(model_path, model, scratch / "traced.onnx", fp32)
    (scratch / "traced.onnx").unlink()
    int8 = scratch / FILES["onnx-int8"]
    _quantize(fp32, int8)
    files = {runtime: {"sha256": sha256_file(scratch / name)} for runtime, name in FILES.items()}
    manifest = {"model": str(Path(model_path).resolve()), "version": EXPORT_VERSION, "files": files}
    (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2))


class _SentenceGraph:
    """Builds the torch module that is exported (a function so torch loads lazily)."""

    @staticmethod
    def build(model: Any) -> Any:
        import torch

        config = model.config
        heads = int(config.num_attention_heads)
        size = int(config.hidden_size) // heads

        class SentenceGraph(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = model

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                emb = self.model.embeddings
                positions = torch.cumsum(torch.ones_like(input_ids), dim=1) - 1
                x = (
                    emb.word_embeddings(input_ids)
                    + emb.position_embeddings(positions)
                    + emb.token_type_embeddings.weight[0]
                )
                x = emb.LayerNorm(x)
                # The additive mask in the form ONNX Runtime's attention fusion recognises.
                bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10_000.0
                for layer in self.model.encoder.layer:
                    att = layer.attention.self

                    def split(t: Any) -> Any:
                        return t.reshape(t.shape[0], t.shape[1], heads, size).transpose(1, 2)

                    q, k, v = split(att.query(x)), split(att.key(x)), split(att.value(x))
                    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(size) + bias
                    ctx = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2)
                    ctx = ctx.reshape(x.shape[0], x.shape[1], heads * size)
                    out = layer.attention.output
                    x = out.LayerNorm(out.dense(ctx) + x)
                    hidden = layer.intermediate.intermediate_act_fn(layer.intermediate.dense(x))
                    x = layer.output.LayerNorm(layer.output.dense(hidden) + x)
                weights = attention_mask.to(x.dtype).unsqueeze(-1)
                pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

        return SentenceGraph().eval()


def _fuse(model_path: str, model: Any, traced: Path, target: Path) -> None:
    """ONNX Runtime's transformer fusions (attention, skip-layer-norm, bias-GELU) written
    into the graph, then the fused graph checked against PyTorch like the traced one."""
    from onnxruntime.transformers import optimizer

    config = json.loads((Path(model_path) / "config.json").read_text())
    fused = optimizer.optimize_model(
        str(traced),
        model_type="bert",
        num_heads=int(config["num_attention_heads"]),
        hidden_size=int(config["hidden_size"]),
        opt_level=0,
    )
    fused.save_model_to_file(str(target))
    _check_against_torch(model, target)


def _export_fp32(model_path: str, target: Path) -> Any:
    """Trace the sentence graph to ONNX; returns the PyTorch model it came from."""
    import torch
    from transformers import AutoModel

    from learning.runtimes import quiet_transformers

    quiet_transformers()
    model = AutoModel.from_pretrained(model_path).eval()
    if getattr(model.config, "model_type", "") != "bert":
        raise ExportError(
            f"ONNX export supports BERT-family encoders; {model_path} is "
            f"{getattr(model.config, 'model_type', 'unknown')!r}"
        )
    graph = _SentenceGraph.build(model)
    ids = torch.tensor([[101, 7592, 2088, 102, 0], [101, 2023, 2003, 1037, 102]])
    mask = (ids != 0).long()
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter's notice
        torch.onnx.export(
            graph,
            (ids, mask),
            str(target),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    _check_against_torch(model, target)
    return model


def _check_against_torch(model: Any, target: Path) -> None:
    """Fidelity before an export is kept: other lengths, paddings and batch sizes than the
    dummy input's, against the PyTorch model's own forward, mean-pooled as Encoder pools it
    (cosine >= MIN_COSINE)."""
    import numpy as np
    import torch

    rng = np.random.default_rng(0)
    session = _session(target)
    for rows, width in ((1, 3), (3, 17), (8, 64), (2, 128)):
        ids = rng.integers(1000, 20000, size=(rows, width))
        mask = np.ones_like(ids)
        for r in range(1, rows):
            mask[r, rng.integers(2, width + 1) :] = 0
        ids = ids * mask
        with torch.inference_mode():
            t, m = torch.from_numpy(ids), torch.from_numpy(mask)
            hidden = model(input_ids=t, attention_mask=m, token_type_ids=torch.zeros_like(t))
            weights = m.unsqueeze(-1).float()
            pooled = (hidden.last_hidden_state * weights).sum(1) / weights.sum(1)
            want = torch.nn.functional.normalize(pooled, p=2, dim=1).numpy()
        got = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        cosine = float((want * got).sum(axis=1).min())
        if cosine < MIN_COSINE:
            raise ExportError(
                f"the ONNX export differs from PyTorch (cosine {cosine:.4f} on {rows}x{width} "
                "tokens); not keeping it"
            )


def _quantize(fp32: Path, target: Path) -> None:
    """Dynamic int8: weights of the attention and dense layers quantised per output channel
    ahead of time, activations per batch at run time (no calibration data needed); the word
    embeddings stay fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process goes to the root logger
    try:
        quantize_dynamic(
            str(fp32),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul", "Attention"],
            extra_options={"DefaultTensorType": 1},  # fused ops have no inferred type
        )
    finally:
        root.setLevel(level)


def _session(path: Path, threads: int = 1) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
