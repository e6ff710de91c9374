"""The encoder on ONNX Runtime: exported once per session from the real bundled MiniLM, its
vectors checked against PyTorch's, its files refused when they no longer match their
checksum, and the runtime choice that follows a version's fidelity record."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from learning import onnx_export
from learning.encoders import Encoder
from learning.fidelity import RECORD, choose_runtime, note, predict_runtime
from learning.runtimes import CPU_DEFAULT, EXACT, FastTokenizer, resolve_runtime
from store import WorkspaceError
from store.artifacts import ModelVersionView

pytestmark = pytest.mark.slow

TEXTS = [
    "Hi.",
    "So you feel stuck between wanting to quit and fearing the cravings.",
    "Okay",
    "What would it mean for you and your kids if you stopped drinking altogether?",
    "It sounds like the weekends are the hardest part, when you are alone at home.",
    "mm-hmm",
    "I don't know, I guess I just don't see the point anymore, nothing changes. " * 12,
    "Café naïve — 😀 ok?",
]


@pytest.fixture(scope="module")
def exported(onnx_cache: Path) -> Path:
    """Both exports of the bundled MiniLM, made once for the test session."""
    path = Encoder().path
    for runtime in ("onnx", "onnx-int8"):
        onnx_export.ensure_export(path, runtime)
    return onnx_export.export_folder(path)


@pytest.fixture(scope="module")
def torch_vectors() -> np.ndarray:
    return Encoder(device="cpu", runtime="torch").encode(TEXTS)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_fp32_export_matches_torch(exported: Path, torch_vectors: np.ndarray) -> None:
    """Export -> load -> encode: every text within cosine 0.999 of PyTorch's vector, in
    batches of any size (the graph has no shape baked in) and alone."""
    encoder = Encoder(device="cpu", runtime="onnx", batch_size=3)
    assert encoder.runtime == "onnx" and encoder.key.endswith("|onnx")
    batched = encoder.encode(TEXTS)
    alone = np.vstack([encoder.encode([t]) for t in TEXTS])
    assert _cosines(batched, torch_vectors).min() >= 0.999
    assert _cosines(alone, torch_vectors).min() >= 0.999
    assert np.allclose(np.linalg.norm(batched, axis=1), 1, atol=1e-5)


def test_int8_export_stays_close_to_torch(exported: Path, torch_vectors: np.ndarray) -> None:
    """Dynamic int8 moves vectors a little (AnnoMI: mean cosine ~0.985, README); here each
    text stays above 0.93 and the mean above 0.97. A text's vector does not depend on the
    texts encoded with it, and int8 has its own cache key."""
    encoder = Encoder(device="cpu", runtime="onnx-int8")
    vectors = encoder.encode(TEXTS)
    alone = np.vstack([encoder.encode([t]) for t in reversed(TEXTS)])[::-1]
    assert np.array_equal(vectors, alone)  # one text per run: no batch-dependent scales
    cosines = _cosines(vectors, torch_vectors)
    assert cosines.min() >= 0.93 and cosines.mean() >= 0.97
    assert encoder.key == "all-MiniLM-L6-v2|mean|128|onnx-int8"
    assert Encoder(runtime="torch").key == "all-MiniLM-L6-v2|mean|128"


def test_tokenizer_without_transformers_gives_the_same_ids() -> None:
    """The ONNX path tokenises with `tokenizers` directly: same ids, same truncation."""
    from transformers import AutoTokenizer

    path = Encoder().path
    reference = AutoTokenizer.from_pretrained(path)(TEXTS, truncation=True, max_length=32)
    assert FastTokenizer(path, 32)(TEXTS) == reference["input_ids"]
    assert max(len(ids) for ids in reference["input_ids"]) == 32


def test_corrupt_export_is_refused_and_torch_is_used(
    exported: Path,
    torch_vectors: np.ndarray,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One changed byte in the int8 file: its checksum fails, the encoder says so on the
    log and encodes with torch, under torch's cache key."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("TECHNE_CACHE_DIR", str(cache))
    folder = onnx_export.export_folder(Encoder().path)
    shutil.copytree(exported, folder)
    target = folder / onnx_export.FILES["onnx-int8"]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(onnx_export.ExportError, match="checksum"):
        onnx_export.ensure_export(Encoder().path, "onnx-int8")
    encoder = Encoder(device="cpu", runtime="onnx-int8")
    with caplog.at_level(logging.WARNING, logger="techne.encoder"):
        assert encoder.runtime == "torch"
        vectors = encoder.encode(TEXTS)
    assert "does not match its recorded checksum" in caplog.text
    assert "encoding with torch instead of onnx-int8" in caplog.text
    assert encoder.key == "all-MiniLM-L6-v2|mean|128"
    assert _cosines(vectors, torch_vectors).min() >= 0.9999
    # the fp32 file of the same folder is intact and still used
    assert Encoder(device="cpu", runtime="onnx").runtime == "onnx"


def _version(entry: dict[str, object] | None, vid: int = 1) -> ModelVersionView:
    return ModelVersionView(
        id=vid,
        tag=f"v{vid}",
        created_at="2026-12-01T00:00:00",
        backend="embed",
        encoder="all-MiniLM-L6-v2",
        codebook_key="annomi",
        path=f"models/v{vid}",
        checksum="x",
        settings={},
        metrics={RECORD: entry} if entry else {},
        parent_id=None,
        active=True,
    )


def test_runtime_that_lost_macro_f1_is_not_the_default() -> None:
    """auto runs CPU_DEFAULT until a version's check finds it more than 0.005 macro-F1
    below torch fp32; then rounds and predict run the exact fp32 graph, and say why."""
    failed = {
        "runtime": CPU_DEFAULT,
        "n": 300,
        "macro_f1": 0.70,
        "ece": 0.04,
        "torch_fp32": {"macro_f1": 0.71, "ece": 0.04},
        "drop": 0.01,
        "passed": False,
    }
    passed = {**failed, "macro_f1": 0.708, "drop": 0.002, "passed": True}
    assert resolve_runtime("auto", "cpu") == CPU_DEFAULT
    assert choose_runtime("auto", "cpu", []) == (CPU_DEFAULT, None)
    assert choose_runtime("auto", "cpu", [_version(passed)]) == (CPU_DEFAULT, None)
    runtime, why = choose_runtime("auto", "cpu", [_version(passed), _version(failed, 2)])
    assert runtime == EXACT and why and "not used by default" in why
    # a later version checked on the exact runtime does not bring the failed one back
    exact = {**passed, "runtime": EXACT}
    assert choose_runtime("auto", "cpu", [_version(failed), _version(exact, 2)])[0] == EXACT
    assert choose_runtime("onnx-int8", "cpu", [_version(failed)])[0] == "onnx-int8"
    assert choose_runtime("auto", "cuda", [])[0] == "torch"
    text = note(_version(failed))
    assert text and "0.700" in text and "0.710" in text and "not used by default" in text
    assert "stays the default" in (note(_version(passed)) or "")
    assert predict_runtime("auto", "cpu", CPU_DEFAULT, _version(failed)) == EXACT
    assert predict_runtime("auto", "cpu", CPU_DEFAULT, _version(passed)) == CPU_DEFAULT
    assert predict_runtime("auto", "cpu", "torch", _version(None)) == EXACT


def test_unknown_runtime_is_refused(tmp_path: Path) -> None:
    from learning.settings import LearningSettings
    from store.workspace import load_workspace, write_config

    write_config(tmp_path, name="t", codebook="annomi", db_url=None)
    config = tmp_path / "techne.toml"
    config.write_text(config.read_text().replace("[model]\n", '[model]\nruntime = "tpu"\n'))
    with pytest.raises(WorkspaceError, match="runtime must be one of auto, torch, onnx"):
        LearningSettings.from_workspace(load_workspace(tmp_path))
