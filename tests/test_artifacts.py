"""The learning loop's compact storage on SQLite and PostgreSQL: embedding blocks, bulk
predictions and their one-row copy, a round's single transaction; and the vectorised
pieces of a round (kappa, breaking ties, JSON) against the slow originals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from store import Repository
from store.artifacts import NewModelVersion, PredictionBatch, PredictionRow
from store.io import ColumnMap, import_file
from tests.conftest import ROOT

LABELS = ["reflection", "question", "therapist_input", "other"]


def _messages(repo: Repository, tmp_path: Path, n: int = 40) -> list[int]:
    """`n` messages in 4 conversations, every other one labelable; returns all their ids."""
    data = tmp_path / "msgs.jsonl"
    rows = [
        {
            "conv": f"c{i // 10}",
            "turn": i % 10,
            "who": "therapist" if i % 2 == 0 else "client",
            "text": f"message {i}",
        }
        for i in range(n)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    columns = ColumnMap(
        text="text",
        speaker="who",
        conversation="conv",
        order="turn",
        labelable_speakers=("therapist",),
    )
    import_file(repo, data, columns)
    return [m.id for m in repo.iter_messages()]


def test_embedding_blocks_round_trip(annomi_repo: Repository, tmp_path: Path) -> None:
    """Vectors come back in the order asked (repeats too), missing ones flagged; writing
    again stores only the new ones; blocks split at BLOCK_ROWS."""
    from store import vectors

    ids = _messages(annomi_repo, tmp_path)
    art = annomi_repo.artifacts
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(len(ids), 8)).astype(np.float32)
    old_rows, vectors.BLOCK_ROWS = vectors.BLOCK_ROWS, 16
    try:
        assert art.put_embedding_matrix("enc", ids[:30], matrix[:30]) == 30
        assert art.put_embedding_matrix("enc", ids[20:], matrix[20:]) == 10
    finally:
        vectors.BLOCK_ROWS = old_rows
    assert art.count_embeddings("enc") == len(ids)
    assert art.count_embeddings("other") == 0
    ask = [ids[5], ids[39], ids[5], 10**9, ids[0]]
    got, found = art.embedding_matrix("enc", ask, 8)
    assert found.tolist() == [True, True, True, False, True]
    assert np.array_equal(got[[0, 1, 2, 4]], matrix[[5, 39, 5, 0]])
    assert not got[3].any()
    _, found = art.embedding_matrix("enc", ids, 16)  # same key, other size: not cached
    assert not found.any()
    with annomi_repo.engine.connect() as conn:
        blocks = conn.exec_driver_sql("SELECT count, dim FROM embedding_blocks").fetchall()
    assert sorted(blocks) == [(10, 8), (14, 8), (16, 8)]


def test_vectors_fill_column_views_in_one_pass(annomi_repo: Repository, tmp_path: Path) -> None:
    """Several (ids, view) targets are filled from one read: ids -1 or uncached leave their
    rows alone, repeats are filled each time."""
    ids = _messages(annomi_repo, tmp_path, 12)
    matrix = np.arange(12 * 4, dtype=np.float32).reshape(12, 4) + 1
    annomi_repo.artifacts.put_embedding_matrix("enc", ids[:10], matrix[:10])
    out = np.full((3, 12), -7.0, dtype=np.float32)
    own = np.asarray([ids[0], ids[1], ids[11]])
    before = np.asarray([-1, ids[0], ids[9]])
    found = annomi_repo.artifacts.embeddings_into(
        "enc", [(own, out[:, 0:4]), (before, out[:, 4:8]), (own[::-1].copy(), out[:, 8:12])]
    )
    assert [f.tolist() for f in found] == [
        [True, True, False],
        [False, True, True],
        [False, True, True],
    ]
    assert np.array_equal(out[:2, 0:4], matrix[:2]) and (out[2, 0:4] == -7).all()
    assert (out[0, 4:8] == -7).all() and np.array_equal(out[1:, 4:8], matrix[[0, 9]])
    assert np.array_equal(out[1:, 8:12], matrix[[1, 0]])


def test_vectors_cached_per_row_move_into_blocks(annomi_repo: Repository, tmp_path: Path) -> None:
    """A store with the old one-row-per-message cache keeps its vectors: the first read
    moves them into blocks and empties the old table."""
    ids = _messages(annomi_repo, tmp_path, 10)
    matrix = np.arange(10 * 4, dtype=np.float32).reshape(10, 4)
    mark = "?" if annomi_repo.dialect == "sqlite" else "%s"
    with annomi_repo.engine.begin() as conn:
        conn.exec_driver_sql(
            f"INSERT INTO embeddings (encoder, message_id, dim, vector) "
            f"VALUES ({mark}, {mark}, {mark}, {mark})",
            [("enc", mid, 4, matrix[j].tobytes()) for j, mid in enumerate(ids[:6])],
        )
    got, found = annomi_repo.artifacts.embedding_matrix("enc", ids, 4)
    assert found.tolist() == [True] * 6 + [False] * 4
    assert np.array_equal(got[:6], matrix[:6])
    with annomi_repo.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM embeddings").scalar() == 0
    assert annomi_repo.artifacts.count_embeddings("enc") == 6


def _round(repo: Repository, ids: list[int], seed: int, tag: str) -> tuple[int, np.ndarray]:
    proba = np.random.default_rng(seed).dirichlet(np.ones(len(LABELS)), size=len(ids))
    model = NewModelVersion("embed", "enc", "annomi", f"models/{tag}", "sum", {}, {})
    batch = PredictionBatch(ids, proba, LABELS)
    version, _ = repo.artifacts.commit_round(model, tag, batch, "breaking-ties", 2, ids[:2], {})
    return version.id, proba


def test_round_predictions_land_whole(annomi_repo: Repository, tmp_path: Path) -> None:
    """A committed round's predictions: probabilities per technique for the suggestion,
    the queue ordered by uncertainty, top labels from the one-row copy equal to the rows';
    an older version's suggestion is stale after a newer round."""
    repo = annomi_repo
    _messages(repo, tmp_path)
    ids = [m.id for m in repo.iter_messages(labelable_only=True)]
    v1, p1 = _round(repo, ids, 0, "v1")
    stored = repo.artifacts.predictions(v1)
    assert len(stored) == len(ids)
    for j, mid in enumerate(ids):
        assert [stored[mid].probabilities[k] for k in LABELS] == pytest.approx(p1[j], abs=1e-5)
        assert stored[mid].top_label == LABELS[int(p1[j].argmax())]
    mids, codes = repo.artifacts.top_label_codes(v1, LABELS)
    rows = repo.artifacts.top_labels(v1)
    assert sorted(mids.tolist()) == sorted(ids)
    assert all(LABELS[c] == rows[m] for m, c in zip(mids.tolist(), codes.tolist(), strict=True))
    _, codes = repo.artifacts.top_label_codes(v1, ["question"])
    assert set(codes.tolist()) <= {0, -1}
    suggestion = repo.suggestion(ids[3])
    assert suggestion is not None and not suggestion.stale
    assert suggestion.probabilities == pytest.approx(
        dict(zip(LABELS, p1[3], strict=True)), abs=1e-5
    )
    queue = repo.queue("ann", limit=len(ids))
    assert queue[:2] == ids[:2]
    _round(repo, ids, 1, "v2")
    assert repo.suggestion(ids[3]).model_tag == "v2"
    repo.artifacts.activate("v1")
    assert repo.suggestion(ids[3]).model_tag == "v1"
    assert not repo.suggestion(ids[3]).stale


def test_failed_commit_leaves_nothing(
    annomi_repo: Repository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the predictions are written rolls the whole round back."""
    repo = annomi_repo
    _messages(repo, tmp_path)
    ids = [m.id for m in repo.iter_messages(labelable_only=True)]
    _round(repo, ids, 0, "v1")
    before = (repo.artifacts.versions(), repo.artifacts.rounds(), repo.counts())

    def broken(*args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("store.artifacts._insert_prediction_set", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        _round(repo, ids, 1, "v2")
    assert (repo.artifacts.versions(), repo.artifacts.rounds(), repo.counts()) == before
    with repo.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM prediction_sets").scalar() == 1


def test_queue_and_suggestions_from_packed_sets(annomi_repo: Repository, tmp_path: Path) -> None:
    """A round writes one packed row, no per-message rows. The queue after the round's
    batch is the rest by uncertainty (1 - margin, ties by id); a message the active version
    did not score gets the newest older version's suggestion, marked stale; a version stored
    as per-message rows (older stores) is still read."""
    repo = annomi_repo
    _messages(repo, tmp_path)
    ids = [m.id for m in repo.iter_messages(labelable_only=True)]
    _, p1 = _round(repo, ids, 0, "v1")
    with repo.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM predictions").scalar() == 0
    top2 = np.sort(p1, axis=1)[:, -2:]
    uncertainty = 1 - (top2[:, 1] - top2[:, 0])
    expected = [ids[j] for j in sorted(range(len(ids)), key=lambda j: (-uncertainty[j], ids[j]))]
    queue = repo.queue("ann", limit=len(ids))
    assert queue[:2] == ids[:2]
    assert queue[2:] == [mid for mid in expected if mid not in ids[:2]]
    # v2 scores only half of the messages: the others keep v1's suggestion, stale
    half = ids[: len(ids) // 2]
    _round(repo, half, 1, "v2")
    assert repo.suggestion(half[0]).model_tag == "v2"
    late = repo.suggestion(ids[-1])
    assert late is not None and late.model_tag == "v1" and late.stale
    assert late.probabilities == pytest.approx(dict(zip(LABELS, p1[-1], strict=True)), abs=1e-5)
    # a version whose predictions are per-message rows, as older releases wrote them
    rows = [PredictionRow(ids[-1], {k: 0.25 for k in LABELS}, "other", 0.9)]
    model = NewModelVersion("embed", "enc", "annomi", "models/v3", "sum", {}, {})
    repo.artifacts.commit_round(model, "v3", rows, "random", 1, [], {})
    old_style = repo.suggestion(ids[-1])
    assert old_style is not None and old_style.model_tag == "v3" and not old_style.stale
    assert old_style.probabilities == {k: 0.25 for k in LABELS}
    assert repo.suggestion(half[0]).model_tag == "v2" and repo.suggestion(half[0]).stale
    assert repo.artifacts.top_labels(repo.artifacts.version("v3").id) == {ids[-1]: "other"}


def test_prediction_batch_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="2 messages and 4 labels"):
        PredictionBatch([1, 2], np.zeros((3, 4)), LABELS)


def test_kappa_and_breaking_ties_match_the_originals() -> None:
    """The vectorised kappa and breaking-ties give sklearn's and small-text's results."""
    from sklearn.metrics import cohen_kappa_score
    from small_text.query_strategies import BreakingTies

    from learning.stopping import cohen_kappa
    from learning.strategies import PrecomputedClassifier, make_strategy

    rng = np.random.default_rng(0)
    a, b = rng.integers(-1, 4, 1000), rng.integers(0, 4, 1000)
    b[:700] = a[:700]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa(a, a) == 1.0
    proba = rng.dirichlet(np.ones(5), size=2000)
    clf = PrecomputedClassifier(proba)
    mine, theirs = make_strategy("breaking-ties"), BreakingTies()
    dataset = type("D", (), {"x": np.arange(2000).reshape(-1, 1)})()
    assert np.array_equal(
        mine.get_confidence(clf, dataset, None, None, None),
        theirs.get_confidence(clf, dataset, None, None, None),
    )


def test_embed_round_imports_neither_torch_nor_transformers() -> None:
    """small-text loads without its torch integrations for the embed backend, the encoder
    knows its size without transformers, and the finetune imports still work afterwards."""
    probe = (
        "import sys\n"
        "from learning import small_text_core\n"
        "from learning.encoders import Encoder\n"
        "assert Encoder().dim == 384\n"
        "small_text_core.load()\n"
        "from small_text import SklearnClassifier\n"
        "from small_text.query_strategies import BreakingTies\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))\n"
        "from small_text.integrations.transformers.classifiers.classification import (\n"
        "    TransformerBasedClassification)\n"
        "from small_text.integrations.transformers.datasets import TransformersDataset\n"
        "import torch\n"
        "print(torch.tensor([1]).item())\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "1"]


def test_token_batches_cover_every_text_once_within_limits() -> None:
    """Batches are length-sorted, within the row and padded-token limits (a text longer
    than the budget alone), and together hold every text exactly once."""
    from learning.encoders import token_batches

    lengths = np.random.default_rng(0).integers(1, 129, 1000).tolist() + [500]
    batches = token_batches(lengths, 64, 2048)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)
    for rows in batches:
        longest = max(lengths[i] for i in rows)
        assert len(rows) <= 64 and (len(rows) * longest <= 2048 or len(rows) == 1)
    assert token_batches([], 64, 2048) == []


def test_one_kappa_for_coders_and_models() -> None:
    """Coders' kappa (any labels) and a round's kappa (label-code arrays) are one function:
    the array path and the per-item path agree with sklearn on the same data."""
    from sklearn.metrics import cohen_kappa_score

    from store.agreement import cohen_kappa

    rng = np.random.default_rng(1)
    a, b = rng.integers(-1, 5, 500), rng.integers(0, 5, 500)
    b[:300] = a[:300]
    names = np.array(["x", "a", "b", "c", "d", "e"])
    want = cohen_kappa_score(a, b)
    assert cohen_kappa(a, b) == pytest.approx(want)
    assert cohen_kappa(list(names[a + 1]), list(names[b + 1])) == pytest.approx(want)


def test_a_pool_s_features_are_read_once_per_process(
    annomi_repo: Repository, tmp_path: Path
) -> None:
    """embed_features keeps the matrix it built (read-only) and gives it back for the same
    encoders, context and ids without reading the store; other ids are read afresh. The
    encoder is a stand-in with a key and a size: every vector is cached, none is encoded."""
    from learning import features

    class Cached:
        key, dim = "enc", 4

        def encode(self, texts: list[str]) -> np.ndarray:
            raise AssertionError("every vector is cached")

    ids = _messages(annomi_repo, tmp_path, 12)
    matrix = np.arange(12 * 4, dtype=np.float32).reshape(12, 4) + 1
    annomi_repo.artifacts.put_embedding_matrix("enc", ids, matrix)
    own, before = np.asarray(ids[1:4]), np.asarray([ids[0], ids[1], -1])
    first = features.embed_features(annomi_repo, Cached(), own, before, "previous")
    assert np.array_equal(first, np.hstack([matrix[1:4], matrix[[0, 1]].tolist() + [[0] * 4]]))
    assert not first.flags.writeable
    reads = []
    real = annomi_repo.artifacts.embeddings_into
    annomi_repo.artifacts.embeddings_into = lambda *a: reads.append(a) or real(*a)
    try:
        again = features.embed_features(annomi_repo, Cached(), own, before, "previous")
        assert again is first and reads == []
        other = features.embed_features(annomi_repo, Cached(), own[:2], before[:2], "previous")
        assert len(reads) == 1 and np.array_equal(other, first[:2])
    finally:
        annomi_repo.artifacts.embeddings_into = real
