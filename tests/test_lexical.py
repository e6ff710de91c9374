"""The embed backend's lexical head: n-gram counts beside the embedding features, saved with
the model so that a loaded model scores new texts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from learning.classifiers import EmbedClassifier
from learning.lexical import LexicalHead, LexicalSpec

QUESTIONS = ["How do you feel about that?", "What brings you here today?", "Can you say more?"]
REFLECTIONS = [
    "It sounds like you feel stuck.",
    "You feel torn.",
    "So it sounds like work is hard.",
]


def corpus(n: int = 60) -> tuple[list[str], np.ndarray]:
    texts = [(QUESTIONS if i % 2 == 0 else REFLECTIONS)[i % 3] for i in range(n)]
    return texts, np.arange(n) % 2


def test_counts_keep_question_marks_and_are_the_same_for_the_same_text() -> None:
    spec = LexicalSpec()
    counts = spec.transform(["Why?", "Why.", "Why?"]).toarray()
    assert (counts[0] == counts[2]).all() and (counts[0] != counts[1]).any()
    assert counts.shape[1] == spec.width


def test_lexical_head_learns_from_words_the_embeddings_do_not_carry(tmp_path: Path) -> None:
    """Dense features are noise; the words decide. A saved and loaded model scores new
    texts it never saw from their words alone, and says so when it is given none."""
    texts, y = corpus()
    x = np.random.default_rng(0).normal(size=(len(texts), 8)).astype(np.float32)
    plain = EmbedClassifier(["question", "reflection"], calibrate=False).fit(x, y)
    assert plain.lexical is None
    clf = EmbedClassifier(["question", "reflection"]).fit(x, y, LexicalSpec().transform(texts))
    clf.save(tmp_path / "model")
    loaded = EmbedClassifier.load(tmp_path / "model")
    new = ["How are you sleeping?", "It sounds like you feel tired."]
    noise = np.random.default_rng(1).normal(size=(2, 8)).astype(np.float32)
    proba = loaded.predict_proba(noise, new)
    assert proba.argmax(axis=1).tolist() == [0, 1]
    np.testing.assert_allclose(proba, clf.predict_proba(noise, LexicalSpec().transform(new)))
    with pytest.raises(ValueError, match="lexical head"):
        loaded.predict_proba(noise)


def test_head_vocabulary_is_ngrams_seen_twice() -> None:
    """min_df 2: an n-gram in one labelled message only gets no column."""
    texts = ["alpha beta", "alpha gamma", "delta"]
    head = LexicalHead(LexicalSpec(word_ngrams=(1, 1)), min_df=2).fit(
        LexicalSpec(word_ngrams=(1, 1)).transform(texts), np.array([0, 1, 0])
    )
    assert len(head.columns) == 1  # alpha


@pytest.mark.parametrize("char_ngrams", [None, (2, 4)])
@pytest.mark.parametrize("techniques", [2, 3])
def test_fast_decision_equals_the_weighted_matrix_path(char_ngrams, techniques) -> None:
    """`decision` never builds the tf-idf matrix; it must give scikit-learn's numbers on
    it, for one block or two, binary or multinomial, rows with no known n-gram included."""
    spec = LexicalSpec(char_ngrams=char_ngrams, bits=16)
    texts = [*QUESTIONS, *REFLECTIONS, "Tell me about your week.", "I hear you."] * 5
    y = np.arange(len(texts)) % techniques
    head = LexicalHead(spec).fit(spec.transform(texts), y)
    new = spec.transform([*texts[:7], "zzzz qqqq", ""])
    expected = head.model.decision_function(head._weighted(new))
    assert np.allclose(head.decision(new), expected, atol=1e-5)
    assert head.decision(new).shape == expected.shape
