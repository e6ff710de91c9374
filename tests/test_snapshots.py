"""Snapshot tests of each screen (pytest-textual-snapshot); each says what it must show."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tui.app import make_app

pytestmark = pytest.mark.slow
SIZE = (120, 36)


@pytest.fixture
def workspace(trained_demo: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo"
    shutil.copytree(trained_demo, path)
    return path


class TestAnnotateScreen:
    def test_first_message(self, snap_compare, workspace: Path) -> None:  # noqa: ANN001
        """Top bar (annotator, codebook, model v1, position), context turns, the message with
        its conversation and turn, every technique with a probability bar and the top one
        selected, the codebook panel for it, and the key footer."""
        assert snap_compare(make_app(workspace, annotator="snap"), terminal_size=SIZE)

    def test_blind(self, snap_compare, workspace: Path) -> None:  # noqa: ANN001
        """Blind mode: BLIND in the top bar, no probabilities until a choice is made."""
        assert snap_compare(make_app(workspace, annotator="snap", blind=True), terminal_size=SIZE)


class TestCodebookPanel:
    def test_codebook_hidden_then_other_technique(self, snap_compare, workspace: Path) -> None:  # noqa: ANN001
        """After `?` the codebook panel is hidden; after `?` again and `2` it shows Persuade's
        definition and examples."""
        app = make_app(workspace, annotator="snap")
        assert snap_compare(app, terminal_size=SIZE, press=["question_mark", "question_mark", "2"])


class TestStatsScreen:
    def test_stats(self, snap_compare, workspace: Path) -> None:  # noqa: ANN001
        """The model versions table with v1's macro-F1 and ECE, the learning-curve plot,
        per-technique F1 with label counts against targets, and the confusion matrix."""
        assert snap_compare(make_app(workspace, annotator="snap"), terminal_size=SIZE, press=["c"])


class TestEmptyQueue:
    def test_everything_coded(self, snap_compare, tmp_path: Path) -> None:  # noqa: ANN001
        """A workspace whose every message is labelled says the queue is empty."""
        from tui.cli import main

        ws = tmp_path / "done"
        assert main(["init", str(ws), "--codebook", "annomi"]) == 0
        data = tmp_path / "done.jsonl"
        data.write_text('{"text": "How are you?", "label": "question"}\n')
        assert (
            main(["-w", str(ws), "import", str(data), "--label", "label", "--annotator", "a"]) == 0
        )
        assert snap_compare(make_app(ws, annotator="snap"), terminal_size=SIZE)


def two_coders(workspace: Path) -> None:
    """Two experts disagree on one message and agree on two; a lead, maria."""
    from store import load_workspace

    repo = load_workspace(workspace).open_repository()
    mids = repo.queue("ana")[:3]
    for name in ("ana", "ben"):
        repo.ensure_annotator(name)
    repo.set_role("maria", "lead")
    repo.add_event(mids[0], "ana", "label", ["open_question"])
    repo.add_event(mids[0], "ben", "label", ["closed_question"])
    repo.add_event(mids[0], "ben", "note", note="the tag question makes it closed")
    for mid in mids[1:]:
        repo.add_event(mid, "ana", "label", ["affirm"])
        repo.add_event(mid, "ben", "label", ["affirm"])
    repo.close()


class TestAdjudicateScreen:
    def test_coders_side_by_side(self, snap_compare, workspace: Path) -> None:  # noqa: ANN001
        """The dispute list (coder disagreements first), the message in its context, each
        coder's label with their note, and the decision row with the first coder's choice."""
        two_coders(workspace)
        app = make_app(workspace, annotator="maria", adjudicate=True)
        assert snap_compare(app, terminal_size=SIZE, press=["v"])


class TestAgreementScreen:
    def test_agreement(self, snap_compare, workspace: Path) -> None:  # noqa: ANN001
        """Alpha overall and per technique, the one coder pair's kappa with its item count,
        and a line saying no expert has coded with a suggestion on screen yet."""
        two_coders(workspace)

        async def computed(pilot) -> None:  # noqa: ANN001
            await pilot.press("G")
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()

        app = make_app(workspace, annotator="ana")
        assert snap_compare(app, terminal_size=SIZE, run_before=computed)
