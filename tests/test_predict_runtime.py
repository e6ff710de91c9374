"""A round on the default CPU runtime records its fidelity against torch fp32 (shown by
`techne models show`); `techne predict` reports both rates and puts turns in --order."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import seeds
from learning.fidelity import RECORD
from learning.registry import load_predictor, model_folder
from learning.rounds import run_round
from learning.runtimes import CPU_DEFAULT, EXACT
from learning.settings import LearningSettings
from store import Repository, Workspace
from tests.test_learning import demo, demo_template  # noqa: F401 - fixtures
from tui.cli import main

pytestmark = pytest.mark.slow

PREDICT = [
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


def test_round_records_runtime_beside_torch_fp32(
    demo: tuple[Workspace, Repository],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The version records, for its runtime, held-out macro-F1 and ECE next to the same
    head's on torch fp32 vectors; the saved card says which runtime trained it."""
    ws, repo = demo
    result = run_round(repo, ws.models_dir, LearningSettings.from_workspace(ws))
    entry = result.metrics[RECORD]
    assert entry["runtime"] == CPU_DEFAULT and entry["n"] == result.metrics["eval_size"] > 20
    assert entry["macro_f1"] == round(result.metrics["macro_f1"], 4)
    assert 0.2 < entry["torch_fp32"]["macro_f1"] <= 1 and 0 <= entry["torch_fp32"]["ece"] <= 1
    assert entry["passed"] == (entry["drop"] <= 0.005)
    version = repo.artifacts.active()
    assert version is not None
    predictor = load_predictor(model_folder(ws.models_dir, version), version.checksum, "cpu")
    assert predictor.card.runtime == CPU_DEFAULT
    assert main(["-w", str(ws.root), "models", "show", "v1"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert f"encoded with {CPU_DEFAULT}" in shown["runtime_note"]
    assert "torch fp32" in shown["runtime_note"]


def test_predict_reports_encoded_and_scored_rates_and_follows_order(
    demo: tuple[Workspace, Repository],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A file whose turns are shuffled within each conversation, scored with --order, gives
    the same predictions as the file in order; the report counts texts encoded (context
    turns included) apart from messages scored."""
    ws, repo = demo
    check = run_round(repo, ws.models_dir, LearningSettings.from_workspace(ws)).metrics[RECORD]
    # auto scores with the runtime the model was trained on only when it passed its check
    expected = CPU_DEFAULT if check["passed"] else EXACT
    rows = [json.loads(line) for line in seeds.demo_corpus().read_text().splitlines()]
    for i, row in enumerate(rows):
        row["id"] = f"m{i}"
    shuffled = rows[:]
    random.Random(0).shuffle(shuffled)
    shuffled.sort(key=lambda r: r["conversation_id"])  # conversations grouped, turns shuffled
    assert shuffled != sorted(shuffled, key=lambda r: (r["conversation_id"], r["turn"]))
    in_order, mixed = tmp_path / "in_order.jsonl", tmp_path / "mixed.jsonl"
    in_order.write_text("".join(json.dumps(r) + "\n" for r in rows))
    mixed.write_text("".join(json.dumps(r) + "\n" for r in shuffled))
    outputs = {}
    for name, source, extra in (
        ("plain", in_order, []),
        ("ordered", mixed, ["--order", "turn"]),
    ):
        out = tmp_path / f"{name}.parquet"
        code = main(
            ["-w", str(ws.root), "predict", str(source), str(out), "--id", "id", *PREDICT, *extra]
        )
        assert code == 0, capsys.readouterr().err
        report = json.loads(capsys.readouterr().out)
        assert report["rows"] == report["rows_scored"] == 866
        assert report["rows_scored"] < report["messages_encoded"] <= len(rows)
        assert report["encoded_per_s"] > report["messages_per_s"] > 0
        assert report["runtime"] == expected
        table = pq.read_table(out).to_pandas().set_index("message_id").sort_index()
        outputs[name] = table
    keys = [f"p_{k}" for k in repo.codebook().keys()]
    assert np.allclose(outputs["plain"][keys].to_numpy(), outputs["ordered"][keys].to_numpy())


def test_predict_order_must_be_a_number(
    demo: tuple[Workspace, Repository],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A turn number that is not an integer: one line naming file, line and column."""
    ws, repo = demo
    run_round(repo, ws.models_dir, LearningSettings.from_workspace(ws))
    source = tmp_path / "bad.csv"
    source.write_text(
        "conversation_id,turn,speaker,text\nc1,1,therapist,Hello there\nc1,two,client,Hi\n"
    )
    out = tmp_path / "scores.parquet"
    code = main(["-w", str(ws.root), "predict", str(source), str(out), *PREDICT, "--order", "turn"])
    assert code == 1
    err = capsys.readouterr().err
    assert "bad.csv" in err and "line 3" in err and "turn" in err and "integer" in err
    assert "Traceback" not in err and not out.exists()
