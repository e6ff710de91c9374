"""Tokenization and batching for fine-tuning: unpadded ids with the context as second
segment, batches padded only to their own longest row, length-bucketed training order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from learning.inputs import ModelInput, context_segment, context_sides

if TYPE_CHECKING:
    from learning.settings import FinetuneSettings


def encode(tokenizer: Any, inputs: Sequence[ModelInput], settings: FinetuneSettings) -> list:
    """Token ids per input, unpadded. The message is the first segment; the context (if any)
    the second, truncated with ``only_second``. A message that leaves no room for context
    is encoded alone (truncated) rather than losing its own tokens to the context."""
    if settings.context_mode == "around":
        return _encode_around(tokenizer, inputs, settings)
    n, limit = len(inputs), settings.max_length
    seconds = [context_segment(x, settings.context_mode, settings.context_turns) for x in inputs]
    texts = [x.text for x in inputs]
    paired = [i for i in range(n) if seconds[i] is not None]
    if paired:
        own = tokenizer([texts[i] for i in paired], add_special_tokens=False)["input_ids"]
        # [CLS] message [SEP] context [SEP]: at least one context token must fit
        paired = [i for i, ids in zip(paired, own, strict=True) if len(ids) + 4 <= limit]
    ids: list = [None] * n
    if paired:
        enc = tokenizer(
            [texts[i] for i in paired],
            [seconds[i] for i in paired],
            truncation="only_second",
            max_length=limit,
        )["input_ids"]
        for i, row in zip(paired, enc, strict=True):
            ids[i] = row
    alone = [i for i in range(n) if ids[i] is None]
    if alone:
        enc = tokenizer([texts[i] for i in alone], truncation=True, max_length=limit)["input_ids"]
        for i, row in zip(alone, enc, strict=True):
            ids[i] = row
    return ids


def _encode_around(
    tokenizer: Any, inputs: Sequence[ModelInput], settings: FinetuneSettings
) -> list:
    """``[CLS] message [SEP] before [SEP] after [SEP]``, unpadded. The turns before and after
    share the room the message leaves in ``max_length``: each side gets at least half of it
    when the other needs it, and each is cut at its far end (the nearest turns are kept).
    The middle ``[SEP]`` is always there, so a side that is empty (the conversation starts
    or ends) is never mistaken for the other. A message that leaves no room is encoded
    alone (truncated)."""
    limit = settings.max_length
    cls = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    sep = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    sides = [context_sides(x, "around", settings.context_turns) or ("", "") for x in inputs]

    def tokens(texts: list[str]) -> list[list[int]]:
        return tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []

    own = tokens([x.text for x in inputs])
    before, after = tokens([b for b, _ in sides]), tokens([a for _, a in sides])
    ids: list = []
    for text, m, b, a in zip((x.text for x in inputs), own, before, after, strict=True):
        room = limit - len(m) - 4  # [CLS] message [SEP] before [SEP] after [SEP]
        if room < 1:
            ids.append(tokenizer(text, truncation=True, max_length=limit)["input_ids"])
            continue
        keep_b = min(len(b), max(room // 2, room - len(a)))
        keep_a = min(len(a), room - keep_b)
        ids.append([cls, *m, sep, *b[len(b) - keep_b :], sep, *a[:keep_a], sep])
    return ids


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """(input_ids, attention_mask) padded to the longest row of this batch only."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.as_tensor(r, dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def segment_ids(input_ids: Any, mask: Any, sep_id: int) -> Any:
    """BERT token_type_ids recovered from the ids: 1 after the first [SEP], else 0."""
    import torch

    is_sep = (input_ids == sep_id).long()
    return ((torch.cumsum(is_sep, dim=1) - is_sep) > 0).long() * mask


def trimmed_collate(
    batch: Sequence[tuple],
    pad_id: int,
    multi_label: bool,
    num_classes: int,
    use_sample_weights: bool = False,
) -> tuple:
    """small-text collate (ids, mask, labels, weights) with batches trimmed to their longest
    sequence. Items may be unpadded (ours) or padded (any TransformersDataset): the real
    length is read from each item's attention mask."""
    import torch

    rows = [e[0].view(-1)[: int(e[1].sum())].tolist() for e in batch]
    ids, mask = pad_batch(rows, pad_id)
    if multi_label:
        label = torch.zeros((len(batch), num_classes), dtype=torch.float)
        for i, e in enumerate(batch):
            label[i, list(e[2])] = 1.0
    else:
        label = torch.tensor([int(e[2]) for e in batch], dtype=torch.long)
    if use_sample_weights:
        weights = torch.tensor([float(e[-1]) for e in batch])
    else:
        weights = torch.ones(len(batch))
    return ids, mask, label, weights


def length_bucketed_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 50
) -> list[np.ndarray]:
    """Training batches of similar lengths: shuffle, sort each pool of `pool` batches by
    length, cut into batches, shuffle the batch order. Same count as plain batching."""
    order = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    for start in range(0, len(order), batch_size * pool):
        chunk = order[start : start + batch_size * pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]
