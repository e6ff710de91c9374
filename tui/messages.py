"""App-wide messages: what happened, named in the past tense. Textual's Message.__init__
runs the dataclass's own initialisation, so these are plain dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message


@dataclass
class MessageShown(Message):
    """The annotate screen painted a message (after the refresh that shows it): what a
    benchmark times a save key against."""

    message_id: int


@dataclass
class RoundProgressed(Message):
    """A retrain round reached a stage (fraction of it done)."""

    stage: str
    fraction: float

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RoundProgressed)


@dataclass
class RoundFinished(Message):
    """A retrain round committed a new active model."""

    tag: str
    macro_f1: float | None
    queued: int
    trained_on: int | None = None
    """Gold labels it trained on (outside the held-out conversations)."""


@dataclass
class RoundSkipped(Message):
    """A retrain found no new gold labels since the active model (its tag, when known before
    starting): no version was registered."""

    tag: str | None


@dataclass
class EncoderRefreshed(Message):
    """The background encoder refresh finished: the next round uses this encoder."""

    encoder: str
    labels: int
    seconds: float
