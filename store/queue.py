"""What an annotator sees next, and the model's suggestion for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from store.db import raw_rows

if TYPE_CHECKING:
    from store.repository import Repository


@dataclass(frozen=True)
class Suggestion:
    """A stored prediction for one message."""

    probabilities: dict[str, float]
    top_label: str
    model_version_id: int
    model_tag: str
    stale: bool
    """True when it comes from an older model than the active one."""


def open_for(repo: Repository, annotator: str) -> set[int]:
    """Labelable messages that still need a coder (one, or more for overlap items) and that
    this annotator has neither coded nor skipped."""
    closed: set[int] = set()
    needed = repo.team.coders_needed
    for state in repo.iter_states():
        if (
            state.adjudicated is not None
            or annotator in state.coder_labels
            or annotator in state.skipped_by
            or len(state.coder_labels) >= needed(state.message_id)
        ):
            closed.add(state.message_id)
    return {mid for mid, _, _, labelable in repo.message_index() if labelable} - closed


def queue(repo: Repository, annotator: str, limit: int = 500) -> list[int]:
    """Message ids in the order to label them: the latest round's batch first (in the order
    its strategy ranked them), then the rest by the active model's uncertainty, then in
    conversation order when there is no model yet."""
    candidates = open_for(repo, annotator)
    order: list[int] = []
    seen: set[int] = set()

    def take(mid: int) -> None:
        if mid in candidates and mid not in seen and len(order) < limit:
            order.append(mid)
            seen.add(mid)

    latest = repo.artifacts.latest_round()
    if latest is not None:
        for mid in latest.queried_message_ids:
            take(mid)
    active = repo.artifacts.active()
    if active is not None and len(order) < limit:
        with repo.engine.connect() as conn:
            rows = raw_rows(
                conn,
                "SELECT message_id FROM predictions WHERE model_version_id = ? "
                "ORDER BY uncertainty DESC, message_id",
                (active.id,),
            )
        for (mid,) in rows:
            take(int(mid))
            if len(order) >= limit:
                break
    if len(order) < limit:
        for mid, _, _, labelable in repo.message_index():
            if labelable:
                take(mid)
            if len(order) >= limit:
                break
    return order


def suggestion(repo: Repository, message_id: int) -> Suggestion | None:
    """The active model's prediction for a message, else the newest older one (stale)."""
    with repo.engine.connect() as conn:
        rows = raw_rows(
            conn,
            "SELECT p.model_version_id, p.probabilities, p.top_label, v.tag, v.active "
            "FROM predictions p JOIN model_versions v ON v.id = p.model_version_id "
            "WHERE p.message_id = ? ORDER BY v.active DESC, v.id DESC LIMIT 1",
            (message_id,),
        )
    if not rows:
        return None
    version_id, probabilities, top, tag, active = rows[0]
    if isinstance(probabilities, str):
        import json

        probabilities = json.loads(probabilities)
    return Suggestion(dict(probabilities), str(top), int(version_id), str(tag), not bool(active))
