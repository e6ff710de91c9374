"""The store's API: everything the learning loop and the UI read or write goes through here."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from store import models as m
from store.agreement import Dispute
from store.artifacts import Artifacts
from store.codebooks import CodebookSpec
from store.db import (
    check_schema,
    create_schema,
    insert_or_get,
    make_engine,
    prepare_sqlite_file,
    raw_rows,
)
from store.domain import CodebookView, EventView, MessageView, TechniqueView
from store.errors import StoreError
from store.labels import LABELLING_KINDS, EventRow, Gold, MessageState, derive, resolve
from store.names import check_annotator_name
from store.predictions import PredictionSets
from store.queue import Suggestion
from store.team import DECIDING_ROLES, TeamPolicy, claim_next, release, release_all, role_refusal

if TYPE_CHECKING:
    from store.saving import MessageDisplay, Saved

EVENT_ROW_BATCH = 20_000


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
        self._message_index: tuple[tuple[Any, ...], list[tuple[int, int, str, bool]]] | None = None
        self.prediction_sets = PredictionSets(engine)
        """Model versions' predictions as read (they never change once committed)."""

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

    @property
    def artifacts(self) -> Artifacts:
        """The learning loop's tables: embedding cache, model versions, predictions, rounds."""
        return Artifacts(self)

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
        with self.session() as s:
            book = s.exec(select(m.Codebook).where(m.Codebook.key == spec.key)).first()
            if book is None:
                book = m.Codebook(key=spec.key, name=spec.name)
            book.name, book.version = spec.name, spec.version
            book.description, book.multi_label = spec.description, spec.multi_label
            s.add(book)
            s.flush()
            assert book.id is not None
            existing = {
                t.key: t
                for t in s.exec(select(m.Technique).where(m.Technique.codebook_id == book.id))
            }
            missing = set(existing) - set(spec.technique_keys())
            if missing:
                raise StoreError(
                    f"codebook '{spec.key}' is stored with techniques {sorted(missing)} that "
                    f"{spec.source or 'the new version'} drops; techniques are never removed"
                )
            for position, t in enumerate(spec.techniques):
                row = existing.get(t.key) or m.Technique(
                    codebook_id=book.id, key=t.key, name=t.name
                )
                row.name, row.definition, row.examples = t.name, t.definition, list(t.examples)
                row.hotkey, row.target, row.position = t.hotkey, t.target, position
                s.add(row)
            s.commit()
        return self.codebook(spec.key)

    def codebook(self, key: str | None = None) -> CodebookView:
        """The codebook `key` (default: the workspace's)."""
        key = key or self.codebook_key
        if not key:
            raise StoreError("no codebook chosen for this workspace")
        if key in self._codebooks:
            return self._codebooks[key]
        with self.session() as s:
            book = s.exec(select(m.Codebook).where(m.Codebook.key == key)).first()
            if book is None:
                known = ", ".join(self.codebook_keys()) or "none"
                raise StoreError(f"no codebook '{key}' in the store (stored: {known})")
            rows = s.exec(
                select(m.Technique)
                .where(m.Technique.codebook_id == book.id)
                .order_by(col(m.Technique.position))
            ).all()
        self._codebooks[key] = CodebookView(
            key=book.key,
            name=book.name,
            version=book.version,
            description=book.description,
            multi_label=book.multi_label,
            techniques=tuple(
                TechniqueView(t.key, t.name, t.definition, tuple(t.examples), t.hotkey, t.target)
                for t in rows
            ),
        )
        return self._codebooks[key]

    def codebook_keys(self) -> list[str]:
        with self.session() as s:
            return list(s.exec(select(m.Codebook.key).order_by(m.Codebook.key)))

    # -- annotators --------------------------------------------------------------------------

    def ensure_annotator(self, name: str, role: str = "expert") -> int:
        """The id of annotator `name`, created with `role` if new."""
        if role not in m.ROLES:
            raise StoreError(f"role must be one of {', '.join(m.ROLES)}, got {role!r}")
        name = check_annotator_name(name)
        with self.engine.begin() as conn:
            values = {"name": name, "role": role, "created_at": m.utcnow()}
            table = SQLModel.metadata.tables["annotators"]
            return insert_or_get(conn, table, "name", values)

    def set_role(self, name: str, role: str) -> None:
        """Give an annotator a role (creating them if new)."""
        if role not in m.ROLES:
            raise StoreError(f"role must be one of {', '.join(m.ROLES)}, got {role!r}")
        self.ensure_annotator(name, role)
        with self.session() as s:
            row = s.exec(select(m.Annotator).where(m.Annotator.name == name.strip())).one()
            row.role = role
            s.add(row)
            s.commit()

    def annotators(self) -> dict[str, str]:
        """Annotator name -> role."""
        with self.session() as s:
            return {a.name: a.role for a in s.exec(select(m.Annotator).order_by(m.Annotator.name))}

    # -- messages ----------------------------------------------------------------------------

    def message(self, message_id: int) -> MessageView:
        with self.session() as s:
            row = s.exec(
                select(m.CounselingMessage, m.Conversation.external_id)
                .join(m.Conversation)
                .where(m.CounselingMessage.id == message_id)
            ).first()
        if row is None:
            raise StoreError(f"no message with id {message_id}")
        return _message_view(*row)

    def find_message(self, external_id: str) -> MessageView:
        """A message by its external id (or by its numeric id when given digits)."""
        with self.session() as s:
            row = s.exec(
                select(m.CounselingMessage, m.Conversation.external_id)
                .join(m.Conversation)
                .where(m.CounselingMessage.external_id == external_id)
            ).first()
        if row is None:
            if external_id.isdigit():
                return self.message(int(external_id))
            raise StoreError(f"no message with id {external_id!r}")
        return _message_view(*row)

    def context(self, message_id: int, before: int, after: int = 0) -> list[MessageView]:
        """Up to `before` previous and `after` following turns of the message's conversation,
        the message itself included, in order."""
        msg = self.message(message_id)
        with self.session() as s:
            q = (
                select(m.CounselingMessage)
                .where(m.CounselingMessage.conversation_id == msg.conversation_id)
                .where(m.CounselingMessage.position >= msg.position - before)
                .where(m.CounselingMessage.position <= msg.position + after)
                .order_by(col(m.CounselingMessage.position))
            )
            rows = s.exec(q).all()
        return [_message_view(r, msg.conversation_external_id) for r in rows]

    def message_index(self) -> list[tuple[int, int, str, bool]]:
        """(id, conversation id, conversation external id, labelable) of every message in
        conversation order: the light scan the learning loop builds its pool from. Messages
        are only ever added, never changed, so the scan is kept until the count or the
        highest id changes (a 200,000-message scan is 0.4 s; the check a few ms). The list
        is shared: do not modify it."""
        with self.engine.connect() as conn:
            stamp = tuple(raw_rows(conn, "SELECT COUNT(*), MAX(id) FROM messages")[0])
            cached = self._message_index
            if cached is not None and cached[0] == stamp:
                return cached[1]
            sql = (
                "SELECT m.id, m.conversation_id, c.external_id, m.labelable FROM messages m "
                "JOIN conversations c ON c.id = m.conversation_id "
                "ORDER BY m.conversation_id, m.position"
            )
            index = [(a, b, c, bool(d)) for a, b, c, d in raw_rows(conn, sql)]
        self._message_index = (stamp, index)
        return index

    def message_texts(self, message_ids: Sequence[int]) -> dict[int, str]:
        """Message id -> text, for many messages at once."""
        table = SQLModel.metadata.tables["messages"]
        out: dict[int, str] = {}
        ids = list(message_ids)
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 900):
                rows = conn.execute(
                    sa_select(table.c.id, table.c.text).where(
                        table.c.id.in_(ids[start : start + 900])
                    )
                )
                out.update((mid, text) for mid, text in rows)
        return out

    def conversation_messages(self, conversation_id: int) -> list[MessageView]:
        with self.session() as s:
            conv = s.get(m.Conversation, conversation_id)
            if conv is None:
                raise StoreError(f"no conversation with id {conversation_id}")
            rows = s.exec(
                select(m.CounselingMessage)
                .where(m.CounselingMessage.conversation_id == conversation_id)
                .order_by(col(m.CounselingMessage.position))
            ).all()
        return [_message_view(r, conv.external_id) for r in rows]

    def iter_conversations(self, batch: int = 2_000) -> Iterator[tuple[int, str, dict[str, Any]]]:
        """(id, external id, metadata) of every conversation."""
        with self.session() as s:
            result = s.exec(
                select(col(m.Conversation.id), m.Conversation.external_id, m.Conversation.meta)
                .order_by(col(m.Conversation.id))
                .execution_options(yield_per=batch)
            )
            for cid, ext, meta in result:
                assert cid is not None
                yield cid, ext, dict(meta)

    def iter_messages(
        self, *, labelable_only: bool = False, batch: int = 5_000
    ) -> Iterator[MessageView]:
        """Every message, ordered by conversation then position."""
        with self.session() as s:
            q = select(m.CounselingMessage, m.Conversation.external_id).join(m.Conversation)
            if labelable_only:
                q = q.where(m.CounselingMessage.labelable == True)  # noqa: E712
            q = q.order_by(
                col(m.CounselingMessage.conversation_id), col(m.CounselingMessage.position)
            )
            for row in s.exec(q.execution_options(yield_per=batch)):
                yield _message_view(*row)

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
        if kind not in m.EVENT_KINDS:
            raise StoreError(f"event kind must be one of {', '.join(m.EVENT_KINDS)}, got {kind!r}")
        if kind in LABELLING_KINDS or kind == "adjudicate":
            self._check_labels(labels)
        elif labels:
            raise StoreError(f"a {kind} event carries no labels")
        with self.session() as s:
            who = s.exec(select(m.Annotator).where(m.Annotator.name == annotator)).first()
            if who is None:
                raise StoreError(f"unknown annotator {annotator!r}")
            if kind == "adjudicate" and who.role not in DECIDING_ROLES:
                roles = {a.name: a.role for a in s.exec(select(m.Annotator))}
                raise StoreError(role_refusal(annotator, who.role, "adjudicate", roles))
            if s.get(m.CounselingMessage, message_id) is None:
                raise StoreError(f"no message with id {message_id}")
            if kind == "undo":
                target = s.get(m.AnnotationEvent, target_event_id) if target_event_id else None
                if target is None or target.message_id != message_id:
                    raise StoreError("undo must name an event of the same message")
                if target.annotator_id != who.id:
                    raise StoreError("an annotator can only undo their own events")
            assert who.id is not None
            row = m.AnnotationEvent(
                message_id=message_id,
                annotator_id=who.id,
                kind=kind,
                labels=list(labels),
                target_event_id=target_event_id,
                model_version_id=model_version_id,
                accepted_suggestion=accepted_suggestion,
                seconds=seconds,
                note=note,
                reason=reason,
                source=source,
                role=who.role,
            )
            s.add(row)
            if kind in LABELLING_KINDS or kind == "skip":
                s.flush()
                release(s.connection(), message_id, who.id)
            s.commit()
            assert row.id is not None
            return row.id

    def save_label(
        self, message_id: int, annotator: str, kind: str, labels: Sequence[str] = (), **fields: Any
    ) -> Saved:
        """A label (or correction) or skip, the claims, and the next message's view in one
        transaction (see store.saving.save_and_show for `fields`)."""
        from store.saving import save_and_show

        if kind == "label":
            self._check_labels(labels)
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

    def _check_labels(self, labels: Sequence[str]) -> None:
        if not labels:
            raise StoreError("a labelling event needs at least one label")
        if self.codebook_key is None:
            return
        book = self.codebook()
        unknown = [x for x in labels if x not in book.keys()]
        if unknown:
            raise StoreError(
                f"unknown technique {unknown[0]!r} for codebook '{book.key}'"
                f" (known: {', '.join(book.keys())})"
            )
        if len(labels) > 1 and not book.multi_label:
            raise StoreError(f"codebook '{book.key}' takes one label per message")

    def events(self, message_id: int) -> list[EventView]:
        """Every event on a message, oldest first."""
        with self.session() as s:
            rows = s.exec(
                select(m.AnnotationEvent, m.Annotator.name)
                .join(m.Annotator)
                .where(m.AnnotationEvent.message_id == message_id)
                .order_by(col(m.AnnotationEvent.id))
            ).all()
        return [
            EventView(
                id=e.id or 0,
                message_id=e.message_id,
                annotator=name,
                kind=e.kind,
                labels=tuple(e.labels),
                target_event_id=e.target_event_id,
                model_version_id=e.model_version_id,
                accepted_suggestion=e.accepted_suggestion,
                seconds=e.seconds,
                note=e.note,
                reason=e.reason,
                source=e.source,
                created_at=e.created_at.isoformat(),
                role=e.role,
            )
            for e, name in rows
        ]

    def iter_states(self, message_ids: Iterable[int] | None = None) -> Iterator[MessageState]:
        """The derived state of every message that has events (or of `message_ids`)."""
        wanted = set(message_ids) if message_ids is not None else None
        events, annotators = (
            SQLModel.metadata.tables["annotation_events"],
            SQLModel.metadata.tables["annotators"],
        )
        q = (
            sa_select(
                events.c.id,
                events.c.message_id,
                annotators.c.name,
                events.c.kind,
                events.c.labels,
                events.c.target_event_id,
                events.c.model_version_id,
            )
            .join(annotators, annotators.c.id == events.c.annotator_id)
            .order_by(events.c.message_id, events.c.id)
        )
        if wanted is not None and len(wanted) <= 5_000:
            q = q.where(events.c.message_id.in_(wanted))
        with self.engine.connect() as conn:
            current: int | None = None
            bucket: list[EventRow] = []
            for row in conn.execute(q.execution_options(yield_per=EVENT_ROW_BATCH)):
                eid, mid, name, kind, labels, target, model = row
                if wanted is not None and mid not in wanted:
                    continue
                if mid != current:
                    if bucket:
                        yield derive(bucket[0].message_id, bucket)
                    current, bucket = mid, []
                bucket.append(EventRow(eid, mid, name, kind, tuple(labels), target, model))
            if bucket:
                yield derive(bucket[0].message_id, bucket)

    def gold(self, weakest: str = "single") -> dict[int, Gold]:
        """Message id -> resolved gold label, for every message that has one."""
        result: dict[int, Gold] = {}
        for state in self.iter_states():
            g = resolve(state, weakest)
            if g is not None:
                result[state.message_id] = g
        return result

    # -- annotation --------------------------------------------------------------------------

    def queue(self, annotator: str, limit: int = 500) -> list[int]:
        """Message ids for `annotator` to label next, most useful first (see store.queue)."""
        from store.queue import queue

        return queue(self, annotator, limit)

    def claim_next(self, annotator: str, candidates: Sequence[int]) -> int | None:
        """Claim the first of `candidates` this annotator may code now (see store.team)."""
        return claim_next(self, annotator, candidates)

    def release_claims(self, annotator: str) -> int:
        """Release every claim the annotator holds; returns how many."""
        return release_all(self, annotator)

    def suggestion(self, message_id: int) -> Suggestion | None:
        """The model's suggestion for a message (the active model's, else a stale one)."""
        from store.queue import suggestion

        return suggestion(self, message_id)

    def search(self, needle: str, limit: int = 50) -> list[MessageView]:
        """Labelable messages whose text contains `needle` (case-insensitive)."""
        table = SQLModel.metadata.tables["messages"]
        pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self.engine.connect() as conn:
            ids = [
                int(r[0])
                for r in conn.execute(
                    sa_select(table.c.id)
                    .where(table.c.labelable.is_(True))
                    .where(table.c.text.ilike(pattern, escape="\\"))
                    .order_by(table.c.id)
                    .limit(limit)
                )
            ]
        return [self.message(i) for i in ids]

    def current_labels(self, message_id: int, annotator: str) -> tuple[str, ...] | None:
        """This annotator's current labels on a message (None when they have none)."""
        for state in self.iter_states([message_id]):
            return state.coder_labels.get(annotator)
        return None

    def suggestion_acceptance(self, annotator: str | None = None) -> dict[str, int]:
        """Messages coded with a suggestion on screen (`shown`), and how many of them were
        accepted as shown (`accepted`: the current code is the suggestion), for one annotator
        or everyone. The same numbers as the agreement report's expert-vs-model rows."""
        from store.agreement import suggestion_acceptance

        per = suggestion_acceptance(self)
        if annotator is None:
            rows = list(per.values())
        else:
            rows = [per[annotator]] if annotator in per else []
        return {
            "shown": sum(r["shown"] for r in rows),
            "accepted": sum(r["accepted"] for r in rows),
        }

    # -- reports -----------------------------------------------------------------------------

    def agreement(self, *, model: bool = True) -> dict[str, Any]:
        """Kappa per coder pair, alpha overall and per technique, expert vs model."""
        from store.agreement import agreement_report

        return agreement_report(self, model=model)

    def disputes(self, *, include_model: bool = True) -> list[Dispute]:
        """Messages awaiting a lead's decision (see store.agreement.disputes)."""
        from store.agreement import disputes

        return disputes(self, include_model=include_model)

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables."""
        tables = {
            "conversations": m.Conversation,
            "messages": m.CounselingMessage,
            "events": m.AnnotationEvent,
            "annotators": m.Annotator,
            "model_versions": m.ModelVersion,
            "predictions": m.Prediction,
            "rounds": m.Round,
        }
        with self.session() as s:
            out = {
                name: s.exec(select(func.count()).select_from(t)).one()
                for name, t in tables.items()
            }
            out["labelable_messages"] = s.exec(
                select(func.count())
                .select_from(m.CounselingMessage)
                .where(m.CounselingMessage.labelable == True)  # noqa: E712
            ).one()
        return out

    def active_model(self) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.exec(select(m.ModelVersion).where(m.ModelVersion.active == True)).first()  # noqa: E712
        if row is None:
            return None
        return {
            "id": row.id,
            "tag": row.tag,
            "backend": row.backend,
            "encoder": row.encoder,
            "created_at": row.created_at.isoformat(),
            "macro_f1": row.metrics.get("macro_f1"),
        }

    def model_tags(self) -> dict[int, str]:
        """Model version id -> tag."""
        with self.session() as s:
            return {
                mid: tag
                for mid, tag in s.exec(select(m.ModelVersion.id, m.ModelVersion.tag))
                if mid is not None
            }

    def status(self) -> dict[str, Any]:
        """Counts a person wants at a glance: messages, labels per technique and annotator."""
        from store.reports import status_report

        return status_report(self)

    def fingerprint(self) -> dict[str, Any]:
        """Row counts plus a hash of every event and message: equal iff nothing changed."""
        from store.reports import fingerprint

        return fingerprint(self)


def _message_view(row: m.CounselingMessage, conversation_external_id: str) -> MessageView:
    assert row.id is not None
    return MessageView(
        id=row.id,
        external_id=row.external_id,
        conversation_id=row.conversation_id,
        conversation_external_id=conversation_external_id,
        position=row.position,
        speaker=row.speaker,
        text=row.text,
        labelable=row.labelable,
        meta=dict(row.meta),
    )
