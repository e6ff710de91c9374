"""Conversation-grouped splits: no conversation ever lands in two splits."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence


def grouped_split(
    group_sizes: Mapping[str, int], shares: Sequence[float], names: Sequence[str], seed: int
) -> dict[str, str]:
    """Assign each group (conversation) to a split so message counts follow `shares`.

    Groups are shuffled with `seed` and filled into the splits in order; the same inputs
    always give the same assignment.
    """
    if len(shares) != len(names):
        raise ValueError("one share per split name")
    if any(s < 0 for s in shares) or abs(sum(shares) - 1.0) > 1e-6:
        raise ValueError(f"split shares must be non-negative and sum to 1, got {list(shares)}")
    groups = sorted(group_sizes)
    random.Random(seed).shuffle(groups)
    total = sum(group_sizes.values())
    bounds = []
    acc = 0.0
    for share in shares:
        acc += share
        bounds.append(acc * total)
    out: dict[str, str] = {}
    filled = 0
    index = 0
    for group in groups:
        while index < len(names) - 1 and filled >= bounds[index] - 1e-9:
            index += 1
        out[group] = names[index]
        filled += group_sizes[group]
    return out
