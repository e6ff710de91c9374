"""What a round refuses before doing any work: an unknown strategy (option, techne.toml,
simulate) and a round with no new labels since the active model; and v0, the codebook's
zero-shot model, which gives suggestions before any label."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import text

import seeds
from learning.encoders import Encoder
from learning.inputs import ModelInput
from learning.pool import Pool
from learning.registry import checksum_folder, load_predictor, model_folder
from learning.rounds import NoNewLabels, run_round
from learning.settings import LearningSettings
from learning.strategies import STRATEGIES, StrategyError
from store import Repository, Workspace, load_workspace
from tui.cli import main
from tui.demo import build_demo

DEMO_COLUMNS = [
    "--text",
    "text",
    "--speaker",
    "speaker",
    "--conversation",
    "conversation_id",
    "--order",
    "turn",
    "--labelable-speaker",
    "therapist",
]


def unlabelled_workspace(path: Path, codebook: str = "mi") -> Workspace:
    """A new workspace with the demo corpus imported and no label at all."""
    assert main(["init", str(path), "--codebook", codebook]) == 0
    code = main(["-w", str(path), "import", str(seeds.demo_corpus()), *DEMO_COLUMNS])
    assert code == 0
    return load_workspace(path)


def nothing_done(ws: Workspace) -> None:
    """No model version, no round, no vector encoded, no weights written."""
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    try:
        assert repo.artifacts.versions() == [] and repo.artifacts.rounds() == []
        key = Encoder(LearningSettings.from_workspace(ws).encoder).key
        assert repo.artifacts.count_embeddings(key) == 0
    finally:
        repo.close()
    assert not ws.models_dir.exists() or not any(ws.models_dir.iterdir())


# -- unknown strategies fail first ------------------------------------------------------------


def test_retrain_unknown_strategy_option_fails_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`techne retrain --strategy foo`: one line naming the option and the known strategies,
    exit 1, nothing encoded, trained or written."""
    ws = unlabelled_workspace(tmp_path / "w")
    capsys.readouterr()
    assert main(["-w", str(ws.root), "retrain", "--strategy", "foo"]) == 1
    error = capsys.readouterr().err.strip()
    assert "--strategy" in error and "'foo'" in error and len(error.splitlines()) == 1
    assert all(name in error for name in STRATEGIES)
    nothing_done(ws)


def test_retrain_unknown_strategy_in_config_fails_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A techne.toml whose [learning] strategy is unknown: the error names the file."""
    ws = unlabelled_workspace(tmp_path / "w")
    config = ws.config_path.read_text()
    assert 'strategy = "auto"' in config
    ws.config_path.write_text(config.replace('strategy = "auto"', 'strategy = "foo"'))
    capsys.readouterr()
    assert main(["-w", str(ws.root), "retrain"]) == 1
    error = capsys.readouterr().err.strip()
    assert "techne.toml" in error and "[learning] strategy" in error and "'foo'" in error
    assert len(error.splitlines()) == 1
    nothing_done(ws)


def test_run_round_unknown_strategy_fails_before_any_work(tmp_path: Path) -> None:
    """The app's retrain path (run_round itself) refuses before loading or encoding."""
    ws = unlabelled_workspace(tmp_path / "w")
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    try:
        settings = LearningSettings.from_workspace(ws, strategy="foo")
        with pytest.raises(StrategyError, match="unknown strategy 'foo'; known strategies"):
            run_round(repo, ws.models_dir, settings)
    finally:
        repo.close()
    nothing_done(ws)


def test_simulate_unknown_strategy_fails_before_reading_or_encoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`techne simulate --strategies random,foo` fails on the name before it even reads the
    file (a missing one here) or encodes a message of the workspace."""
    ws = unlabelled_workspace(tmp_path / "w")
    capsys.readouterr()
    code = main(
        [
            "-w",
            str(ws.root),
            "simulate",
            str(tmp_path / "not-there.csv"),
            "--label",
            "label",
            "--strategies",
            "random,foo",
        ]
    )
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert "--strategies" in error and "'foo'" in error and "not-there" not in error
    nothing_done(ws)


# -- a round with no new labels registers nothing ---------------------------------------------


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The labelled demo workspace with its embeddings cached (encoded once per module)."""
    path = tmp_path_factory.mktemp("guards") / "demo"
    ws = build_demo(path, train=False)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    settings = LearningSettings.from_workspace(ws)
    pool = Pool.build(repo, repo.codebook())
    from learning.features import embed_features

    embed_features(
        repo,
        Encoder(settings.encoder),
        pool.message_ids,
        pool.previous_ids,
        settings.context_mode,
        next_ids=pool.next_ids,
    )
    with repo.engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    repo.close()
    return path


@pytest.fixture
def demo(demo_template: Path, tmp_path: Path) -> Iterator[tuple[Workspace, Repository]]:
    path = tmp_path / "demo"
    shutil.copytree(demo_template, path)
    ws = load_workspace(path)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    yield ws, repo
    repo.close()


@pytest.mark.slow
def test_round_without_new_labels_registers_no_version(
    demo: tuple[Workspace, Repository], capsys: pytest.CaptureFixture[str]
) -> None:
    """A second round on the same labels raises NoNewLabels (the active tag in it) and adds
    no version, round or weights; the command says so and exits 0; one new label (or a
    changed model setting) makes the next round run."""
    ws, repo = demo
    settings = LearningSettings.from_workspace(ws)
    first = run_round(repo, ws.models_dir, settings)
    before = (repo.artifacts.versions(), repo.artifacts.rounds())
    with pytest.raises(NoNewLabels) as caught:
        run_round(repo, ws.models_dir, settings)
    assert caught.value.active == first.model.tag == "v1"
    assert "no new labels since model v1" in str(caught.value)
    # Another strategy or batch size does not change the model either.
    with pytest.raises(NoNewLabels):
        run_round(repo, ws.models_dir, LearningSettings.from_workspace(ws, batch_size=5))
    assert (repo.artifacts.versions(), repo.artifacts.rounds()) == before
    assert sorted(p.name for p in ws.models_dir.iterdir()) == ["v1"]

    capsys.readouterr()
    assert main(["-w", str(ws.root), "retrain"]) == 0
    said = capsys.readouterr().out
    assert "Nothing to retrain: no new labels since model v1" in said
    assert main(["-w", str(ws.root), "retrain", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["round"] is None and report["model"] == "v1"
    assert "no new labels" in report["skipped"]
    assert repo.artifacts.versions() == before[0]

    target = first.queried[0]
    repo.ensure_annotator("ana")
    repo.add_event(target, "ana", "label", [repo.codebook().keys()[0]])
    second = run_round(repo, ws.models_dir, settings)
    assert (
        second.model.tag == "v2" and second.metrics["train_size"] == first.metrics["train_size"] + 1
    )
    changed = run_round(repo, ws.models_dir, LearningSettings.from_workspace(ws, calibrate=False))
    assert changed.model.tag == "v3"


# -- v0: suggestions from the codebook before any label -----------------------------------------


@pytest.mark.slow
def test_first_retrain_without_labels_registers_codebook_model_v0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no label at all, `techne retrain` registers v0: a checksummed zero-shot model
    whose suggestions cover every message, a first queue, and a predictor that loads and
    gives the same probabilities. The first trained model after it is v1."""
    ws = unlabelled_workspace(tmp_path / "w")
    capsys.readouterr()
    assert main(["-w", str(ws.root), "retrain", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "v0" and report["backend"] == "zeroshot"
    assert report["queued"] > 0 and report["metrics"]["zero_shot"] is True
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    try:
        model = repo.artifacts.active()
        assert model is not None and model.tag == "v0"
        folder = model_folder(ws.models_dir, model)
        assert checksum_folder(folder) == model.checksum
        pool = Pool.build(repo, repo.codebook())
        keys = repo.codebook().keys()
        tops = set()
        for mid in pool.message_ids[:200].tolist():
            suggestion = repo.suggestion(int(mid))
            assert suggestion is not None and suggestion.model_version_id == model.id
            tops.add(suggestion.top_label)
        assert tops <= set(keys) and len(tops) >= 2  # not one technique for everything
        queue = repo.queue("ana")
        assert queue and set(queue) <= set(pool.message_ids.tolist())
        first = repo.message(int(pool.message_ids[0]))
        stored = repo.artifacts.prediction(model.id, first.id)
        predictor = load_predictor(folder, model.checksum)
        proba = predictor.predict_proba([ModelInput(first.text, first.speaker, ())])[0]
        assert np.allclose(proba, [stored.probabilities[k] for k in keys], atol=1e-4)
        assert 0.99 < proba.sum() < 1.01 and proba.max() < 0.999  # a softmax, not a one-hot
        # Still no labels: the next retrain explains what is missing, and keeps v0.
        assert main(["-w", str(ws.root), "retrain"]) == 1
        assert "at least 8 labelled" in capsys.readouterr().err
        assert [v.tag for v in repo.artifacts.versions()] == ["v0"]
        assert repo.artifacts.next_tag() == "v1"
    finally:
        repo.close()


@pytest.mark.slow
async def test_app_retrain_without_labels_shows_codebook_suggestions(tmp_path: Path) -> None:
    """In the app, r on a workspace with no labels and no model registers v0, and the
    message on screen shows v0's suggestion without moving on."""
    from tui.app import make_app
    from tui.screens.annotate import AnnotateScreen

    ws = unlabelled_workspace(tmp_path / "w")
    app = make_app(ws.root, annotator="dana")
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            screen = app.screen
            assert isinstance(screen, AnnotateScreen) and screen.suggestion is None
            current = screen.current
            await pilot.press("r")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.repo.artifacts.active().tag == "v0"
            assert screen.current is not None and current is not None
            assert screen.current.id == current.id
            assert screen.suggestion is not None and screen.suggestion.model_tag == "v0"
    finally:
        app.repo.close()
