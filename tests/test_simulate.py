"""`techne simulate` for choosing a strategy: the saving against random, progress counted in
work units, plain full-width output off a terminal, a workspace's cached vectors reused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import seeds
from learning.encoders import Encoder
from learning.simulate import SimulationData, labels_to_reach, simulate
from store import Repository, load_workspace
from tui.cli import main

SIM_COLUMNS = [
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
]


def blobs(n: int = 600, seed: int = 0) -> SimulationData:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 8)) * 3
    y = rng.integers(0, 3, n)
    x = centres[y] + rng.normal(size=(n, 8))
    return SimulationData(x=x, y=y, groups=np.arange(n) // 6, labels=["a", "b", "c"], embeddings=x)


def test_saving_versus_random_and_progress_in_work_units() -> None:
    """Random always runs; each row carries the labels to reach random's largest-budget
    score and the saving that makes; progress is reported once per learner x strategy x
    seed x budget; labels to a target only when a target is given."""
    calls: list[tuple[str, float]] = []
    budgets = [30, 60, 120]
    result = simulate(
        blobs(),
        ["breaking-ties"],
        budgets,
        [0, 1],
        step=30,
        progress=lambda stage, fraction: calls.append((stage, fraction)),
    )
    assert list(result["strategies"]) == ["breaking-ties", "random"]
    assert result["target"] is None and result["baseline"] == "random"
    reference = result["strategies"]["random"]["mean"][-1]
    for row in result["strategies"].values():
        assert "labels_to_target" not in row
        reach = labels_to_reach(budgets, row["mean"], reference)
        assert reach is not None  # random reaches its own score by the largest budget
        assert row["labels_to_random"] == pytest.approx(reach, abs=0.05)
        assert row["saving_vs_random"] == pytest.approx(1 - reach / 120, abs=1e-3)
        assert row["random_at_largest"] == reference
    total = 1 * 2 * 2 * 3
    assert len(calls) == total and calls[-1][1] == 1.0
    assert f"{total}/{total}" in calls[-1][0] and "1/12" in calls[0][0]
    with_target = simulate(blobs(), ["random"], [30, 60], [0], step=30, target=0.5)
    assert with_target["strategies"]["random"]["labels_to_target"] is not None


def test_unknown_learner_fails_before_any_curve() -> None:
    from learning.strategies import StrategyError

    with pytest.raises(StrategyError, match="unknown learner 'svm'; known learners: embed"):
        simulate(blobs(60), ["random"], [30], [0], learners=["svm"])


def small_corpus(path: Path, conversations: int = 12) -> Path:
    """The first conversations of the demo corpus (a few hundred messages: quick to encode)."""
    keep: list[str] = []
    lines = []
    for line in seeds.demo_corpus().read_text().splitlines():
        conv = json.loads(line)["conversation_id"]
        if conv not in keep:
            keep.append(conv)
        if len(keep) <= conversations:
            lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_simulate_reuses_workspace_vectors_and_prints_plainly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`techne -w WS simulate` on the workspace's own labels caches its vectors; then
    simulating a file with the same texts encodes nothing. Off a terminal the output has no
    colour codes and the table is not cut to 80 columns; the JSON has the saving against
    random for every strategy, and 5 seeds by default."""
    corpus = small_corpus(tmp_path / "small.jsonl")
    ws_path = tmp_path / "w"
    assert main(["init", str(ws_path), "--codebook", "mi"]) == 0
    code = main(["-w", str(ws_path), "import", str(corpus), *SIM_COLUMNS, "--annotator", "ref"])
    assert code == 0
    small = ["--budgets", "40,80", "--step", "40", "--strategies", "breaking-ties"]
    first = tmp_path / "own.json"
    assert main(["-w", str(ws_path), "simulate", *small, "--seeds", "0", "--json", str(first)]) == 0
    ws = load_workspace(ws_path)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    cached = repo.artifacts.count_embeddings(Encoder().key)
    repo.close()
    assert cached > 100
    assert set(json.loads(first.read_text())["strategies"]) == {  # every learner by default
        f"{learner}/{strategy}"
        for learner in ("embed", "embed-gold-only")
        for strategy in ("breaking-ties", "random")
    }

    encoded: list[int] = []
    real = Encoder.encode

    def counting(self: Encoder, texts: list[str], progress: object = None) -> np.ndarray:
        encoded.append(len(texts))
        return real(self, texts, progress)  # type: ignore[arg-type]

    monkeypatch.setattr(Encoder, "encode", counting)
    capsys.readouterr()
    out = tmp_path / "file.json"
    code = main(
        ["-w", str(ws_path), "simulate", str(corpus), *SIM_COLUMNS, *small, "--json", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    assert sum(encoded) == 0  # every text's vector came from the workspace
    printed = capsys.readouterr().out
    assert "\x1b" not in printed
    header = next(line for line in printed.splitlines() if "strategy" in line and "AUC" in line)
    assert len(header) > 80 and "saving" in header and "labels to random" in header
    assert "All labels: macro-F1 embed " in printed and ", embed-gold-only " in printed
    result = json.loads(out.read_text())
    assert result["seeds"] == [0, 1, 2, 3, 4]
    for row in result["strategies"].values():
        assert "saving_vs_random" in row and "labels_to_random" in row
