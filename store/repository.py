"""The store's API: everything the learning loop and the UI read or write goes through here.

A façade: each question is answered in the module of its concept (store.messages,
store.events, store.annotators, store.stored_codebooks, store.queue, store.team,
store.agreement, store.reports, store.artifacts), which take an engine, never a Repository.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from store import agreement, annotators, events, messages, queue, reports, stored_codebooks, team
from store.agreement import Dispute
from store.artifacts import Artifacts
from store.codebooks import CodebookSpec
from store.db import check_schema, create_schema, make_engine, prepare_sqlite_file
from store.domain import CodebookView, EventView, MessageView
from store.errors import StoreError
from store.labels import Gold, MessageState
from store.predictions import PredictionSets
from store.queue import Suggestion
from store.team import TeamPolicy

if TYPE_CHECKING:
    from store.saving import MessageDisplay, Saved


class Repository:
    """Typed access to one Techne store (SQLite file or PostgreSQL database)."""

    def __init__(
        self, engine: Engine, codebook_key: str | None = None, team: TeamPolicy | None = None
    ) -> None:
        self.engine = engine
        self.codebook_key = codebook_key
        self.team = team or TeamPolicy()
        """Overlap share and claim lifetime (techne.toml [team])."""
        self._codebooks: dict[str, CodebookView] = {}
        """Codebooks read once: every saved label is checked against one."""
        self._message_index = messages.MessageIndex(engine)
        self.prediction_sets = PredictionSets(engine)
        """Model versions' predictions as read (they never change once committed)."""
        self.artifacts = Artifacts(engine, self.prediction_sets)
        """The learning loop's tables: embedding cache, model versions, predictions, rounds."""

    @classmethod
    def open(
        cls,
        url: str,
        *,
        codebook_key: str | None = None,
        create: bool = False,
        team: TeamPolicy | None = None,
    ) -> Repository:
        """Open the store at `url`; with create=True, make the schema if missing."""
        prepare_sqlite_file(url, create=create)
        engine = make_engine(url)
        if create:
            create_schema(engine)
        else:
            check_schema(engine)
        return cls(engine, codebook_key, team)

    def close(self) -> None:
        self.engine.dispose()

    def session(self) -> Session:
        """A new unit of work (for store-internal modules such as importers)."""
        return Session(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # -- codebooks ---------------------------------------------------------------------------

    def install_codebook(self, spec: CodebookSpec) -> CodebookView:
        """Store a codebook, or bring a stored one up to date with `spec` (techniques are
        added or redefined, never removed: old labels must keep meaning something)."""
        self._codebooks.pop(spec.key, None)
        stored_codebooks.install_codebook(self.engine, spec)
        return self.codebook(spec.key)

    def codebook(self, key: str | None = None) -> CodebookView:
        """The codebook `key` (default: the workspace's)."""
        key = key or self.codebook_key
        if not key:
            raise StoreError("no codebook chosen for this workspace")
        if key not in self._codebooks:
            self._codebooks[key] = stored_codebooks.read_codebook(self.engine, key)
        return self._codebooks[key]

    def codebook_keys(self) -> list[str]:
        return stored_codebooks.codebook_keys(self.engine)

    def _book(self) -> CodebookView | None:
        """The workspace's codebook, None when no codebook is chosen."""
        return self.codebook() if self.codebook_key else None

    # -- annotators --------------------------------------------------------------------------

    def ensure_annotator(self, name: str, role: str = "expert") -> int:
        """The id of annotator `name`, created with `role` if new."""
        return annotators.ensure_annotator(self.engine, name, role)

    def set_role(self, name: str, role: str) -> None:
        """Give an annotator a role (creating them if new)."""
        annotators.set_role(self.engine, name, role)

    def annotators(self) -> dict[str, str]:
        """Annotator name -> role."""
        return annotators.annotators(self.engine)

    # -- messages ----------------------------------------------------------------------------

    def message(self, ref: int | str) -> MessageView:
        """A message by numeric id (int) or external id (str; digits that are no external id
        are read as the numeric id)."""
        return messages.message(self.engine, ref)

    def context(self, message_id: int, before: int, after: int = 0) -> list[MessageView]:
        """Up to `before` previous and `after` following turns of the message's conversation,
        the message itself included, in order."""
        return messages.context(self.engine, message_id, before, after)

    def message_index(self) -> list[tuple[int, int, str, bool]]:
        """(id, conversation id, conversation external id, labelable) of every message in
        conversation order, kept until messages are added (store.messages.MessageIndex).
        The list is shared: do not modify it."""
        return self._message_index.rows()

    def message_texts(self, message_ids: Sequence[int]) -> dict[int, str]:
        """Message id -> text, for many messages at once."""
        return messages.message_texts(self.engine, message_ids)

    def conversation_messages(self, conversation_id: int) -> list[MessageView]:
        return messages.conversation_messages(self.engine, conversation_id)

    def iter_conversations(self, batch: int = 2_000) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """(id, external id, metadata) of every conversation."""
        return messages.iter_conversations(self.engine, batch)

    def iter_messages(
        self, *, labelable_only: bool = False, batch: int = 5_000
    ) -> Iterator[MessageView]:
        """Every message, ordered by conversation then position."""
        return messages.iter_messages(self.engine, labelable_only=labelable_only, batch=batch)

    def search(self, needle: str, limit: int = 50) -> list[MessageView]:
        """Labelable messages whose text contains `needle` (case-insensitive)."""
        return messages.search(self.engine, needle, limit)

    # -- events ------------------------------------------------------------------------------

    def add_event(
        self,
        message_id: int,
        annotator: str,
        kind: str,
        labels: Sequence[str] = (),
        *,
        target_event_id: int | None = None,
        model_version_id: int | None = None,
        accepted_suggestion: bool | None = None,
        seconds: float | None = None,
        note: str | None = None,
        reason: str | None = None,
        source: str = "tui",
    ) -> int:
        """Append one annotation event and commit it; returns the event id."""
        return events.add_event(
            self.engine,
            self.codebook if self.codebook_key is not None else None,
            message_id,
            annotator,
            kind,
            labels,
            target_event_id=target_event_id,
            model_version_id=model_version_id,
            accepted_suggestion=accepted_suggestion,
            seconds=seconds,
            note=note,
            reason=reason,
            source=source,
        )

    def save_label(
        self, message_id: int, annotator: str, kind: str, labels: Sequence[str] = (), **fields: Any
    ) -> Saved:
        """A label (or correction) or skip, the claims, and the next message's view in one
        transaction (see store.saving.save_and_show for `fields`)."""
        from store.saving import save_and_show

        if kind == "label":
            events.check_labels(labels, self.codebook if self.codebook_key is not None else None)
        elif labels:
            raise StoreError(f"a {kind} event carries no labels")
        return save_and_show(
            self.engine,
            self.team,
            self.suggestion,
            message_id=message_id,
            annotator=annotator,
            kind=kind,
            labels=labels,
            **fields,
        )

    def message_display(
        self, message_id: int, annotator: str, before: int, after: int = 0
    ) -> MessageDisplay:
        """Everything the annotate screen draws for one message (see store.saving)."""
        from store.saving import message_display

        return message_display(self.engine, self.suggestion, message_id, annotator, before, after)

    def events(self, message_id: int) -> list[EventView]:
        """Every event on a message, oldest first."""
        return events.events(self.engine, message_id)

    def iter_states(self, message_ids: Iterable[int] | None = None) -> Iterator[MessageState]:
        """The derived state of every message that has events (or of `message_ids`)."""
        return events.iter_states(self.engine, message_ids)

    def gold(self, weakest: str = "single") -> dict[int, Gold]:
        """Message id -> resolved gold label, for every message that has one."""
        return events.gold(self.engine, weakest)

    def current_labels(self, message_id: int, annotator: str) -> tuple[str, ...] | None:
        """This annotator's current labels on a message (None when they have none)."""
        return events.current_labels(self.engine, message_id, annotator)

    # -- annotation --------------------------------------------------------------------------

    def queue(self, annotator: str, limit: int = 500) -> list[int]:
        """Message ids for `annotator` to label next, most useful first (see store.queue)."""
        index = self.message_index()
        return queue.queue(self.engine, self.artifacts, index, self.team, annotator, limit)

    def claim_next(self, annotator: str, candidates: Sequence[int]) -> int | None:
        """Claim the first of `candidates` this annotator may code now (see store.team)."""
        return team.claim_next(self.engine, self.team, annotator, candidates)

    def release_claims(self, annotator: str) -> int:
        """Release every claim the annotator holds; returns how many."""
        return team.release_all(self.engine, annotator)

    def suggestion(self, message_id: int) -> Suggestion | None:
        """The model's suggestion for a message (the active model's, else a stale one)."""
        return queue.suggestion(self.artifacts, message_id)

    def suggestion_acceptance(self, annotator: str | None = None) -> dict[str, int]:
        """Messages coded with a suggestion on screen (`shown`), and how many of them were
        accepted as shown (`accepted`: the current code is the suggestion), for one annotator
        or everyone. The same numbers as the agreement report's expert-vs-model rows."""
        return agreement.acceptance_totals(self.engine, self.artifacts, annotator)

    # -- reports -----------------------------------------------------------------------------

    def agreement(self, *, model: bool = True) -> dict[str, Any]:
        """Kappa per coder pair, alpha overall and per technique, expert vs model."""
        return agreement.agreement_report(self.engine, self.artifacts, self._book(), model=model)

    def disputes(self, *, include_model: bool = True) -> list[Dispute]:
        """Messages awaiting a lead's decision (see store.agreement.disputes)."""
        return agreement.disputes(self.engine, self.artifacts, include_model=include_model)

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables."""
        return reports.counts(self.engine)

    def model_tags(self) -> dict[int, str]:
        """Model version id -> tag."""
        return reports.model_tags(self.engine)

    def status(self) -> dict[str, Any]:
        """Counts a person wants at a glance: messages, labels per technique and annotator."""
        return reports.status_report(self.engine, self.artifacts, self._book())

    def fingerprint(self) -> dict[str, Any]:
        """Row counts plus a hash of every event and message: equal iff nothing changed."""
        return reports.fingerprint(self.engine)
