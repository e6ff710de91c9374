"""One annotator's sitting, in plain Python: the queue, the messages seen (history), undo,
and the counters the screen shows. The annotate screen draws it; the store is asked by the
screen, never from here."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

RATE_AFTER_S = 300.0
"""The labels-per-hour rate shows once the session is this old."""


@dataclass
class Undo:
    """A save that undo can take back, with every counter as it was before it."""

    event_id: int
    message_id: int
    counts: dict[str, int] = field(default_factory=dict)
    saved: int = 0
    coded: bool = False


class Session:
    """Queue, history, undo and counters of one annotate screen."""

    def __init__(
        self,
        queue: Sequence[int] = (),
        *,
        counts: dict[str, int] | None = None,
        batch: Sequence[int] = (),
        coded: Iterable[int] = (),
        clock: float | None = None,
    ) -> None:
        self.queue: list[int] = list(queue)
        """Message ids still to come, most useful first (none already in the history)."""
        self.history: list[int] = []
        """Messages shown in this session, in the order they are stepped through."""
        self.position = -1
        """Index in `history` of the message on screen."""
        self.undo_stack: list[Undo] = []
        self.counts: dict[str, int] = counts if counts is not None else {}
        """Gold labels per technique (updated in place: the screen shows this very dict)."""
        self.round_batch: list[int] = list(batch)
        """The latest round's batch; the top bar counts how much of it was coded."""
        self.coded: set[int] = set(coded)
        self.saved = 0
        self.started = time.monotonic() if clock is None else clock

    # -- where we are -----------------------------------------------------------------------

    @property
    def total(self) -> int:
        """Messages seen plus messages to come."""
        return len(self.history) + len(self.queue)

    def following(self) -> int | None:
        """The next message of the history when the annotator went back, else None."""
        if self.position + 1 < len(self.history):
            return self.history[self.position + 1]
        return None

    def candidates(self) -> list[int]:
        """Queued messages not yet in the history, in order: the ones to claim from."""
        seen = set(self.history)  # asked on every save: no list scan per queued message
        return [m for m in self.queue if m not in seen]

    def forward(self) -> int:
        """Step to the next message of the history (`following` must be one)."""
        self.position += 1
        return self.history[self.position]

    def back(self) -> int | None:
        """Step to the previous message of the history; None at its start."""
        if self.position <= 0:
            return None
        self.position -= 1
        return self.history[self.position]

    def claimed(self, message_id: int, candidates: Sequence[int]) -> None:
        """The store gave this annotator `message_id` out of `candidates`: the queue goes on
        after it, and it joins the history."""
        self.queue = list(candidates[candidates.index(message_id) + 1 :])
        self.history.append(message_id)
        self.position = len(self.history) - 1

    def requeue(self, queue: Iterable[int]) -> None:
        """A fresh queue from the store (others coded some; a new model re-ranked it)."""
        seen = set(self.history)
        self.queue = [m for m in queue if m not in seen]

    def visit(self, message_id: int) -> None:
        """Show a message out of order (find, undo): its place in the history if it has one,
        else right after the message on screen."""
        if message_id in self.history:
            self.position = self.history.index(message_id)
        else:
            self.history.insert(self.position + 1, message_id)
            self.position += 1

    # -- saves and undo ---------------------------------------------------------------------

    def checkpoint(self, message_id: int) -> Undo:
        """Every counter as it is now, for undo to put back (its event id comes later)."""
        return Undo(0, message_id, dict(self.counts), self.saved, message_id in self.coded)

    def labelled(
        self,
        record: Undo,
        event_id: int,
        labels: Sequence[str],
        previous: Sequence[str] | None,
    ) -> None:
        """A label or correction was committed: one more saved, the message coded, its
        labels counted and the ones it replaced no longer."""
        self.saved_other(record, event_id)
        self.saved += 1
        self.coded.add(record.message_id)
        for label in labels:
            self.counts[label] = self.counts.get(label, 0) + 1
        for label in previous or ():
            self.counts[label] = max(0, self.counts.get(label, 0) - 1)

    def saved_other(self, record: Undo, event_id: int) -> None:
        """A skip or flag was committed: undo can take it back."""
        record.event_id = event_id
        self.undo_stack.append(record)

    def take_back(self) -> Undo | None:
        """The last save to undo (None: nothing this session)."""
        return self.undo_stack.pop() if self.undo_stack else None

    def keep(self, record: Undo) -> None:
        """The undo could not be written: the save stays undoable."""
        self.undo_stack.append(record)

    def undone(self, record: Undo) -> None:
        """The undo was committed: every counter as before that save, the message shown."""
        self.counts.clear()
        self.counts.update(record.counts)
        self.saved = record.saved
        if not record.coded:
            self.coded.discard(record.message_id)
        self.visit(record.message_id)

    # -- rounds -----------------------------------------------------------------------------

    def batch_done(self) -> int:
        """Messages of the latest batch coded in this session."""
        return sum(1 for m in self.round_batch if m in self.coded)

    def new_round(self, queue: Iterable[int], batch: Sequence[int]) -> None:
        """After a round: its queue, and the batch counter going on from what this session
        coded of the previous batch."""
        self.requeue(queue)
        done = [m for m in self.round_batch if m in self.coded]
        self.round_batch = done + [m for m in batch if m not in done]

    def rate(self, now: float | None = None) -> float | None:
        """Labels saved per hour, once the session is old enough to say (None before)."""
        elapsed = (time.monotonic() if now is None else now) - self.started
        return self.saved / (elapsed / 3600) if elapsed >= RATE_AFTER_S else None
