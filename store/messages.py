"""Conversations and their messages as read: one message, its context, scans and search."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import or_
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from store import models as m
from store.db import IN_CHUNK, in_chunks, raw_rows
from store.domain import MessageView
from store.errors import StoreError

IndexRow = tuple[int, int, str, bool]
"""(id, conversation id, conversation external id, labelable)."""


def message(engine: Engine, ref: int | str) -> MessageView:
    """A message by its numeric id (an int), or by its external id (a string; digits that
    are no external id are taken as the numeric id)."""
    where: Any
    if not isinstance(ref, str):  # an int, or a numpy integer from a pool
        ref = int(ref)
        where = m.CounselingMessage.id == ref
    elif ref.isdigit():
        where = or_(
            col(m.CounselingMessage.external_id) == ref, col(m.CounselingMessage.id) == int(ref)
        )
    else:
        where = m.CounselingMessage.external_id == ref
    query = select(m.CounselingMessage, m.Conversation.external_id).join(m.Conversation)
    with Session(engine) as s:
        rows = s.exec(query.where(where)).all()
    if not rows:
        if not isinstance(ref, str) or ref.isdigit():
            raise StoreError(f"no message with id {int(ref)}")
        raise StoreError(f"no message with id {ref!r}")
    if isinstance(ref, str):
        # An external id wins over a numeric id that happens to equal it.
        rows = sorted(rows, key=lambda r: r[0].external_id != ref)
    return message_view(*rows[0])


def context(engine: Engine, message_id: int, before: int, after: int = 0) -> list[MessageView]:
    """Up to `before` previous and `after` following turns of the message's conversation,
    the message itself included, in order."""
    msg = message(engine, message_id)
    with Session(engine) as s:
        q = (
            select(m.CounselingMessage)
            .where(m.CounselingMessage.conversation_id == msg.conversation_id)
            .where(m.CounselingMessage.position >= msg.position - before)
            .where(m.CounselingMessage.position <= msg.position + after)
            .order_by(col(m.CounselingMessage.position))
        )
        rows = s.exec(q).all()
    return [message_view(r, msg.conversation_external_id) for r in rows]


class MessageIndex:
    """(id, conversation id, conversation external id, labelable) of every message in
    conversation order: the light scan the learning loop builds its pool from. Messages
    are only ever added, never changed, so the scan is kept until the count or the
    highest id changes (a 200,000-message scan is 0.4 s; the check a few ms)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cached: tuple[tuple[Any, ...], list[IndexRow]] | None = None

    def rows(self) -> list[IndexRow]:
        """The index, read again only when messages were added. The list is shared: do not
        modify it."""
        with self.engine.connect() as conn:
            stamp = tuple(raw_rows(conn, "SELECT COUNT(*), MAX(id) FROM messages")[0])
            cached = self._cached
            if cached is not None and cached[0] == stamp:
                return cached[1]
            sql = (
                "SELECT m.id, m.conversation_id, c.external_id, m.labelable FROM messages m "
                "JOIN conversations c ON c.id = m.conversation_id "
                "ORDER BY m.conversation_id, m.position"
            )
            index = [(a, b, c, bool(d)) for a, b, c, d in raw_rows(conn, sql)]
        self._cached = (stamp, index)
        return index


def message_texts(engine: Engine, message_ids: Sequence[int]) -> dict[int, str]:
    """Message id -> text, for many messages at once."""
    table = SQLModel.metadata.tables["messages"]
    out: dict[int, str] = {}
    with engine.connect() as conn:
        for chunk in in_chunks(message_ids, IN_CHUNK):
            rows = conn.execute(sa_select(table.c.id, table.c.text).where(table.c.id.in_(chunk)))
            out.update((mid, text) for mid, text in rows)
    return out


def conversation_messages(engine: Engine, conversation_id: int) -> list[MessageView]:
    """Every message of a conversation, in order."""
    with Session(engine) as s:
        conv = s.get(m.Conversation, conversation_id)
        if conv is None:
            raise StoreError(f"no conversation with id {conversation_id}")
        rows = s.exec(
            select(m.CounselingMessage)
            .where(m.CounselingMessage.conversation_id == conversation_id)
            .order_by(col(m.CounselingMessage.position))
        ).all()
        external_id = conv.external_id
    return [message_view(r, external_id) for r in rows]


def iter_conversations(
    engine: Engine, batch: int = 2_000
) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(id, external id, metadata) of every conversation."""
    with Session(engine) as s:
        result = s.exec(
            select(col(m.Conversation.id), m.Conversation.external_id, m.Conversation.meta)
            .order_by(col(m.Conversation.id))
            .execution_options(yield_per=batch)
        )
        for cid, ext, meta in result:
            assert cid is not None
            yield cid, ext, dict(meta)


def iter_messages(
    engine: Engine, *, labelable_only: bool = False, batch: int = 5_000
) -> Iterator[MessageView]:
    """Every message, ordered by conversation then position."""
    with Session(engine) as s:
        q = select(m.CounselingMessage, m.Conversation.external_id).join(m.Conversation)
        if labelable_only:
            q = q.where(m.CounselingMessage.labelable == True)  # noqa: E712
        q = q.order_by(col(m.CounselingMessage.conversation_id), col(m.CounselingMessage.position))
        for row in s.exec(q.execution_options(yield_per=batch)):
            yield message_view(*row)


def search(engine: Engine, needle: str, limit: int = 50) -> list[MessageView]:
    """Labelable messages whose text contains `needle` (case-insensitive)."""
    table = SQLModel.metadata.tables["messages"]
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    with engine.connect() as conn:
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
    return [message(engine, i) for i in ids]


def message_view(row: m.CounselingMessage, conversation_external_id: str) -> MessageView:
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
