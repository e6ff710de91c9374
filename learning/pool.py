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
        # Arrays over the whole store first (pools run to 100,000s of messages): the turn
        # before each message is the previous row when it is in the same conversation.
        rows = repo.message_index()
        every = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        conv_of = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
        keep = np.flatnonzero(np.fromiter((r[3] for r in rows), dtype=bool, count=len(rows)))
        before = np.full(len(rows), -1, dtype=np.int64)
        after = np.full(len(rows), -1, dtype=np.int64)
        if len(rows):
            same = conv_of[1:] == conv_of[:-1]
            before[1:][same] = every[:-1][same]
            after[:-1][same] = every[1:][same]
        ids, prev = every[keep], before[keep]
        convs = [rows[i][2] for i in keep.tolist()]
        n, k = len(ids), len(labels)
        index = dict(zip(ids.tolist(), range(n), strict=True))
        y: np.ndarray
        if book.multi_label:
            y = np.zeros((n, k), dtype=int)
        else:
            y = np.full(n, UNLABELLED, dtype=int)
        labelled = np.zeros(n, dtype=bool)
        for mid, g in gold.items():
            i = index.get(mid)
            known = [label_index[x] for x in g.labels if x in label_index]
            if i is None or not known:
                continue
            labelled[i] = True
            if book.multi_label:
                y[i, known] = 1
            else:
                y[i] = known[0]
        conv_ids, first = np.unique(conv_of[keep], return_index=True)
        held = np.array([held_out(convs[j], seed, eval_share) for j in first], dtype=bool)
        pool = cls(
            labels=labels,
            multi_label=book.multi_label,
            message_ids=ids,
            conversations=convs,
            previous_ids=prev,
            y=y,
            labelled=labelled,
            skipped=np.isin(ids, np.fromiter(skipped_ids, dtype=np.int64)),
            held_out=held[np.searchsorted(conv_ids, conv_of[keep])],
            al_queried=np.isin(ids, np.fromiter(al_ids, dtype=np.int64)),
            next_ids=after[keep],
        )
        pool.index = index
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
