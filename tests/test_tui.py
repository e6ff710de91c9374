"""The annotation app driven through Textual's Pilot: every key writes the events it must."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.worker import WorkerFailed

from store import EventView
from tests.conftest import copy_workspace
from tui.app import TechneApp, make_app
from tui.cli import main
from tui.screens.adjudicate import AdjudicateScreen
from tui.screens.annotate import AnnotateScreen
from tui.screens.overlays import CodebookOverlay, ConversationScreen, HelpScreen
from tui.widgets.suggestions import NONE, SuggestionList

pytestmark = pytest.mark.slow

SIZE = (120, 36)


@pytest.fixture(params=["sqlite", "postgres"])
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A private copy of the trained demo, its store in SQLite or in PostgreSQL (team mode):
    every Pilot test runs against both."""
    if request.param == "sqlite":
        return copy_workspace(request.getfixturevalue("trained_demo"), tmp_path / "demo")
    server = request.getfixturevalue("postgres")
    return copy_workspace(request.getfixturevalue("trained_demo_pg"), tmp_path / "demo", server)


@pytest.fixture
def app(workspace: Path) -> Iterator[TechneApp]:
    app = make_app(workspace, annotator="dana")
    yield app
    app.repo.close()


def events(app: TechneApp) -> list[EventView]:
    """All of dana's events, oldest first."""
    ids = [m.id for m in app.repo.iter_messages(labelable_only=True)]
    out = [e for mid in ids for e in app.repo.events(mid) if e.annotator == "dana"]
    return sorted(out, key=lambda e: e.id)


def screen(app: TechneApp) -> AnnotateScreen:
    assert isinstance(app.screen, AnnotateScreen)
    return app.screen


async def test_enter_accepts_the_suggestion_and_moves_on(app: TechneApp) -> None:
    """enter saves the pre-selected suggestion (accepted as shown) before the next message."""
    async with app.run_test(size=SIZE) as pilot:
        first = screen(app).current
        suggestion = screen(app).suggestion
        assert first is not None and suggestion is not None
        await pilot.press("enter")
        (saved,) = events(app)
        assert saved.message_id == first.id and saved.kind == "label"
        assert saved.labels == (suggestion.top_label,) and saved.accepted_suggestion is True
        assert saved.model_version_id == suggestion.model_version_id and saved.seconds >= 0
        assert screen(app).current is not None and screen(app).current.id != first.id


async def test_digits_and_hotkeys_choose_a_technique(app: TechneApp) -> None:
    """A digit or a technique's letter selects it; the save is not an accepted suggestion
    when it differs from the model's choice."""
    book = app.codebook
    async with app.run_test(size=SIZE) as pilot:
        shown = [screen(app).suggestion]
        await pilot.press("2", "enter")
        shown.append(screen(app).suggestion)
        hotkey_technique = book.techniques[4]
        await pilot.press(hotkey_technique.hotkey or "", "enter")
        first, second = events(app)
        assert first.labels == (book.techniques[1].key,)
        assert second.labels == (hotkey_technique.key,)
        for saved, suggestion in zip((first, second), shown, strict=True):
            assert suggestion is not None
            assert saved.accepted_suggestion is (saved.labels == (suggestion.top_label,))
        # the demo's suggestions make at least one of the two a choice against the model
        assert False in (first.accepted_suggestion, second.accepted_suggestion)


async def test_skip_flag_note_and_undo(app: TechneApp) -> None:
    """s skips, f flags with a reason, n notes, u appends an undo that targets the last save."""
    async with app.run_test(size=SIZE) as pilot:
        skipped = screen(app).current
        await pilot.press("s")
        flagged = screen(app).current
        await pilot.press("f")
        await pilot.press(*"unclear", "enter")
        await pilot.press("n")
        await pilot.press(*"ask lead", "enter")
        await pilot.press("u")
        kinds = [(e.kind, e.message_id) for e in events(app)]
        assert kinds[:3] == [("skip", skipped.id), ("flag", flagged.id), ("note", flagged.id)]
        undo = events(app)[-1]
        assert undo.kind == "undo" and undo.target_event_id == events(app)[1].id
        assert [e.reason for e in events(app) if e.kind == "flag"] == ["unclear"]
        assert [e.note for e in events(app) if e.kind == "note"] == ["ask lead"]


async def test_undo_returns_to_the_message_and_recoding_is_a_correction(app: TechneApp) -> None:
    """After u the same message is back on screen; saving it again appends events, never edits."""
    async with app.run_test(size=SIZE) as pilot:
        first = screen(app).current
        counts = screen(app).query_one(SuggestionList).counts
        key = app.codebook.techniques[0].key
        before = counts.get(key, 0)
        await pilot.press("1", "enter")
        assert counts.get(key, 0) == before + 1
        await pilot.press("u")
        assert counts.get(key, 0) == before  # the on-screen count follows the undo
        assert screen(app).current.id == first.id
        await pilot.press("3", "enter")
        kinds = [e.kind for e in events(app)]
        assert kinds == ["label", "undo", "label"]
        assert app.repo.current_labels(first.id, "dana") == (app.codebook.techniques[2].key,)


async def test_left_and_right_recode_earlier_messages(app: TechneApp) -> None:
    """left goes back; saving there is a correct event; right returns."""
    async with app.run_test(size=SIZE) as pilot:
        first = screen(app).current
        await pilot.press("1", "enter")
        second = screen(app).current
        await pilot.press("left")
        assert screen(app).current.id == first.id
        await pilot.press("2", "enter")
        assert [e.kind for e in events(app)] == ["label", "correct"]
        assert screen(app).current.id == second.id


async def test_blind_mode_shows_nothing_model_derived_before_the_choice(workspace: Path) -> None:
    """--blind: no technique highlighted, no probabilities, no codebook entry, enter refuses;
    the expert's own choice reveals the model's suggestion and is what is saved."""
    app = make_app(workspace, annotator="dana", blind=True)
    async with app.run_test(size=SIZE) as pilot:
        rows = app.screen.query_one(SuggestionList)
        suggestion = screen(app).suggestion
        assert suggestion is not None
        top = next(t for t in app.codebook.techniques if t.key == suggestion.top_label)
        shown = str(rows.render())
        assert rows.revealed is False and rows.selected == NONE
        assert "▶" not in shown and "█" not in shown and suggestion.model_tag not in shown
        assert f"{suggestion.probabilities[top.key]:4.2f}" not in shown
        panel = str(app.screen.query_one("#codebook").render())
        assert top.name not in panel and top.definition[:30] not in panel
        await pilot.press("enter")  # nothing chosen: nothing saved, the message stays
        assert events(app) == [] and screen(app).current.id is not None
        await pilot.press("1")
        assert rows.revealed is True and "█" in str(rows.render())
        await pilot.press("enter")
        (saved,) = events(app)
        assert saved.labels == (app.codebook.techniques[0].key,)
        assert saved.accepted_suggestion is False
        assert screen(app).query_one(SuggestionList).selected == NONE  # the next one: blind
    app.repo.close()


async def test_b_turns_blind_on_for_the_message_on_screen(app: TechneApp) -> None:
    """b mid-session drops the model's preselection at once; b again brings it back. The
    first message's earlier turns overflow their pane: up/down still move the choice (the
    pane once took the focus when it could scroll, and swallowed them)."""
    async with app.run_test(size=SIZE) as pilot:
        rows = screen(app).query_one(SuggestionList)
        assert rows.selected != NONE and rows.revealed
        assert screen(app).query_one("#context-scroll").max_scroll_y > 0
        await pilot.press("b")
        assert rows.selected == NONE and not rows.revealed
        assert "BLIND" in str(screen(app).query_one("#topbar").render())
        await pilot.press("b", "enter")
        assert len(events(app)) == 0  # still nothing chosen: refused
        await pilot.press("down", "enter")
        assert events(app)[0].labels == (app.codebook.techniques[0].key,)


async def test_find_jumps_to_a_message(app: TechneApp) -> None:
    """/ searches message text and jumps to the chosen match."""
    async with app.run_test(size=SIZE) as pilot:
        before = screen(app).current
        assert before is not None and "patch" not in before.text.lower()
        await pilot.press("slash", *"patch", "enter")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        jumped = screen(app).current
        assert jumped is not None and "patch" in jumped.text.lower()
        assert jumped.id == app.repo.search("patch")[0].id


async def test_retrain_runs_in_a_worker_and_refreshes(app: TechneApp) -> None:
    """r trains a new model while the message stays on screen; suggestions come from it."""
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1", "enter")  # a new label: a round without one registers nothing
        current = screen(app).current
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.repo.artifacts.active().tag == "v2"
        assert screen(app).current.id == current.id
        assert screen(app).suggestion.model_tag == "v2"


async def test_r_pressed_three_times_makes_one_version(app: TechneApp) -> None:
    """One round at a time: r while a round runs says so instead of starting another (the
    three presses are handled back to back, before the round can finish); then r finds no
    new gold label, so `r r r` makes exactly one version."""
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1", "enter")
        s = screen(app)
        for _ in range(3):
            s.action_retrain()
        await pilot.pause()
        said = [n.message for n in app._notifications]
        assert sum("Already retraining" in m for m in said) == 2, said
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not s.retraining.is_set()
        await pilot.press("r", "r", "r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert [v.tag for v in app.repo.artifacts.versions()] == ["v1", "v2"]


async def test_a_round_without_new_gold_labels_makes_no_version(app: TechneApp) -> None:
    """Nothing labelled since v1: r says so and registers nothing; a label undone is no
    new label either."""
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert [v.tag for v in app.repo.artifacts.versions()] == ["v1"]
        assert any("No new gold labels since v1" in n.message for n in app._notifications)
        await pilot.press("1", "enter", "u", "r")
        await app.workers.wait_for_complete()
        assert [v.tag for v in app.repo.artifacts.versions()] == ["v1"]


async def test_undo_puts_every_counter_back(app: TechneApp) -> None:
    """Save then undo: the top bar (message, batch and session counters) and the label count
    per technique are exactly as before the save; after a round the batch counter goes on."""
    async with app.run_test(size=SIZE) as pilot:
        s = screen(app)
        bar = s.query_one("#topbar")
        before_bar, before_counts = str(bar.render()), dict(s.query_one(SuggestionList).counts)
        assert "batch 0/" in before_bar and "0 saved" in before_bar
        await pilot.press("1", "enter")
        assert "1 saved" in str(bar.render())
        await pilot.press("s")  # a skip is undone too, and counts as nothing
        await pilot.press("u", "u")
        assert str(bar.render()) == before_bar
        assert s.query_one(SuggestionList).counts == before_counts
        first_of_batch = s.current.id in s.session.round_batch
        await pilot.press("1", "enter", "r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        done = 1 if first_of_batch else 0
        assert f"batch {done}/" in str(bar.render()) and "1 saved" in str(bar.render())


async def test_maintainers_sessions_load_the_round_code_in_the_background(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A maintainer's session imports the round code once the screen is up (so the first
    r is as fast as the next); an expert's session does not."""
    monkeypatch.setattr("tui.app.WARM_AFTER_S", 0.0)
    assert main(["-w", str(workspace), "annotators", "add", "lee", "--role", "maintainer"]) == 0
    for name, warms in (("lee", True), ("dana", False)):
        app = make_app(workspace, annotator=name)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()  # mounted: the warm-up worker, if any, has started
            await app.workers.wait_for_complete()
            assert app.learning_warmed is warms
        app.repo.close()


async def test_markup_and_escapes_render_literally(workspace: Path, tmp_path: Path) -> None:
    """Rich markup, ANSI escapes and control bytes in a message appear as typed characters."""
    nasty = "[bold]not bold[/] \x1b[31mred\x1b[0m \x07bell [link=http://x]y[/link]"
    data = tmp_path / "nasty.jsonl"
    import json

    data.write_text(
        json.dumps({"conversation_id": "zz", "turn": 0, "speaker": "therapist", "text": nasty})
        + "\n"
    )
    assert (
        main(
            [
                "-w",
                str(workspace),
                "import",
                str(data),
                "--conversation",
                "conversation_id",
                "--order",
                "turn",
                "--speaker",
                "speaker",
                "--labelable-speaker",
                "therapist",
            ]
        )
        == 0
    )
    app = make_app(workspace, annotator="dana")
    async with app.run_test(size=SIZE) as pilot:
        mid = app.repo.message("zz:0").id
        screen(app)._jump(mid)
        await pilot.pause()
        card = str(app.screen.query_one("#message").render())
        assert "[bold]not bold[/]" in card and "[link=http://x]y[/link]" in card
        assert "\\x1b[31mred" in card and "\\x07bell" in card and "\x1b" not in card
    app.repo.close()


async def test_codebook_and_whole_conversation_toggles(app: TechneApp) -> None:
    """? hides and shows the codebook panel; v shows the whole conversation with the message
    highlighted, v again goes back to it."""
    async with app.run_test(size=SIZE) as pilot:
        panel = app.screen.query_one("#codebook")
        await pilot.press("question_mark")
        assert panel.display is False
        await pilot.press("question_mark")
        assert panel.display is True
        current = screen(app).current
        whole = app.repo.conversation_messages(current.conversation_id)
        await pilot.press("v")
        assert isinstance(app.screen, ConversationScreen)
        turns = list(app.screen.query(".turn"))
        assert len(turns) == len(whole)
        (highlighted,) = app.screen.query(".current")
        assert current.text[:30] in str(highlighted.render())
        await pilot.press("v")
        assert screen(app).current.id == current.id
        assert events(app) == []


async def test_context_shows_the_next_turn_and_marks(app: TechneApp) -> None:
    """The turn after the message is shown ([ui] context_after, default 1); going back says
    "your label"; a flag and a note leave a mark on the message."""
    async with app.run_test(size=SIZE) as pilot:
        first = screen(app).current
        after = [t for t in app.repo.context(first.id, 0, 1) if t.position > first.position]
        assert after and after[0].text[:30] in str(app.screen.query_one("#next").render())
        await pilot.press("2", "enter", "left")
        card = str(app.screen.query_one("#message").render())
        assert f"your label: {app.codebook.techniques[1].name}" in card
        await pilot.press("f", *"unclear", "enter")
        await pilot.press("n", *"ask lead", "enter")
        card = str(app.screen.query_one("#message").render())
        assert "flagged: unclear" in card and "note: ask lead" in card


async def test_narrow_terminal_folds_the_codebook_into_an_overlay(app: TechneApp) -> None:
    """At 80x24 the codebook panel is folded away; ? shows the highlighted technique's entry
    on top, ? again closes it; f1 lists the keys."""
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.screen.query_one("#codebook").display is False
        selected = app.codebook.techniques[screen(app).query_one(SuggestionList).selected]
        await pilot.press("question_mark")
        assert isinstance(app.screen, CodebookOverlay)
        assert selected.name in str(app.screen.query_one("#codebook-entry").render())
        await pilot.press("question_mark", "f1")
        assert isinstance(app.screen, HelpScreen)
        assert "Quit" in str(app.screen.query_one("#help-keys").render())
        await pilot.press("escape")
        assert isinstance(app.screen, AnnotateScreen)


async def test_adjudication_needs_an_explicit_decision(workspace: Path) -> None:
    """enter with nothing chosen refuses and saves nothing; a digit highlights the pending
    decision; items are listed as conversation:turn."""
    from tests.test_snapshots import two_coders

    two_coders(workspace)
    app = make_app(workspace, annotator="maria", adjudicate=True)
    async with app.run_test(size=SIZE) as pilot:
        adjudicate = app.screen
        assert isinstance(adjudicate, AdjudicateScreen)
        dispute = adjudicate.current
        message = app.repo.message(dispute.message_id)
        table = adjudicate.query_one("#disputes")
        first_cell = str(table.get_row_at(0)[0])
        assert first_cell == f"{message.conversation_external_id}:{message.position}"
        await pilot.press("enter")
        kinds = [e.kind for e in app.repo.events(dispute.message_id)]
        assert "adjudicate" not in kinds
        assert any("Choose the decision first" in n.message for n in app._notifications)
        await pilot.press("2")
        decision = str(adjudicate.query_one("#decision").render())
        assert "Decision: Persuade" in decision and "▶2/p Persuade◀" in decision
        await pilot.press("enter")
        (decided,) = [e for e in app.repo.events(dispute.message_id) if e.kind == "adjudicate"]
        assert decided.labels == ("persuade",)
    app.repo.close()


async def test_a_long_message_scrolls_by_keyboard_at_80x24(workspace: Path) -> None:
    """At 80x24 the adjudication screen's message box holds a few lines: shift+down scrolls
    the longest message in the corpus to its end and shift+up back, while the disputes list
    keeps the focus (its up/down still pick disputes)."""
    from textual.widgets import DataTable

    from store import load_workspace

    repo = load_workspace(workspace).open_repository()
    longest = max(repo.iter_messages(labelable_only=True), key=lambda m: len(m.text))
    for name, label in (("ana", "open_question"), ("ben", "closed_question")):
        repo.ensure_annotator(name)
        repo.add_event(longest.id, name, "label", [label])
    repo.set_role("maria", "lead")
    repo.close()
    app = make_app(workspace, annotator="maria", adjudicate=True)
    async with app.run_test(size=(80, 24)) as pilot:
        adjudicate = app.screen
        assert isinstance(adjudicate, AdjudicateScreen)
        assert adjudicate.current.message_id == longest.id
        card = adjudicate.query_one("#message-box")
        assert card.max_scroll_y > 0  # only part of it shows
        for _ in range(card.max_scroll_y):
            await pilot.press("shift+down")
        assert card.scroll_y == card.max_scroll_y
        await pilot.press("shift+up")
        assert card.scroll_y < card.max_scroll_y
        assert isinstance(app.focused, DataTable)
    app.repo.close()


async def test_multi_label_keys_toggle_then_save(workspace: Path) -> None:
    """In a multi-label codebook, technique keys toggle and enter saves all toggled labels;
    the workspace's own codebook stays the one in techne.toml."""
    from store import load_workspace, parse_codebook

    app = make_app(workspace, annotator="dana")
    book = parse_codebook(
        {
            "codebook": {"key": "multi", "multi_label": True},
            "techniques": [
                {"key": "question", "hotkey": "a"},
                {"key": "reflection", "hotkey": "e"},
                {"key": "advice", "hotkey": "i"},
            ],
        },
        "multi.toml",
    )
    app.repo.install_codebook(book)
    app.repo.codebook_key = "multi"
    app.codebook = app.repo.codebook()
    async with app.run_test(size=SIZE) as pilot:
        first = screen(app).current
        await pilot.press("a", "e", "enter")
        assert events(app)[0].labels == ("question", "reflection")
        assert events(app)[0].message_id == first.id
        second = screen(app).current
        await pilot.press("enter")  # nothing toggled: a warning, nothing saved
        assert len(events(app)) == 1 and screen(app).current.id == second.id
    app.repo.close()
    assert load_workspace(workspace).codebook_key == "mi"


async def test_keys_can_be_rebound_in_techne_toml(workspace: Path) -> None:
    """[keys] in techne.toml rebinds actions: here skip moves from s to x."""
    config = workspace / "techne.toml"
    config.write_text(config.read_text().replace("[keys]\n", '[keys]\nskip = "x"\n'))
    app = make_app(workspace, annotator="dana")
    async with app.run_test(size=SIZE) as pilot:
        first = screen(app).current
        await pilot.press("s")  # no longer skip (s is not a technique key either)
        assert events(app) == [] and screen(app).current.id == first.id
        await pilot.press("x")
        assert [(e.kind, e.message_id) for e in events(app)] == [("skip", first.id)]
    app.repo.close()


async def round_over(app: TechneApp, pilot: Any) -> None:
    """Wait for the round `r` started (if still running: Pilot's key presses may have seen
    it through), then for its end to be handled; not for any other worker."""
    rounds = [w for w in app.workers if w.group == "retrain"]
    if rounds:  # an empty list would wait for every worker
        await app.workers.wait_for_complete(rounds)
    await pilot.pause()


def refreshing_demo(path: Path) -> Path:
    """A copy of the trained demo, its refresh now falling due at the next round (one
    epoch)."""
    config = path / "techne.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("[learning]\n", "[learning]\nencoder_refresh_from = 200\nepochs = 1\n"),
        encoding="utf-8",
    )
    return path


async def test_a_round_starts_the_encoder_refresh_in_the_background(workspace: Path) -> None:
    """A round whose labels call for a refresh starts `techne refresh-encoder` in a child
    process; the expert labels on meanwhile, the app says when it is ready, and the next
    round uses it. On SQLite and on PostgreSQL (the child finds the store by the app's
    workspace and URL)."""
    from learning.tuned import current_tuned

    app = make_app(refreshing_demo(workspace), annotator="dana")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("1", "enter", "r")
            await round_over(app, pilot)  # the refresh has started
            assert app.encoder_refresh.running
            trained = app.repo.artifacts.active().metrics["train_size"]
            said = [n.message for n in app._notifications]
            assert any(f"Refreshing the encoder on {trained} labels" in m for m in said), said
            await pilot.press("2", "enter")  # labelling goes on beside it
            assert screen(app).session.saved == 2
            await app.workers.wait_for_complete()  # the refresh
            await pilot.pause()
            said = [n.message for n in app._notifications]
            tuned = current_tuned(app.workspace.models_dir)
            # the labels when it started (the one saved beside it, too, or not yet)
            assert tuned is not None and tuned.labels in (trained, trained + 1)
            assert any(f"Encoder {tuned.name} is ready" in m for m in said), said
            await pilot.press("r")
            await app.workers.wait_for_complete()
            await pilot.pause()
            active = app.repo.artifacts.active()
            assert active.tag == "v3" and active.metrics["tuned_encoder"] == tuned.name
            assert not app.encoder_refresh.running  # v3's labels are not yet twice the encoder's
    finally:
        app.repo.close()


async def test_quitting_stops_a_refresh_and_makes_nothing_current(
    trained_demo: Path, tmp_path: Path
) -> None:
    from learning.tuned import current_tuned

    app = make_app(
        refreshing_demo(copy_workspace(trained_demo, tmp_path / "demo")), annotator="dana"
    )
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("1", "enter", "r")
            await round_over(app, pilot)
            assert app.encoder_refresh.running
            process = app.encoder_refresh.process
        assert process is not None and process.returncode is not None
        assert current_tuned(app.workspace.models_dir) is None
        assert not any("failed" in n.message for n in app._notifications)
    finally:
        app.repo.close()


async def test_a_refresh_that_fails_is_said_and_labelling_goes_on(
    trained_demo: Path, tmp_path: Path
) -> None:
    """The child process fails (here: another refresh holds the models folder's lock): the
    app says why, in one line, and nothing changes."""
    import subprocess
    import sys

    from learning.encoder_refresh import LOCK
    from learning.tuned import ENCODERS, current_tuned

    path = refreshing_demo(copy_workspace(trained_demo, tmp_path / "demo"))
    (path / "models" / ENCODERS).mkdir(parents=True, exist_ok=True)
    other = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    (path / "models" / ENCODERS / LOCK).write_text(str(other.pid))
    app = make_app(path, annotator="dana")
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("1", "enter", "r")
            await round_over(app, pilot)
            waiting = [w for w in app.workers if w.group == "refresh"]
            assert waiting  # the child is still importing
            with pytest.raises(WorkerFailed):
                await app.workers.wait_for_complete(waiting)
            await pilot.pause()
            said = [n.message for n in app._notifications]
            failed = [m for m in said if m.startswith("Encoder refresh failed")]
            assert failed and f"already running (process {other.pid})" in failed[0], said
            assert "Traceback" not in failed[0]
            await pilot.press("2", "enter")
            assert screen(app).session.saved == 2
        assert current_tuned(app.workspace.models_dir) is None
    finally:
        other.communicate(b"")
        app.repo.close()
