"""Team assignment: the overlap policy and claims that hold under concurrency.

A message needs one coder, or `overlap_coders` independent coders when it is an overlap
item. An annotator takes a message by *claiming* it; claims are granted inside one
serialised transaction (SQLite `BEGIN IMMEDIATE`, a PostgreSQL transaction-level advisory
lock), so two sessions never get the same slot. Claims expire after `claim_minutes`: a
crashed session's items come back by themselves. Saving or skipping releases the claim in
the transaction that writes the event.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Engine

from store.db import driver_sql, raw_rows
from store.errors import WorkspaceError
from store.labels import EventRow, MessageState, derive

DECIDING_ROLES = ("lead", "maintainer")
"""Roles that adjudicate. The creator of a workspace is its maintainer."""


def role_refusal(name: str, role: str | None, action: str, roles: dict[str, str]) -> str:
    """Why `name` may not `action` (e.g. "adjudicate"), and how roles are given: one line for
    the CLI and the app alike. `roles` is every annotator's role (to name the maintainers)."""
    maintainers = sorted(n for n, r in roles.items() if r == "maintainer")
    who = f" ({', '.join(maintainers)})" if maintainers else ""
    article = "an" if (role or "expert")[0] in "aeiou" else "a"
    return (
        f"{name} is {article} {role or 'expert'}: only leads and maintainers {action}. "
        f"A maintainer{who} gives the role with `techne annotators add {name} --role lead`."
    )


GOLDEN = 0.6180339887498949
ADVISORY_LOCK_KEY = 7_402_211
"""PostgreSQL advisory lock that serialises claim transactions (any constant will do)."""
SCAN = 50
"""Candidates examined per query while looking for one to claim."""


@dataclass(frozen=True)
class TeamPolicy:
    """How many coders a message needs and how long a claim lasts ([team] in techne.toml)."""

    overlap: float = 0.0
    """Share of messages coded independently by `overlap_coders` experts."""
    overlap_coders: int = 2
    claim_minutes: float = 15.0
    seed: int = 0

    @classmethod
    def from_section(cls, section: dict[str, Any], where: str = "[team]") -> TeamPolicy:
        known = {"overlap", "overlap_coders", "claim_minutes", "seed"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise WorkspaceError(
                f"{where}: unknown setting {unknown[0]!r} (known: {sorted(known)})"
            )
        try:
            policy = cls(
                overlap=float(section.get("overlap", 0.0)),
                overlap_coders=int(section.get("overlap_coders", 2)),
                claim_minutes=float(section.get("claim_minutes", 15.0)),
                seed=int(section.get("seed", 0)),
            )
        except (TypeError, ValueError) as exc:
            raise WorkspaceError(f"{where}: {exc}") from exc
        if not 0.0 <= policy.overlap <= 1.0:
            raise WorkspaceError(f"{where}: overlap must be in [0, 1], got {policy.overlap}")
        if policy.overlap_coders < 2:
            raise WorkspaceError(f"{where}: overlap_coders must be at least 2")
        if policy.claim_minutes <= 0:
            raise WorkspaceError(f"{where}: claim_minutes must be positive")
        return policy

    def is_overlap(self, message_id: int) -> bool:
        """Stable per message: the golden-ratio sequence spreads the share evenly over ids."""
        return ((message_id + self.seed) * GOLDEN) % 1.0 < self.overlap

    def coders_needed(self, message_id: int) -> int:
        return self.overlap_coders if self.is_overlap(message_id) else 1


@contextmanager
def serialised(engine: Engine) -> Iterator[Connection]:
    """A transaction that no other claim transaction runs beside."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def annotator_id(conn: Connection, name: str) -> int:
    rows = raw_rows(conn, "SELECT id FROM annotators WHERE name = ?", (name,))
    if not rows:
        from store.errors import StoreError

        raise StoreError(f"unknown annotator {name!r}")
    return int(rows[0][0])


def states_by_id(conn: Connection, message_ids: Sequence[int]) -> dict[int, MessageState]:
    """Derived states keyed by message, coders named by annotator *id* (as strings)."""
    if not message_ids:
        return {}
    marks = ", ".join("?" for _ in message_ids)
    rows = raw_rows(
        conn,
        "SELECT id, message_id, annotator_id, kind, labels, target_event_id, model_version_id "
        f"FROM annotation_events WHERE message_id IN ({marks}) ORDER BY message_id, id",
        tuple(message_ids),
    )
    grouped: dict[int, list[EventRow]] = {}
    for eid, mid, who, kind, labels, target, model in rows:
        if isinstance(labels, str):
            import json

            labels = json.loads(labels)
        grouped.setdefault(mid, []).append(
            EventRow(eid, mid, str(who), kind, tuple(labels), target, model)
        )
    return {mid: derive(mid, events) for mid, events in grouped.items()}


def claim_next(
    engine: Engine,
    policy: TeamPolicy,
    annotator: str,
    candidates: Sequence[int],
    now: float | None = None,
) -> int | None:
    """Claim the first of `candidates` (in order) this annotator may code now; None if none.

    A message is claimable when the annotator has neither coded nor skipped it, it is not
    adjudicated, and its coders plus other live claims are fewer than it needs. An
    annotator's own live claim is renewed and returned.
    """
    with serialised(engine) as conn:
        return claim_first(conn, policy, annotator_id(conn, annotator), candidates, now)


def claim_first(
    conn: Connection,
    policy: TeamPolicy,
    me: int,
    candidates: Sequence[int],
    now: float | None = None,
) -> int | None:
    """`claim_next` inside the caller's serialised transaction, for annotator id `me`."""
    now = time.time() if now is None else now
    expires = now + policy.claim_minutes * 60
    conn.exec_driver_sql(driver_sql(conn, "DELETE FROM claims WHERE expires_at < ?"), (now,))
    for start in range(0, len(candidates), SCAN):
        chunk = list(candidates[start : start + SCAN])
        marks = ", ".join("?" for _ in chunk)
        holders: dict[int, set[int]] = {}
        for mid, who in raw_rows(
            conn,
            f"SELECT message_id, annotator_id FROM claims WHERE message_id IN ({marks})",
            tuple(chunk),
        ):
            holders.setdefault(int(mid), set()).add(int(who))
        states = states_by_id(conn, chunk)
        for mid in chunk:
            held = holders.get(mid, set())
            if me in held:
                conn.exec_driver_sql(
                    driver_sql(
                        conn,
                        "UPDATE claims SET expires_at = ? "
                        "WHERE message_id = ? AND annotator_id = ?",
                    ),
                    (expires, mid, me),
                )
                return mid
            state = states.get(mid)
            coders = set(state.coder_labels) if state else set()
            if state is not None and (
                str(me) in coders or str(me) in state.skipped_by or state.adjudicated is not None
            ):
                continue
            taken = len(coders | {str(h) for h in held})
            if taken < policy.coders_needed(mid):
                conn.exec_driver_sql(
                    driver_sql(
                        conn,
                        "INSERT INTO claims (message_id, annotator_id, claimed_at, expires_at)"
                        " VALUES (?, ?, ?, ?)",
                    ),
                    (mid, me, now, expires),
                )
                return mid
    return None


def release(conn: Connection, message_id: int, who: int) -> None:
    """Drop an annotator's claim on a message (inside the caller's transaction)."""
    conn.exec_driver_sql(
        driver_sql(conn, "DELETE FROM claims WHERE message_id = ? AND annotator_id = ?"),
        (message_id, who),
    )


def release_all(engine: Engine, annotator: str) -> int:
    """Drop every claim an annotator holds (a session that ends cleanly)."""
    with engine.begin() as conn:
        rows = raw_rows(conn, "SELECT id FROM annotators WHERE name = ?", (annotator,))
        if not rows:
            return 0
        result = conn.exec_driver_sql(
            driver_sql(conn, "DELETE FROM claims WHERE annotator_id = ?"), (int(rows[0][0]),)
        )
        return int(result.rowcount or 0)


def live_claims(engine: Engine, now: float | None = None) -> list[tuple[int, str, float]]:
    """(message id, annotator, expires at) of every unexpired claim."""
    now = time.time() if now is None else now
    with engine.connect() as conn:
        rows = raw_rows(
            conn,
            "SELECT c.message_id, a.name, c.expires_at FROM claims c "
            "JOIN annotators a ON a.id = c.annotator_id WHERE c.expires_at >= ? "
            "ORDER BY c.message_id",
            (now,),
        )
    return [(int(mid), str(name), float(exp)) for mid, name, exp in rows]
