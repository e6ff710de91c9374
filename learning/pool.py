"""The one place that maps database message ids to pool indices, labels to label indices,
and decides which conversations are held out for evaluation."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from store import CodebookView, Repository
from store.labels import resolve

UNLABELLED = -1


def held_out(conversation: str, seed: int, share: float) -> bool:
    """Whether a conversation belongs to the evaluation set: a stable hash, so membership
    never changes as labels and conversations are added."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"techne-eval:{seed}:{conversation}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _held_out_mask(conversations: list[str], seed: int, share: float) -> np.ndarray:
    decided: dict[str, bool] = {}
    return np.array(
        [
            decided.setdefault(c, held_out(c, seed, share)) if c not in decided else decided[c]
            for c in conversations
        ],
        dtype=bool,
    )


@dataclass
class Pool:
    """Every labelable message of the store, in conversation order, with what is known of it."""

    labels: list[str]
    multi_label: bool
    message_ids: np.ndarray
    conversations: list[str]
    previous_ids: np.ndarray
    """Id of the turn before each message (any speaker), or -1."""
    y: np.ndarray
    """Label index per message (UNLABELLED when none); for multi-label a 0/1 matrix."""
    labelled: np.ndarray
    skipped: np.ndarray
    held_out: np.ndarray
    al_queried: np.ndarray
    """Messages an active-learning strategy chose in some round."""
    index: dict[int, int] = field(default_factory=dict)
    next_ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Id of the turn after each message (any speaker), or -1."""

    @classmethod
    def build(
        cls, repo: Repository, book: CodebookView, *, seed: int = 0, eval_share: float = 0.2
    ) -> Pool:
        labels = book.keys()
        label_index = {k: i for i, k in enumerate(labels)}
        gold: dict[int, Any] = {}
        skipped_ids: set[int] = set()
        for state in repo.iter_states():
            g = resolve(state, "single")
            if g is not None:
                gold[state.message_id] = g
            elif state.skipped_by and not state.coder_labels:
                skipped_ids.add(state.message_id)
        al_ids: set[int] = set()
        for r in repo.artifacts.rounds():
            eval_picks = set(r.stats.get("eval_queried", []))
            al_ids.update(i for i in r.queried_message_ids if i not in eval_picks)
        ids: list[int] = []
        convs: list[str] = []
        prev: list[int] = []
        nxt: list[int] = []
        last_conv, last_id, last_kept = -1, -1, False
        for mid, cid, conv_ext, labelable in repo.message_index():
            if last_kept and cid == last_conv:
                nxt[-1] = mid
            if labelable:
                ids.append(mid)
                convs.append(conv_ext)
                prev.append(last_id if cid == last_conv else -1)
                nxt.append(-1)
            last_conv, last_id, last_kept = cid, mid, labelable
        n, k = len(ids), len(labels)
        y: np.ndarray
        if book.multi_label:
            y = np.zeros((n, k), dtype=int)
        else:
            y = np.full(n, UNLABELLED, dtype=int)
        labelled = np.zeros(n, dtype=bool)
        for i, mid in enumerate(ids):
            g = gold.get(mid)
            if g is None:
                continue
            known = [label_index[x] for x in g.labels if x in label_index]
            if not known:
                continue
            labelled[i] = True
            if book.multi_label:
                y[i, known] = 1
            else:
                y[i] = known[0]
        pool = cls(
            labels=labels,
            multi_label=book.multi_label,
            message_ids=np.asarray(ids, dtype=np.int64),
            conversations=convs,
            previous_ids=np.asarray(prev, dtype=np.int64),
            y=y,
            labelled=labelled,
            skipped=np.array([mid in skipped_ids for mid in ids], dtype=bool),
            held_out=_held_out_mask(convs, seed, eval_share),
            al_queried=np.array([mid in al_ids for mid in ids], dtype=bool),
            next_ids=np.asarray(nxt, dtype=np.int64),
        )
        pool.index = {int(mid): i for i, mid in enumerate(ids)}
        return pool

    def __len__(self) -> int:
        return len(self.message_ids)

    @property
    def train_indices(self) -> np.ndarray:
        """Labelled messages outside the held-out conversations."""
        return np.flatnonzero(self.labelled & ~self.held_out)

    @property
    def eval_indices(self) -> np.ndarray:
        """Labelled messages of held-out conversations that no strategy chose: unbiased."""
        return np.flatnonzero(self.labelled & self.held_out & ~self.al_queried)

    @property
    def candidate_indices(self) -> np.ndarray:
        """What active learning may query: unlabelled, not skipped, not held out."""
        return np.flatnonzero(~self.labelled & ~self.skipped & ~self.held_out)

    @property
    def eval_candidate_indices(self) -> np.ndarray:
        """Unlabelled messages of held-out conversations (queued at random, never by a strategy)."""
        return np.flatnonzero(~self.labelled & ~self.skipped & self.held_out)

    @property
    def unlabelled_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.labelled)
