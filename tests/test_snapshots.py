"""Snapshot tests of every screen (pytest-textual-snapshot) at 80x24, the default SSH
terminal, and at 160x48; each says what it must show."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tui.app import make_app

pytestmark = pytest.mark.slow
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


@pytest.fixture
def workspace(trained_demo: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo"
    shutil.copytree(trained_demo, path)
    return path


async def settled(pilot) -> None:  # noqa: ANN001
    """Wait for the workers and the layout (tables, plots) to settle."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause(0.3)


def keys(*pressed: str):  # noqa: ANN201
    async def run(pilot) -> None:  # noqa: ANN001
        await pilot.press(*pressed)
        await settled(pilot)

    return run


@pytest.mark.parametrize("size", SIZES)
class TestAnnotateScreen:
    def test_first_message(self, snap_compare, workspace: Path, size) -> None:  # noqa: ANN001
        """Top bar (annotator, codebook, model v1, position, batch), the previous turns, the
        message with conversation:turn, the next turn, every technique on one line with a
        probability bar and the top one selected (a tie marked =), the codebook panel at
        160 columns (folded away at 80), and a footer starting `q Quit  f1 Help`."""
        app = make_app(workspace, annotator="snap")
        assert snap_compare(app, terminal_size=size, run_before=settled)

    def test_blind(self, snap_compare, workspace: Path, size) -> None:  # noqa: ANN001
        """Blind mode: BLIND in the top bar, no technique highlighted, no probabilities, the
        codebook panel says how to choose (nothing from the model)."""
        app = make_app(workspace, annotator="snap", blind=True)
        assert snap_compare(app, terminal_size=size, run_before=settled)

    def test_codebook(self, snap_compare, workspace: Path, size) -> None:  # noqa: ANN001
        """`2` then `?`: at 80 columns Persuade's definition and examples in a window on top;
        at 160 the panel is hidden by `?` (the list takes the width)."""
        app = make_app(workspace, annotator="snap")
        assert snap_compare(app, terminal_size=size, run_before=keys("2", "question_mark"))

    def test_conversation(self, snap_compare, workspace: Path, size) -> None:  # noqa: ANN001
        """`v`: the whole conversation, turn numbers, the message being coded highlighted
        and scrolled into view."""
        app = make_app(workspace, annotator="snap")
        assert snap_compare(app, terminal_size=size, run_before=keys("v"))

    def test_find(self, snap_compare, workspace: Path, size) -> None:  # noqa: ANN001
        """`/patch`: the messages containing "patch", each as conversation#turn and text."""
        app = make_app(workspace, annotator="snap")
        assert snap_compare(app, terminal_size=size, run_before=keys("slash", *"patch", "enter"))

    def test_help(self, snap_compare, workspace: Path, size) -> None:  # noqa: ANN001
        """f1: every key of the annotate screen with what it does."""
        app = make_app(workspace, annotator="snap")
        assert snap_compare(app, terminal_size=size, run_before=keys("f1"))

    def test_back_shows_your_label_and_marks(self, snap_compare, workspace: Path, size) -> None:  # noqa: ANN001
        """Label with 2, go back with left: "your label: Persuade"; a flag leaves its mark."""
        app = make_app(workspace, annotator="snap")
        pressed = keys("2", "enter", "left", "f", *"unsure", "enter")
        assert snap_compare(app, terminal_size=size, run_before=pressed)


@pytest.mark.parametrize("size", SIZES)
class TestStatsScreen:
    def test_stats(self, snap_compare, workspace: Path, size) -> None:  # noqa: ANN001
        """Model versions (macro-F1 0.550 in full, ECE, kappa vs prev), the titled learning
        curve with whole-number ticks, per-technique F1 with counts against targets, and the
        confusion matrix unwrapped; at 80 columns they stack and the screen scrolls."""
        app = make_app(workspace, annotator="snap")
        assert snap_compare(app, terminal_size=size, run_before=keys("c"))

    def test_insights(self, snap_compare, workspace: Path, size) -> None:  # noqa: ANN001
        """Insights from gold labels: header with the outcome, the difference table with
        technique names in its first column, the forest plot and the profiles."""
        app = make_app(workspace, annotator="snap")
        assert snap_compare(app, terminal_size=size, run_before=keys("c", "i"))


@pytest.mark.parametrize("size", SIZES)
class TestEmptyQueue:
    def test_everything_coded(self, snap_compare, tmp_path: Path, size) -> None:  # noqa: ANN001
        """A workspace whose every message is labelled says the queue is empty."""
        from tui.cli import main

        ws = tmp_path / "done"
        assert main(["init", str(ws), "--codebook", "annomi"]) == 0
        data = tmp_path / "done.jsonl"
        data.write_text('{"text": "How are you?", "label": "question"}\n')
        assert (
            main(["-w", str(ws), "import", str(data), "--label", "label", "--annotator", "a"]) == 0
        )
        assert snap_compare(make_app(ws, annotator="snap"), terminal_size=size)


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


@pytest.mark.parametrize("size", SIZES)
class TestAdjudicateScreen:
    def test_coders_side_by_side(self, snap_compare, workspace: Path, size) -> None:  # noqa: ANN001
        """Disputes listed as conversation:turn (coder disagreements first), the message in
        its context, each coder's technique name with their note, no decision pre-chosen."""
        two_coders(workspace)
        app = make_app(workspace, annotator="maria", adjudicate=True)
        assert snap_compare(app, terminal_size=size, run_before=settled)

    def test_pending_decision(self, snap_compare, workspace: Path, size) -> None:  # noqa: ANN001
        """`2`: "Decision: Persuade" above the legend, Persuade highlighted in it."""
        two_coders(workspace)
        app = make_app(workspace, annotator="maria", adjudicate=True)
        assert snap_compare(app, terminal_size=size, run_before=keys("2"))


@pytest.mark.parametrize("size", SIZES)
class TestAgreementScreen:
    def test_agreement(self, snap_compare, workspace: Path, size) -> None:  # noqa: ANN001
        """Alpha overall and per technique (names), the one coder pair's kappa with its item
        count, and a line saying no expert has coded with a suggestion on screen yet."""
        two_coders(workspace)
        app = make_app(workspace, annotator="ana")
        assert snap_compare(app, terminal_size=size, run_before=keys("G"))
