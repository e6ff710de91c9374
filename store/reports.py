"""Reports over a whole store: status at a glance, and a fingerprint that changes iff data does."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from store import models as m
from store.annotators import annotators
from store.domain import CodebookView
from store.events import iter_states
from store.labels import resolve

if TYPE_CHECKING:
    from store.artifacts import Artifacts


def counts(engine: Engine) -> dict[str, int]:
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
    with Session(engine) as s:
        out = {
            name: s.exec(select(func.count()).select_from(t)).one() for name, t in tables.items()
        }
        out["labelable_messages"] = s.exec(
            select(func.count())
            .select_from(m.CounselingMessage)
            .where(m.CounselingMessage.labelable == True)  # noqa: E712
        ).one()
    return out


def model_tags(engine: Engine) -> dict[int, str]:
    """Model version id -> tag."""
    with Session(engine) as s:
        return {
            mid: tag
            for mid, tag in s.exec(select(m.ModelVersion.id, m.ModelVersion.tag))
            if mid is not None
        }


def status_report(
    engine: Engine, artifacts: Artifacts, book: CodebookView | None
) -> dict[str, Any]:
    """Counts a person wants at a glance: messages, labels per technique and annotator, and
    the active model (`book`: the workspace's codebook, None when it has none)."""
    numbers = counts(engine)
    per_technique: Counter[str] = Counter()
    per_source: Counter[str] = Counter()
    per_annotator: Counter[str] = Counter()
    skipped = flagged = labelled = disputed = 0
    for state in iter_states(engine):
        for name in state.coder_labels:
            per_annotator[name] += 1
        skipped += bool(state.skipped_by and not state.coder_labels)
        flagged += bool(state.flags)
        g = resolve(state, "single")
        if g is None:
            disputed += len(state.coder_labels) > 1
            continue
        labelled += 1
        per_source[g.source] += 1
        for label in g.labels:
            per_technique[label] += 1
    order = book.keys() if book else sorted(per_technique)
    roles = annotators(engine)
    active = artifacts.active()
    return {
        "codebook": book.key if book else None,
        "messages": numbers["messages"],
        "labelable_messages": numbers["labelable_messages"],
        "conversations": numbers["conversations"],
        "labelled": labelled,
        "unlabelled": numbers["labelable_messages"] - labelled,
        "labelled_per_technique": {k: per_technique.get(k, 0) for k in order},
        "gold_sources": dict(per_source),
        "per_annotator": {
            name: {"role": roles.get(name, "expert"), "labelled": per_annotator[name]}
            for name in sorted(per_annotator)
        },
        "skipped": skipped,
        "flagged": flagged,
        "disputed": disputed,
        "events": numbers["events"],
        "rounds": numbers["rounds"],
        "model_versions": numbers["model_versions"],
        "active_model": None
        if active is None
        else {
            "id": active.id,
            "tag": active.tag,
            "backend": active.backend,
            "encoder": active.encoder,
            "created_at": active.created_at,
            "macro_f1": active.metrics.get("macro_f1"),
        },
    }


def fingerprint(engine: Engine) -> dict[str, Any]:
    """Row counts plus a hash of every event and message: equal iff nothing changed."""
    digest = hashlib.sha256()
    with Session(engine) as s:
        for e in s.exec(select(m.AnnotationEvent).order_by(col(m.AnnotationEvent.id))):
            digest.update(json.dumps(e.model_dump(mode="json"), sort_keys=True).encode())
        events_hash = digest.hexdigest()
        digest = hashlib.sha256()
        for msg in s.exec(select(m.CounselingMessage).order_by(col(m.CounselingMessage.id))):
            digest.update(json.dumps(msg.model_dump(mode="json"), sort_keys=True).encode())
    return {
        "counts": counts(engine),
        "events_sha256": events_hash,
        "messages_sha256": digest.hexdigest(),
    }
