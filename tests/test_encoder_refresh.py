"""The encoder refresh (learning.encoder_refresh): MiniLM fine-tuned on the demo's gold
labels, the pool encoded with it, and the rounds and `predict` using its vectors beside the
frozen encoder's. One fine-tuning for the module (one epoch on the demo's ~250 labels)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from learning.encoder_refresh import (
    LOCK,
    REFRESH_MIN_LABELS,
    prune_encoders,
    refresh_encoder,
    refresh_lock,
)
from learning.pool import Pool
from learning.registry import ModelError, load_predictor, model_folder
from learning.rounds import NoNewLabels, RoundError, run_round
from learning.settings import LearningSettings
from learning.tuned import ENCODERS, current_tuned, refresh_due
from store import Repository, Workspace, WorkspaceError, load_workspace
from tests.conftest import copy_workspace, predicted_and_stored
from tui.cli import main
from tui.demo import build_demo

pytestmark = pytest.mark.slow


def settings_of(ws: Workspace) -> LearningSettings:
    return replace(LearningSettings.from_workspace(ws), epochs=1)


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """The demo with a first model, then one encoder refresh."""
    path = tmp_path_factory.mktemp("refresh") / "demo"
    ws = build_demo(path, train=True)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    try:
        seconds = refresh_encoder(repo, ws.models_dir, settings_of(ws)).seconds
    finally:
        repo.close()
    return path, seconds


@pytest.fixture
def demo(
    refreshed: tuple[Path, dict[str, float]], tmp_path: Path
) -> Iterator[tuple[Workspace, Repository]]:
    path = tmp_path / "demo"
    shutil.copytree(refreshed[0], path)
    ws = load_workspace(path)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    yield ws, repo
    repo.close()


def test_refresh_makes_a_current_encoder_with_the_pool_encoded(
    demo: tuple[Workspace, Repository], refreshed: tuple[Path, dict[str, float]]
) -> None:
    ws, repo = demo
    tuned = current_tuned(ws.models_dir)
    assert tuned is not None and tuned.folder.is_dir()
    pool = Pool.build(repo, repo.codebook())
    assert tuned.labels == len(pool.train_indices) >= REFRESH_MIN_LABELS
    encoder = tuned.encoder("cpu")
    assert encoder.key.startswith(f"tuned:{tuned.name}|")  # not the folder's path
    found = repo.artifacts.embeddings_into(
        encoder.key, [(np.asarray(pool.message_ids), np.zeros((len(pool.message_ids), 384)))]
    )
    assert found[0].all()  # every pool message's vector cached before it became current
    assert set(refreshed[1]) == {"finetune", "encode_pool"}


def test_rounds_use_it_and_predict_gives_their_probabilities(
    demo: tuple[Workspace, Repository],
) -> None:
    """The round after a refresh registers a version although no label changed (a new
    encoder); the one after that has nothing new. The saved model predicts from text what
    the round stored, and refuses to load once the encoder's files change."""
    ws, repo = demo
    tuned = current_tuned(ws.models_dir)
    result = run_round(repo, ws.models_dir, settings_of(ws))
    assert result.metrics["tuned_encoder"] == tuned.name
    with pytest.raises(NoNewLabels):
        run_round(repo, ws.models_dir, settings_of(ws))
    model = repo.artifacts.active()
    folder = model_folder(ws.models_dir, model)
    predictor = load_predictor(folder, model.checksum, "cpu")
    assert predictor.card.tuned_encoder == tuned.name and predictor.tuned is not None
    proba, expected = predicted_and_stored(repo, predictor, model, 16)
    assert np.allclose(proba, expected, atol=1e-3)
    (tuned.folder / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="refreshed encoder"):
        load_predictor(folder, model.checksum, "cpu")


def test_too_few_labels_refuse_before_any_training(
    demo: tuple[Workspace, Repository], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fewer gold labels than the refresh needs: a clear error, no training, and the
    current encoder stays the current one."""
    ws, repo = demo
    before = current_tuned(ws.models_dir)
    monkeypatch.setattr("learning.encoder_refresh.REFRESH_MIN_LABELS", 10_000)

    def no_training(*_: object, **__: object) -> None:
        raise AssertionError("trained although the labels were too few")

    monkeypatch.setattr("learning.finetune.FinetuneClassifier.fit", no_training)
    with pytest.raises(RoundError, match="at least 10000 gold labels"):
        refresh_encoder(repo, ws.models_dir, settings_of(ws))
    assert current_tuned(ws.models_dir) == before


def test_refresh_command_reports_json(
    demo: tuple[Workspace, Repository], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, _ = demo
    config = ws.config_path.read_text()
    ws.config_path.write_text(config.replace("[learning]\n", "[learning]\nepochs = 1\n"))
    assert main(["-w", str(ws.root), "refresh-encoder", "--json"]) == 0
    report = capsys.readouterr().out
    assert '"encoder": "e' in report and '"labels":' in report


def test_refresh_falls_due_at_the_first_count_then_at_each_doubling() -> None:
    assert not refresh_due(399, None, 400)
    assert refresh_due(400, None, 400)
    assert not refresh_due(799, 400, 400)  # the encoder in use saw 400
    assert refresh_due(800, 400, 400)
    assert refresh_due(1000, 450, 400) and not refresh_due(899, 450, 400)
    assert not refresh_due(10_000, None, 0)  # 0: never by itself


def test_a_negative_refresh_count_is_a_settings_error(tmp_path: Path) -> None:
    ws = build_demo(tmp_path / "demo", train=False)
    config = ws.config_path.read_text()
    ws.config_path.write_text(
        config.replace("[learning]\n", "[learning]\nencoder_refresh_from = -1\n")
    )
    with pytest.raises(WorkspaceError, match="encoder_refresh_from must be 0"):
        LearningSettings.from_workspace(load_workspace(ws.root))


def test_a_second_refresh_is_refused_while_one_runs(
    demo: tuple[Workspace, Repository], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live process holds the lock: refused, naming it, before any training; a dead
    process's lock is taken over and given back."""
    ws, repo = demo
    lock = ws.models_dir / ENCODERS / LOCK
    other = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        lock.write_text(str(other.pid))

        def no_training(*_: object, **__: object) -> None:
            raise AssertionError("trained beside a running refresh")

        monkeypatch.setattr("learning.finetune.FinetuneClassifier.fit", no_training)
        with pytest.raises(RoundError, match=f"already running \\(process {other.pid}\\)"):
            refresh_encoder(repo, ws.models_dir, settings_of(ws))
    finally:
        other.communicate(b"")
    assert lock.read_text() == str(other.pid)  # left to its owner
    with refresh_lock(ws.models_dir / ENCODERS):  # its owner died: taken over
        assert lock.read_text() == str(os.getpid())
    assert not lock.exists()


def test_retrain_says_when_a_refresh_is_due(
    trained_demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`techne retrain` reports the refresh due (JSON and a line) and never starts one
    itself; with `encoder_refresh_from = 0` it is never due."""
    path = copy_workspace(trained_demo, tmp_path / "demo")
    ws = load_workspace(path)
    config = ws.config_path.read_text()

    def new_label_and_retrain(refresh_from: int, *flags: str) -> str:
        ws.config_path.write_text(
            config.replace("[learning]\n", f"[learning]\nencoder_refresh_from = {refresh_from}\n")
        )
        repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
        try:
            repo.ensure_annotator("dana")
            first = repo.claim_next("dana", repo.queue("dana"))
            assert first is not None
            repo.save_label(first, "dana", "label", [repo.codebook().keys()[0]])
        finally:
            repo.close()
        capsys.readouterr()
        assert main(["-w", str(path), "retrain", *flags]) == 0
        return capsys.readouterr().out

    report = json.loads(new_label_and_retrain(200, "--json"))
    assert report["metrics"]["train_size"] >= 200 and report["encoder_refresh_due"] is True
    assert "An encoder refresh is due" in new_label_and_retrain(200)
    assert "encoder refresh" not in new_label_and_retrain(0)
    assert current_tuned(ws.models_dir) is None  # said, not started


def test_encoders_no_version_uses_are_pruned(demo: tuple[Workspace, Repository]) -> None:
    """After a refresh: an encoder a model version uses stays (its rollback needs it), and
    so do the ones kept; an unused one and a stopped refresh's half-written folder go."""
    ws, repo = demo
    tuned = current_tuned(ws.models_dir)
    run_round(repo, ws.models_dir, settings_of(ws))  # a version now uses it
    root = ws.models_dir / ENCODERS
    for name in ("e300-unused", "e500-kept", ".e900-stopped.partial"):
        (root / name).mkdir()
        (root / name / "model.safetensors").write_bytes(b"0" * 64)
    assert prune_encoders(repo, root, {"e500-kept"}) == 2
    left = sorted(p.name for p in root.iterdir())
    assert left == sorted([tuned.name, "e500-kept", "current.json"])
