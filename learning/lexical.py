"""Lexical features for the embed backend: hashed word and character n-grams of a
message's text, and a linear head on them whose logits add to the embedding head's.

Counseling codes are partly lexical (question forms, "it sounds like", "you feel"), which
frozen sentence vectors blur. Hashing needs no vocabulary, so a message's row never
changes and can be cached; the vocabulary (n-grams seen in two or more labelled messages)
and the idf weights are fitted with the head each round and saved with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TOKENS = r"(?u)\b\w+\b|[?!.,]"
"""Words (one letter too: "I", "a") and punctuation: a question mark is a strong cue."""
LEXICAL_C = 3.0
"""Inverse regularisation of the lexical head (chosen by grouped 5-fold CV on AnnoMI's
training side, bench/al_annomi.py)."""


@dataclass(frozen=True)
class LexicalSpec:
    """How texts become hashed n-gram counts: word n-grams (words and the punctuation
    marks ? ! . , as tokens) and optionally character n-grams within word boundaries, each
    in its own block of 2**bits columns, counts already sublinear (1 + log count).

    The default was chosen by grouped 5-fold CV on AnnoMI's training side (macro-F1 of
    the summed heads): word 1-2-grams 0.734, with character 1-4-grams 0.743, word
    1-2-grams with punctuation 0.749, word 1-3-grams with punctuation 0.753 (embedding
    head alone 0.694). Character n-grams cost 13x the time and 8x the memory."""

    word_ngrams: tuple[int, int] = (1, 3)
    char_ngrams: tuple[int, int] | None = None
    bits: int = 20

    @property
    def blocks(self) -> list[tuple[int, int]]:
        """Column ranges of the blocks (word, then characters)."""
        width = 2**self.bits
        count = 2 if self.char_ngrams else 1
        return [(b * width, (b + 1) * width) for b in range(count)]

    @property
    def width(self) -> int:
        return self.blocks[-1][1]

    def transform(self, texts: Sequence[str]) -> Any:
        """(n, width) float32 CSR matrix of sublinear n-gram counts."""
        from scipy import sparse
        from sklearn.feature_extraction.text import HashingVectorizer

        common = dict(n_features=2**self.bits, alternate_sign=False, norm=None, dtype=np.float32)
        words = HashingVectorizer(ngram_range=self.word_ngrams, token_pattern=TOKENS, **common)
        parts = [words.transform(texts)]
        if self.char_ngrams:
            char = HashingVectorizer(analyzer="char_wb", ngram_range=self.char_ngrams, **common)
            parts.append(char.transform(texts))
        out = sparse.hstack(parts, format="csr", dtype=np.float32)
        out.data = 1.0 + np.log(out.data)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "word_ngrams": list(self.word_ngrams),
            "char_ngrams": list(self.char_ngrams) if self.char_ngrams else None,
            "bits": self.bits,
        }

    @classmethod
    def from_dict(cls, meta: dict[str, Any]) -> LexicalSpec:
        char = meta.get("char_ngrams")
        return cls(tuple(meta["word_ngrams"]), tuple(char) if char else None, int(meta["bits"]))


class LexicalHead:
    """Balanced logistic regression on tf-idf of the n-grams seen in at least `min_df`
    training messages, each block l2-normalised (scikit-learn's TfidfVectorizer with
    sublinear tf and smooth idf, on hashed columns)."""

    def __init__(self, spec: LexicalSpec, *, c: float = LEXICAL_C, min_df: int = 2) -> None:
        self.spec = spec
        self.c = c
        self.min_df = min_df
        self.columns = np.zeros(0, dtype=np.int64)
        self.idf = np.zeros(0, dtype=np.float32)
        self.block_starts = np.zeros(0, dtype=np.int64)
        """Where each block starts among the fitted columns."""
        self.model: Any = None

    def _weighted(self, counts: Any) -> Any:
        """Rows of `counts` on the fitted columns, tf-idf weighted, each block unit length.

        Columns are picked by remapping the CSR indices (one pass over the non-zeros):
        scipy's column indexing of a million-column matrix took 4 s on 100,000 rows."""
        from scipy import sparse

        counts = counts.tocsr()
        position = np.full(self.spec.width, -1, dtype=np.int64)
        position[self.columns] = np.arange(len(self.columns))
        new = position[counts.indices]
        keep = new >= 0
        kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
        indptr = kept_before[counts.indptr]  # kept non-zeros before each row's start
        cols = new[keep]
        data = counts.data[keep] * self.idf[cols]
        # each block's squared norm per row, then every value divided by its block's norm
        block = np.searchsorted(self.block_starts, cols, side="right") - 1
        rows = np.repeat(np.arange(counts.shape[0]), np.diff(indptr))
        nblocks = len(self.block_starts)
        sq = np.bincount(rows * nblocks + block, data**2, minlength=counts.shape[0] * nblocks)
        norm = np.sqrt(sq)[rows * nblocks + block]
        data = (data / np.where(norm > 0, norm, 1.0)).astype(np.float32)
        return sparse.csr_matrix((data, cols, indptr), shape=(counts.shape[0], len(self.columns)))

    def fit(self, counts: Any, y: np.ndarray, seed: int = 0) -> LexicalHead:
        from sklearn.linear_model import LogisticRegression

        df = np.bincount(counts.indices, minlength=counts.shape[1])
        self.columns = np.flatnonzero(df >= self.min_df)
        n = counts.shape[0]
        self.idf = (np.log((1.0 + n) / (1.0 + df[self.columns])) + 1.0).astype(np.float32)
        self.block_starts = np.searchsorted(self.columns, [a for a, _ in self.spec.blocks])
        self.model = LogisticRegression(
            class_weight="balanced", max_iter=2000, C=self.c, random_state=seed
        ).fit(self._weighted(counts), y)
        return self

    def decision(self, counts: Any) -> np.ndarray:
        """Raw decision values (as scikit-learn gives them) for rows of counts.

        The same numbers as `model.decision_function(self._weighted(counts))`, computed
        without building the weighted matrix: per block, the counts times (idf x weights)
        spread over the full width, divided by the row's norm (the counts squared times
        idf squared). Two sparse products over the raw rows: 100,000 messages score in a
        fraction of the remapping's time."""
        counts = counts.tocsr()
        coef = np.atleast_2d(self.model.coef_).astype(np.float32)
        out = np.zeros((counts.shape[0], coef.shape[0]), dtype=np.float64)
        squared = counts.copy()
        squared.data = squared.data**2
        for block in range(len(self.spec.blocks)):
            lo = self.block_starts[block]
            hi = self.block_starts[block + 1] if block + 1 < len(self.block_starts) else None
            cols, idf = self.columns[lo:hi], self.idf[lo:hi]
            if not len(cols):
                continue
            weights = np.zeros((counts.shape[1], coef.shape[0]), dtype=np.float32)
            weights[cols] = (idf[:, None] * coef[:, lo:hi].T).astype(np.float32)
            idf2 = np.zeros(counts.shape[1], dtype=np.float32)
            idf2[cols] = idf**2
            norm = np.sqrt(np.asarray(squared @ idf2, dtype=np.float64)).ravel()
            out += (
                np.asarray(counts @ weights, dtype=np.float64)
                / np.where(norm > 0, norm, 1.0)[:, None]
            )
        out += self.model.intercept_
        return out.ravel() if coef.shape[0] == 1 else out
