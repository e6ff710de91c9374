"""What an annotator sees next, and the model's suggestion for it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the interface imports Suggestion: this module loads without SQLAlchemy
    from sqlalchemy.engine import Engine

    from store.artifacts import Artifacts
    from store.messages import IndexRow
    from store.team import TeamPolicy


@dataclass(frozen=True)
class Suggestion:
    """A stored prediction for one message."""

    probabilities: dict[str, float]
    top_label: str
    model_version_id: int
    model_tag: str
    stale: bool
    """True when it comes from an older model than the active one."""


def open_for(
    engine: Engine, index: Sequence[IndexRow], policy: TeamPolicy, annotator: str
) -> set[int]:
    """Labelable messages of `index` (store.messages.MessageIndex) that still need a coder
    (one, or more for overlap items) and that this annotator has neither coded nor skipped."""
    from store.events import iter_states

    closed: set[int] = set()
    needed = policy.coders_needed
    for state in iter_states(engine):
        if (
            state.adjudicated is not None
            or annotator in state.coder_labels
            or annotator in state.skipped_by
            or len(state.coder_labels) >= needed(state.message_id)
        ):
            closed.add(state.message_id)
    return {mid for mid, _, _, labelable in index if labelable} - closed


def queue(
    engine: Engine,
    artifacts: Artifacts,
    index: Sequence[IndexRow],
    policy: TeamPolicy,
    annotator: str,
    limit: int = 500,
) -> list[int]:
    """Message ids in the order to label them: the latest round's batch first (in the order
    its strategy ranked them), then the rest by the active model's uncertainty, then in
    conversation order when there is no model yet."""
    candidates = open_for(engine, index, policy, annotator)
    order: list[int] = []
    seen: set[int] = set()

    def take(mid: int) -> None:
        if mid in candidates and mid not in seen and len(order) < limit:
            order.append(mid)
            seen.add(mid)

    latest = artifacts.latest_round()
    if latest is not None:
        for mid in latest.queried_message_ids:
            take(mid)
    active = artifacts.active()
    if active is not None and len(order) < limit:
        for mid in artifacts.queue_order(active.id):
            take(mid)
            if len(order) >= limit:
                break
    if len(order) < limit:
        for mid, _, _, labelable in index:
            if labelable:
                take(mid)
            if len(order) >= limit:
                break
    return order


def suggestion(artifacts: Artifacts, message_id: int) -> Suggestion | None:
    """The active model's prediction for a message, else the newest older one (stale)."""
    versions = sorted(artifacts.versions(), key=lambda v: (not v.active, -v.id))
    for version in versions:
        row = artifacts.prediction(version.id, message_id)
        if row is not None:
            return Suggestion(
                dict(row.probabilities), row.top_label, version.id, version.tag, not version.active
            )
    return None
