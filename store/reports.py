"""Reports over a whole store: status at a glance, and a fingerprint that changes iff data does."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from sqlmodel import col, select

from store import models as m
from store.labels import resolve

if TYPE_CHECKING:
    from store.repository import Repository


def status_report(repo: Repository) -> dict[str, Any]:
    """Counts a person wants at a glance: messages, labels per technique and annotator."""
    counts = repo.counts()
    per_technique: Counter[str] = Counter()
    per_source: Counter[str] = Counter()
    per_annotator: Counter[str] = Counter()
    skipped = flagged = labelled = disputed = 0
    for state in repo.iter_states():
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
    book = repo.codebook() if repo.codebook_key else None
    order = book.keys() if book else sorted(per_technique)
    roles = repo.annotators()
    return {
        "codebook": book.key if book else None,
        "messages": counts["messages"],
        "labelable_messages": counts["labelable_messages"],
        "conversations": counts["conversations"],
        "labelled": labelled,
        "unlabelled": counts["labelable_messages"] - labelled,
        "labelled_per_technique": {k: per_technique.get(k, 0) for k in order},
        "gold_sources": dict(per_source),
        "per_annotator": {
            name: {"role": roles.get(name, "expert"), "labelled": per_annotator[name]}
            for name in sorted(per_annotator)
        },
        "skipped": skipped,
        "flagged": flagged,
        "disputed": disputed,
        "events": counts["events"],
        "rounds": counts["rounds"],
        "model_versions": counts["model_versions"],
        "active_model": repo.active_model(),
    }


def fingerprint(repo: Repository) -> dict[str, Any]:
    """Row counts plus a hash of every event and message: equal iff nothing changed."""
    digest = hashlib.sha256()
    with repo.session() as s:
        for e in s.exec(select(m.AnnotationEvent).order_by(col(m.AnnotationEvent.id))):
            digest.update(json.dumps(e.model_dump(mode="json"), sort_keys=True).encode())
        events_hash = digest.hexdigest()
        digest = hashlib.sha256()
        for msg in s.exec(select(m.CounselingMessage).order_by(col(m.CounselingMessage.id))):
            digest.update(json.dumps(msg.model_dump(mode="json"), sort_keys=True).encode())
    return {
        "counts": repo.counts(),
        "events_sha256": events_hash,
        "messages_sha256": digest.hexdigest(),
    }
