"""The learning engine on the demo corpus with the real bundled MiniLM: rounds, strategies,
failure atomicity, rollback, calibration, bulk prediction that resumes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

import seeds
from learning.calibration import fit_temperature, softmax
from learning.encoders import Encoder
from learning.metrics import expected_calibration_error
from learning.pool import Pool
from learning.predict import predict_file
from learning.registry import ModelError, checksum_folder, load_predictor, model_folder
from learning.rounds import RoundError, run_round
from learning.settings import LearningSettings
from learning.simulate import SimulationData, labels_to_reach, simulate
from learning.strategies import STRATEGIES
from store import Repository, Workspace, load_workspace
from store.io import ColumnMap
from tests.conftest import predicted_and_stored
from tui.cli import main
from tui.demo import build_demo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo workspace with every message's embedding cached (encoded once per module)."""
    path = tmp_path_factory.mktemp("template") / "demo"
    ws = build_demo(path, train=False)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    settings = LearningSettings.from_workspace(ws)
    pool = Pool.build(repo, repo.codebook())
    from learning.features import embed_features

    embed_features(repo, Encoder(settings.encoder), pool.message_ids, pool.previous_ids, "previous")
    with repo.engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    repo.close()
    return path


@pytest.fixture
def demo(demo_template: Path, tmp_path: Path) -> Iterator[tuple[Workspace, Repository]]:
    """A private copy of the cached demo workspace."""
    path = tmp_path / "demo"
    shutil.copytree(demo_template, path)
    ws = load_workspace(path)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    yield ws, repo
    repo.close()


def settings_for(ws: Workspace, **overrides: object) -> LearningSettings:
    return LearningSettings.from_workspace(ws, **overrides)


def label_one(repo: Repository) -> None:
    """A new gold label on the first queued message: the next round has something new."""
    repo.ensure_annotator("ana")
    message = repo.artifacts.latest_round().queried_message_ids[0]
    repo.add_event(message, "ana", "label", [repo.codebook().keys()[0]])


def test_embed_round_registers_model_predictions_and_queue(
    demo: tuple[Workspace, Repository],
) -> None:
    """A round makes an active, checksummed model with held-out metrics, scores the pool
    and queues unlabelled messages that active learning may choose."""
    ws, repo = demo
    result = run_round(repo, ws.models_dir, settings_for(ws, batch_size=15))
    model = repo.artifacts.active()
    assert model is not None and model.tag == "v1" and model.backend == "embed"
    folder = model_folder(ws.models_dir, model)
    assert checksum_folder(folder) == model.checksum
    m = result.metrics
    assert m["train_size"] > 200 and m["eval_size"] > 20
    assert 0.2 < m["macro_f1"] <= 1.0 and 0 <= m["ece"] <= 1
    # the 12-technique demo's model is sure (0.99) of no message yet: no pseudo-labels
    assert m["pseudo_labels"] == 0
    assert set(m["per_technique"]) == set(repo.codebook().keys())
    pool = Pool.build(repo, repo.codebook())
    predictions = repo.artifacts.predictions(model.id)
    assert len(predictions) == len(pool)
    sample = next(iter(predictions.values()))
    assert abs(sum(sample.probabilities.values()) - 1) < 1e-3
    al_picks = result.queried[:15]
    assert len(al_picks) == 15 and len(result.queried) == 15 + 2
    for mid in al_picks:
        i = pool.index[mid]
        assert not pool.labelled[i] and not pool.held_out[i]
    for mid in result.queried[15:]:
        assert pool.held_out[pool.index[mid]]
    assert repo.artifacts.latest_round().queried_message_ids == result.queried


def test_a_round_self_trains_when_its_model_is_sure(
    demo: tuple[Workspace, Repository], capsys: pytest.CaptureFixture[str]
) -> None:
    """At `pseudo_confidence` 0.6 a round on the demo uses pseudo-labels (at most one per
    gold label), and its saved model predicts what the round stored; `self_training =
    false` uses none, and the setting is part of the model (the same labels with it
    switched make a new version, not NoNewLabels); `techne retrain` says how many."""
    ws, repo = demo
    trained = run_round(repo, ws.models_dir, settings_for(ws, pseudo_confidence=0.6))
    assert 0 < trained.metrics["pseudo_labels"] <= trained.metrics["train_size"]
    model = repo.artifacts.active()
    predictor = load_predictor(model_folder(ws.models_dir, model), model.checksum, "cpu")
    proba, expected = predicted_and_stored(repo, predictor, model, 40)
    assert np.allclose(proba, expected, atol=1e-4)
    plain = run_round(
        repo, ws.models_dir, settings_for(ws, pseudo_confidence=0.6, self_training=False)
    )
    assert plain.model.tag == "v2" and plain.metrics["pseudo_labels"] == 0
    assert repo.artifacts.active().settings["self_training"] is False
    config = ws.config_path.read_text()
    ws.config_path.write_text(
        config.replace("[learning]\n", "[learning]\npseudo_confidence = 0.6\n")
    )
    capsys.readouterr()
    assert main(["-w", str(ws.root), "retrain"]) == 0  # techne.toml: self-training again
    said = capsys.readouterr().out
    assert "model v3" in said and f"and {trained.metrics['pseudo_labels']} pseudo-labels" in said


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_queues_candidates(demo: tuple[Workspace, Repository], strategy: str) -> None:
    """Every named strategy runs in a round and queues distinct unlabelled candidates."""
    ws, repo = demo
    result = run_round(
        repo, ws.models_dir, settings_for(ws, strategy=strategy, batch_size=10, eval_queries=0)
    )
    pool = Pool.build(repo, repo.codebook())
    assert len(result.queried) == len(set(result.queried)) == 10
    assert all(i in set(pool.candidate_indices) for i in (pool.index[m] for m in result.queried))


def test_failed_round_leaves_active_model_and_queue(
    demo: tuple[Workspace, Repository], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while committing rolls back the whole round and removes its weights."""
    ws, repo = demo
    run_round(repo, ws.models_dir, settings_for(ws))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full while writing predictions")

    label_one(repo)
    before = (repo.artifacts.versions(), repo.artifacts.rounds(), repo.counts())
    monkeypatch.setattr("store.artifacts._insert_prediction_set", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        run_round(repo, ws.models_dir, settings_for(ws))
    assert (repo.artifacts.versions(), repo.artifacts.rounds(), repo.counts()) == before
    assert repo.artifacts.active().tag == "v1"
    assert sorted(p.name for p in ws.models_dir.iterdir()) == ["v1"]


def test_round_without_enough_labels_says_why(tmp_path: Path) -> None:
    """Too few labels: the first round registers the codebook's zero-shot v0; the next one
    is a clear RoundError and writes nothing more."""
    ws_path = tmp_path / "w"
    assert main(["init", str(ws_path), "--codebook", "annomi"]) == 0
    data = tmp_path / "few.jsonl"
    data.write_text(
        '{"text": "How are you?", "label": "question"}\n{"text": "Ok.", "label": "other"}\n'
    )
    assert (
        main(["-w", str(ws_path), "import", str(data), "--label", "label", "--annotator", "a"]) == 0
    )
    ws = load_workspace(ws_path)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    assert run_round(repo, ws.models_dir, settings_for(ws, eval_share=0.0)).model.tag == "v0"
    before = (repo.artifacts.versions(), repo.artifacts.rounds())
    with pytest.raises(RoundError, match="at least 8 labelled messages"):
        run_round(repo, ws.models_dir, settings_for(ws, eval_share=0.0))
    assert (repo.artifacts.versions(), repo.artifacts.rounds()) == before
    repo.close()


def test_rollback_activates_an_earlier_version(
    demo: tuple[Workspace, Repository], capsys: pytest.CaptureFixture[str]
) -> None:
    """`techne models activate v1` after two rounds makes v1 active again; tampered weights refuse."""
    ws, repo = demo
    run_round(repo, ws.models_dir, settings_for(ws))
    label_one(repo)
    run_round(repo, ws.models_dir, settings_for(ws, strategy="random"))
    assert repo.artifacts.active().tag == "v2"
    assert main(["-w", str(ws.root), "models", "activate", "v1"]) == 0
    assert repo.artifacts.active().tag == "v1"
    assert main(["-w", str(ws.root), "models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert [(v["tag"], v["active"]) for v in listed] == [("v1", True), ("v2", False)]
    (ws.models_dir / "v2" / "model.json").write_text("{}")
    assert main(["-w", str(ws.root), "models", "activate", "v2"]) == 1
    assert "missing or changed" in capsys.readouterr().err
    assert repo.artifacts.active().tag == "v1"


def test_saved_model_predicts_like_the_round(demo: tuple[Workspace, Repository]) -> None:
    """Loading a version from disk gives the probabilities the round stored (text path = cache path)."""
    ws, repo = demo
    run_round(repo, ws.models_dir, settings_for(ws))
    model = repo.artifacts.active()
    predictor = load_predictor(model_folder(ws.models_dir, model), model.checksum, "cpu")
    proba, expected = predicted_and_stored(repo, predictor, model, 40)
    assert np.allclose(proba, expected, atol=1e-4)
    (model_folder(ws.models_dir, model) / "model.json").write_text("{}")
    with pytest.raises(ModelError, match="checksum"):
        load_predictor(model_folder(ws.models_dir, model), model.checksum)


def test_predict_resumes_after_interruption(
    demo: tuple[Workspace, Repository], tmp_path: Path
) -> None:
    """An interrupted bulk prediction resumes without redoing finished chunks, same output."""
    ws, repo = demo
    run_round(repo, ws.models_dir, settings_for(ws))
    model = repo.artifacts.active()
    predictor = load_predictor(model_folder(ws.models_dir, model), model.checksum, "cpu")
    source = seeds.demo_corpus()
    columns = ColumnMap(
        text="text",
        speaker="speaker",
        conversation="conversation_id",
        labelable_speakers=("therapist",),
    )
    kwargs = dict(model_tag=model.tag, model_checksum=model.checksum, chunk_rows=200)
    full = tmp_path / "full.parquet"
    predict_file(predictor, source, full, columns, **kwargs)
    calls = []

    def interrupt(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt

    out = tmp_path / "scores.parquet"
    with pytest.raises(KeyboardInterrupt):
        predict_file(predictor, source, out, columns, progress=interrupt, **kwargs)
    assert not out.exists() and len(list(out.with_name("scores.parquet.parts").glob("part-*"))) == 2
    report = predict_file(predictor, source, out, columns, **kwargs)
    assert report.chunks_resumed == 2 and report.rows == 866 and report.chunks == 5
    assert pq.read_table(out).equals(pq.read_table(full))
    table = pq.read_table(out).to_pylist()
    assert set(table[0]) >= {"message_id", "label", "confidence", "model_version"}
    assert not out.with_name("scores.parquet.parts").exists()


def test_retrain_command_reports_json(
    demo: tuple[Workspace, Repository], capsys: pytest.CaptureFixture[str]
) -> None:
    """`techne retrain --json` runs a round and reports its metrics."""
    ws, _ = demo
    assert main(["-w", str(ws.root), "retrain", "--json", "--batch", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "v1" and report["queued"] == 5 + 2
    assert 0 < report["metrics"]["macro_f1"] <= 1


def test_encoder_batches_do_not_change_vectors() -> None:
    """Dynamic padding: a text's vector is the same alone or batched with longer texts."""
    encoder = Encoder(batch_size=4)
    texts = [
        "Hi.",
        "So you feel stuck between wanting to quit and fearing the cravings.",
        "Okay",
        "Tell me more.",
    ]
    together = encoder.encode(texts)
    alone = np.vstack([encoder.encode([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)
    assert np.allclose(np.linalg.norm(together, axis=1), 1, atol=1e-5)


def test_temperature_scaling_fixes_overconfidence() -> None:
    """An overconfident model gets T > 1 and a lower expected calibration error."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 2000)
    logits = rng.normal(size=(2000, 4))
    logits[np.arange(2000), y] += 1.0
    logits *= 4  # overconfident
    t = fit_temperature(logits, y)
    assert t > 1.5
    assert (
        expected_calibration_error(softmax(logits, t), y)
        < expected_calibration_error(softmax(logits), y) / 2
    )


def test_simulation_curves_and_label_cost() -> None:
    """Simulation returns curves per strategy; label cost interpolates between budgets."""
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 8)) * 3
    y = rng.integers(0, 3, 600)
    x = centers[y] + rng.normal(size=(600, 8))
    data = SimulationData(
        x=x, y=y, groups=np.arange(600) // 6, labels=["a", "b", "c"], embeddings=x
    )
    result = simulate(data, ["breaking-ties", "random"], [40, 80], [0, 1], step=20)
    for row in result["strategies"].values():
        assert len(row["mean"]) == 2 and all(0 < v <= 1 for v in row["mean"])
    assert result["all_labels"]["mean"] > 0.8
    assert labels_to_reach([100, 200], [0.6, 0.8], 0.7) == pytest.approx(150)
    assert labels_to_reach([100, 200], [0.6, 0.65], 0.7) is None


def test_predict_command_scores_a_file(
    demo: tuple[Workspace, Repository], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`techne predict` writes one row per labelable message with probabilities per technique."""
    ws, repo = demo
    run_round(repo, ws.models_dir, settings_for(ws))
    out = tmp_path / "scores.parquet"
    code = main(
        [
            "-w",
            str(ws.root),
            "predict",
            str(seeds.demo_corpus()),
            str(out),
            "--text",
            "text",
            "--conversation",
            "conversation_id",
            "--speaker",
            "speaker",
            "--labelable-speaker",
            "therapist",
            "--json",
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == 866
    table = pq.read_table(out)
    assert table.num_rows == 866
    assert {f"p_{k}" for k in repo.codebook().keys()} <= set(table.column_names)
    probs = np.column_stack([table.column(f"p_{k}").to_numpy() for k in repo.codebook().keys()])
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-3)


def test_simulate_command_prints_curves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`techne simulate` on a labelled file prints a curve table and writes JSON."""
    out = tmp_path / "sim.json"
    code = main(
        [
            "simulate",
            str(seeds.demo_corpus()),
            "--codebook",
            "mi",
            "--text",
            "text",
            "--speaker",
            "speaker",
            "--conversation",
            "conversation_id",
            "--order",
            "turn",
            "--label",
            "reference_code",
            "--labelable-speaker",
            "therapist",
            "--budgets",
            "60,120",
            "--seeds",
            "0,1",
            "--step",
            "30",
            "--strategies",
            "breaking-ties,random",
            "--learners",
            "embed",
            "--json",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "breaking-ties" in printed and "random" in printed and "All labels" in printed
    result = json.loads(out.read_text())
    assert result["budgets"] == [60, 120] and set(result["strategies"]) == {
        "breaking-ties",
        "random",
    }


def test_multi_label_codebook_round(demo: tuple[Workspace, Repository]) -> None:
    """A multi-label codebook trains one-vs-rest heads; predictions are per-technique probabilities."""
    from store import parse_codebook

    ws, repo = demo
    keys = repo.codebook().keys()
    book = parse_codebook(
        {
            "codebook": {"key": "mi_multi", "multi_label": True},
            "techniques": [{"key": k} for k in keys] + [{"key": "reflective"}],
        },
        "mi_multi.toml",
    )
    repo.install_codebook(book)
    repo.codebook_key = "mi_multi"
    repo.ensure_annotator("multi")
    for msg in list(repo.iter_messages(labelable_only=True))[:400]:
        code = msg.meta["reference_code"]
        labels = [code, "reflective"] if "reflection" in code else [code]
        repo.add_event(msg.id, "multi", "label", labels, source="test")
    result = run_round(repo, ws.models_dir, settings_for(ws, batch_size=8, eval_queries=0))
    assert result.metrics["n"] > 0 and 0 <= result.metrics["macro_f1"] <= 1
    assert "subset_accuracy" in result.metrics and len(result.queried) == 8
    stored = repo.artifacts.predictions(result.model.id)
    sample = next(iter(stored.values())).probabilities
    assert set(sample) == set(keys) | {"reflective"}


def test_finetune_round_registers_a_loadable_model(demo: tuple[Workspace, Repository]) -> None:
    """The finetune backend in a round: trained (1 epoch), calibrated on a dev split, saved,
    registered, and loadable to give the stored probabilities back."""
    ws, repo = demo
    settings = settings_for(ws, backend="finetune", epochs=1, context_mode="previous", batch_size=5)
    result = run_round(repo, ws.models_dir, settings)
    model = repo.artifacts.active()
    assert model.backend == "finetune" and 0 < result.metrics["macro_f1"] <= 1
    predictor = load_predictor(model_folder(ws.models_dir, model), model.checksum, "cpu")
    proba, expected = predicted_and_stored(repo, predictor, model, 16)
    assert np.allclose(proba, expected, atol=1e-3)


def test_a_round_keeps_the_temperature_until_the_labels_grow(
    demo: tuple[Workspace, Repository],
) -> None:
    """Cross-validating the temperature is most of a warm round's training: a round with a
    few new labels keeps the active version's temperature and says whose it is."""
    ws, repo = demo
    first = run_round(repo, ws.models_dir, settings_for(ws))
    assert first.metrics["temperature_fitted_at"] == first.metrics["train_size"]
    assert "temperature_kept_from" not in first.metrics
    label_one(repo)
    second = run_round(repo, ws.models_dir, settings_for(ws))
    assert second.metrics["train_size"] == first.metrics["train_size"] + 1
    assert second.metrics["temperature"] == first.metrics["temperature"]
    assert second.metrics["temperature_kept_from"] == first.model.tag
    assert second.metrics["temperature_fitted_at"] == first.metrics["temperature_fitted_at"]


@pytest.mark.parametrize(
    ("train_size", "changed", "kept"),
    [
        (100, {}, True),
        (124, {}, True),
        (125, {}, False),  # a quarter more labels: fit a new one
        (99, {}, False),  # labels removed since: fit a new one
        (110, {"context_mode": "none"}, False),
        (110, {"calibrate": False}, False),
        (110, {"backend": "finetune"}, False),
        (110, {"labels": ["a", "b", "c", "d"]}, False),
    ],
)
def test_kept_temperature_rule(train_size: int, changed: dict[str, object], kept: bool) -> None:
    from types import SimpleNamespace

    from learning.round_steps import kept_temperature

    settings = LearningSettings(calibrate=True)
    labels = changed.pop("labels", ["a", "b", "c"])
    parent = SimpleNamespace(
        tag="v3",
        settings=dict(settings.__dict__),
        metrics={
            "temperature": 1.7,
            "temperature_fitted_at": 100,
            "label_counts": dict.fromkeys("abc", 1),
        },
    )
    now = replace(settings, **changed)
    assert kept_temperature(parent, now, train_size, labels) == (1.7 if kept else None)  # type: ignore[arg-type]
