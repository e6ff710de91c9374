"""The annotate screen's session model without Textual: queue, history, undo, counters."""

from __future__ import annotations

import subprocess
import sys

from tui.session import RATE_AFTER_S, Session


def test_claiming_moves_the_queue_on_and_grows_the_history() -> None:
    session = Session([1, 2, 3, 4])
    assert session.following() is None and session.candidates() == [1, 2, 3, 4]
    session.claimed(2, session.candidates())  # 1 is held by someone else
    assert session.history == [2] and session.position == 0 and session.queue == [3, 4]
    assert session.total == 3


def test_back_and_forward_walk_the_history() -> None:
    session = Session([1, 2, 3])
    for mid in (1, 2):
        session.claimed(mid, session.candidates())
    assert session.back() == 1 and session.back() is None
    assert session.following() == 2 and session.forward() == 2
    assert session.following() is None


def test_visit_inserts_after_the_message_on_screen_once() -> None:
    """find and undo share one rule: a message already seen is returned to, else it goes in
    right after the one on screen."""
    session = Session([1, 2])
    session.claimed(1, session.candidates())
    session.claimed(2, session.candidates())
    session.back()
    session.visit(9)
    assert session.history == [1, 9, 2] and session.position == 1
    session.visit(2)
    assert session.history == [1, 9, 2] and session.position == 2
    session.requeue([9, 5, 2])
    assert session.queue == [5]


def test_undo_puts_every_counter_back() -> None:
    counts = {"a": 1}
    session = Session([7, 8], counts=counts, batch=[7, 8])
    session.claimed(7, session.candidates())
    record = session.checkpoint(7)
    session.labelled(record, 11, ["b"], previous=["a"])
    assert counts == {"a": 0, "b": 1} and session.saved == 1 and session.batch_done() == 1
    skip = session.checkpoint(8)
    session.saved_other(skip, 12)
    assert session.saved == 1  # a skip is no label
    taken = session.take_back()
    assert taken is skip
    session.undone(taken)
    taken = session.take_back()
    assert taken is not None and taken.event_id == 11
    session.undone(taken)
    assert counts == {"a": 1} and session.saved == 0 and session.batch_done() == 0
    assert session.take_back() is None


def test_an_undo_the_store_refused_stays_undoable() -> None:
    session = Session([1])
    record = session.checkpoint(1)
    session.saved_other(record, 5)
    taken = session.take_back()
    assert taken is not None
    session.keep(taken)
    assert session.undo_stack == [record]


def test_a_new_round_keeps_what_was_coded_of_the_last_batch() -> None:
    session = Session([1, 2, 3], batch=[1, 2], coded=[1])
    session.claimed(1, session.candidates())
    session.new_round([3, 1, 4], batch=[4, 2])
    assert session.round_batch == [1, 4, 2] and session.batch_done() == 1
    assert session.queue == [3, 4]


def test_the_rate_waits_for_a_session_old_enough() -> None:
    session = Session(clock=0.0)
    session.saved = 10
    assert session.rate(now=RATE_AFTER_S - 1) is None
    assert session.rate(now=3600.0) == 10.0


def test_the_session_model_needs_no_textual() -> None:
    code = "import sys, tui.session; assert 'textual' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
