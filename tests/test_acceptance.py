"""One definition of "accepted as shown", shared by the stats screen and the agreement report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from store import load_workspace
from tui.cli import main


def test_stats_and_agreement_count_acceptance_the_same_way(
    trained_demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """dana accepts one suggestion, changes one, accepts then corrects one, and accepts then
    undoes one. Counted per message by its current code: 1 accepted of 3 shown, in both the
    stats numbers and `techne agreement` (the events alone would say 3 of 5)."""
    root = tmp_path / "demo"
    shutil.copytree(trained_demo, root)
    repo = load_workspace(root).open_repository()
    try:
        repo.ensure_annotator("dana")
        keys = repo.codebook().keys()
        picked = []
        for mid in repo.queue("dana"):
            suggestion = repo.suggestion(mid)
            if suggestion is not None and not suggestion.stale:
                picked.append((mid, suggestion))
            if len(picked) == 4:
                break
        (m1, s1), (m2, s2), (m3, s3), (m4, s4) = picked

        def other(top: str) -> str:
            return next(k for k in keys if k != top)

        def add(mid: int, kind: str, label: str, accepted: bool, version: int) -> int:
            return repo.add_event(
                mid, "dana", kind, [label], model_version_id=version, accepted_suggestion=accepted
            )

        add(m1, "label", s1.top_label, True, s1.model_version_id)
        add(m2, "label", other(s2.top_label), False, s2.model_version_id)
        add(m3, "label", s3.top_label, True, s3.model_version_id)
        add(m3, "correct", other(s3.top_label), False, s3.model_version_id)
        undone = add(m4, "label", s4.top_label, True, s4.model_version_id)
        repo.add_event(m4, "dana", "undo", target_event_id=undone)
        assert repo.suggestion_acceptance("dana") == {"shown": 3, "accepted": 1}
        assert repo.suggestion_acceptance("nobody") == {"shown": 0, "accepted": 0}
        everyone = repo.suggestion_acceptance()
    finally:
        repo.close()
    assert main(["-w", str(root), "agreement", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["expert_vs_model"]
    assert rows == [
        {
            "annotator": "dana",
            "items": 3,
            "accepted": 1,
            "kappa": rows[0]["kappa"],
            "percent_agreement": pytest.approx(1 / 3),
        }
    ]
    assert everyone == {"shown": 3, "accepted": 1}
    assert main(["-w", str(root), "agreement"]) == 0
    assert "33%" in capsys.readouterr().out
