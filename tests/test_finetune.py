"""Fine-tuning backend: fit, trimmed batches, context segments, save/load, multi-label."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from learning import batching, finetune
from learning.batching import encode, trimmed_collate
from learning.finetune import FinetuneClassifier, FinetuneSettings
from learning.inputs import ModelInput, Turn

pytestmark = pytest.mark.slow

LABELS = ["question", "reflection", "input"]
WORDS = {
    0: "how what why when do you think could tell me more".split(),
    1: "it sounds like you feel so you are saying that part of you".split(),
    2: "you should try to consider the advice research shows".split(),
}


def synthetic(n: int = 40, seed: int = 0) -> tuple[list[ModelInput], np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs, y = [], []
    for i in range(n):
        c = i % 3
        text = " ".join(rng.choice(WORDS[c], size=int(rng.integers(2, 12))))
        context = (Turn("client", "i drink every day " * (i % 4)), Turn("therapist", "okay"))
        inputs.append(ModelInput(text, "therapist", context[: i % 3]))
        y.append(c)
    return inputs, np.array(y)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():  # noqa: ANN202
    """One torch thread: on a shared CPU, two spinning threads made tiny fits 20x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer():  # noqa: ANN201
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(finetune.bundled_model_path())


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, tokenizer) -> str:  # noqa: ANN001
    """A 2-layer, 32-wide BERT with the bundled tokenizer: same code paths, ~50x faster."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    folder = tmp_path_factory.mktemp("tiny-bert")
    BertModel(config).save_pretrained(folder)  # no head, like the bundled MiniLM
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def fitted() -> tuple[FinetuneClassifier, list[ModelInput], np.ndarray, list[tuple[int, int]]]:
    """The bundled MiniLM fine-tuned for two epochs; records every batch's padded shape."""
    widths: list[tuple[int, int]] = []
    real_pad = finetune.pad_batch

    def spy(rows, pad_id):  # noqa: ANN001, ANN202
        ids, mask = real_pad(rows, pad_id)
        widths.append((ids.shape[1], max(len(r) for r in rows)))
        return ids, mask

    inputs, y = synthetic()
    settings = FinetuneSettings(max_length=64, epochs=2, batch_size=8, context_mode="previous")
    finetune.pad_batch = spy
    try:
        clf = FinetuneClassifier(LABELS, settings).fit(inputs, y)
        clf.predict_proba(inputs, batch_size=16)
    finally:
        finetune.pad_batch = real_pad
    return clf, inputs, y, widths


def test_fit_predict_proba(fitted) -> None:  # noqa: ANN001
    clf, inputs, y, _ = fitted
    proba = clf.predict_proba(inputs)
    assert proba.shape == (len(inputs), len(LABELS))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert clf.epochs_run == 2 and clf.best_epoch in (1, 2)
    assert len(clf.dev_history) == 2
    logits = clf.predict_logits(inputs)
    np.testing.assert_array_equal(proba.argmax(1), logits.argmax(1))


def test_prediction_keeps_caller_order(fitted) -> None:  # noqa: ANN001
    clf, inputs, _, _ = fitted
    proba = clf.predict_proba(inputs, batch_size=7)
    reordered = clf.predict_proba(inputs[::-1], batch_size=5)[::-1]
    np.testing.assert_allclose(proba, reordered, atol=1e-5)


def test_batches_trimmed_to_longest_sequence(fitted, tokenizer) -> None:  # noqa: ANN001
    """Every batch in training, dev and prediction is as wide as its longest input."""
    clf, inputs, _, widths = fitted
    longest = max(len(r) for r in encode(tokenizer, inputs, clf.settings))
    assert widths and all(width == row for width, row in widths)
    assert max(w for w, _ in widths) == longest < clf.settings.max_length
    assert len({w for w, _ in widths}) > 1  # widths vary batch to batch


def test_collate_trims_padded_and_unpadded_items() -> None:
    import torch

    short, long = [101, 7, 102], [101, 7, 8, 9, 10, 102]
    padded = torch.tensor([short + [0] * 26])  # as small-text stores it: padded to max_length
    mask = torch.tensor([[1] * 3 + [0] * 26])
    batch = [(padded, mask, 0), (torch.tensor([long]), torch.ones((1, 6), dtype=torch.long), 2)]
    ids, masks, labels, weights = trimmed_collate(batch, pad_id=0, multi_label=False, num_classes=3)
    assert ids.shape == masks.shape == (2, len(long))
    assert ids[0].tolist() == short + [0, 0, 0] and masks[0].tolist() == [1, 1, 1, 0, 0, 0]
    assert labels.tolist() == [0, 2] and weights.tolist() == [1.0, 1.0]
    ids, _, labels, _ = trimmed_collate(
        [(torch.tensor([short]), torch.ones((1, 3)), np.array([0, 2]))],
        pad_id=0,
        multi_label=True,
        num_classes=3,
    )
    assert ids.shape == (1, 3) and labels.tolist() == [[1.0, 0.0, 1.0]]


def test_save_load_identical(fitted, tmp_path: Path) -> None:  # noqa: ANN001
    clf, inputs, _, _ = fitted
    clf.save(tmp_path / "model")
    loaded = FinetuneClassifier.load(tmp_path / "model", device="cpu")
    assert loaded.labels == LABELS and loaded.settings == replace(clf.settings, device="cpu")
    assert loaded.best_epoch == clf.best_epoch
    np.testing.assert_array_equal(loaded.predict_proba(inputs), clf.predict_proba(inputs))


def test_context_segments(tokenizer) -> None:  # noqa: ANN001
    item = ModelInput(
        "so you want to cut down",
        "therapist",
        (Turn("therapist", "what brings you here"), Turn("client", "my drinking")),
    )

    def decoded(mode: str, turns: int, max_length: int = 64, it: ModelInput = item) -> str:
        s = FinetuneSettings(context_mode=mode, context_turns=turns, max_length=max_length)
        return tokenizer.decode(encode(tokenizer, [it], s)[0])

    assert decoded("none", 1) == "[CLS] so you want to cut down [SEP]"
    assert decoded("previous", 1) == "[CLS] so you want to cut down [SEP] my drinking [SEP]"
    assert decoded("window", 2) == (
        "[CLS] so you want to cut down [SEP] client : my drinking | "
        "therapist : what brings you here [SEP]"
    )
    # truncation cuts the context, nearest turn kept, never the message
    assert decoded("window", 2, max_length=14) == (
        "[CLS] so you want to cut down [SEP] client : my drinking | [SEP]"
    )
    # a message that leaves no room for context is encoded alone
    long = ModelInput("word " * 40, "therapist", item.context)
    ids = encode(tokenizer, [long], FinetuneSettings(context_mode="previous", max_length=16))[0]
    assert len(ids) == 16 and tokenizer.sep_token_id not in ids[:-1]
    assert decoded("previous", 1, it=ModelInput("first message")) == "[CLS] first message [SEP]"


def test_around_segments(tokenizer) -> None:  # noqa: ANN001
    """around: [CLS] message [SEP] before [SEP] after [SEP]; the two sides share what the
    message leaves, each cut at its far end; the middle [SEP] is always there."""
    item = ModelInput(
        "so you want to cut down",
        "therapist",
        (Turn("therapist", "what brings you here"), Turn("client", "my drinking")),
        (Turn("client", "yeah"), Turn("therapist", "how much")),
    )

    def decoded(turns: int, max_length: int = 64, it: ModelInput = item) -> str:
        s = FinetuneSettings(context_mode="around", context_turns=turns, max_length=max_length)
        ids = encode(tokenizer, [it], s)[0]
        assert len(ids) <= max_length
        return tokenizer.decode(ids)

    message = "[CLS] so you want to cut down [SEP]"
    assert decoded(1) == f"{message} client : my drinking [SEP] client : yeah [SEP]"
    assert decoded(2) == (
        f"{message} therapist : what brings you here | client : my drinking [SEP] "
        "client : yeah | therapist : how much [SEP]"
    )
    # 6 tokens of room: 3 each, the nearest kept on both sides
    assert decoded(2, max_length=16) == f"{message} : my drinking [SEP] client : yeah [SEP]"
    # a side with nothing to say leaves its room to the other
    ends = ModelInput(item.text, item.speaker, item.context)
    assert decoded(2, 16, ends) == f"{message} here | client : my drinking [SEP] [SEP]"
    assert decoded(1, it=ModelInput("first message")) == "[CLS] first message [SEP] [SEP] [SEP]"
    assert decoded(1, max_length=10) == message  # no room: the message alone
    with pytest.raises(ValueError, match="context_turns"):
        FinetuneSettings(context_mode="around", context_turns=0)


def test_finetune_round_with_following_turns(tiny_model: str, tmp_path: Path) -> None:
    """An around model in a real round (tiny encoder, 1 epoch): the round's stored
    probabilities come from inputs with the following turn, and scoring the corpus file in
    small chunks (replies read after their chunk is full) gives the same inputs."""
    import json

    import pyarrow.parquet as pq

    import seeds
    from learning.inputs import with_context
    from learning.pool import Pool
    from learning.predict import predict_file
    from learning.registry import load_predictor, model_folder
    from learning.rounds import pool_inputs, run_round
    from learning.settings import LearningSettings
    from store import Repository
    from store.io import ColumnMap
    from tui.demo import build_demo

    ws = build_demo(tmp_path / "demo", train=False)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    try:
        settings = LearningSettings.from_workspace(
            ws,
            backend="finetune",
            encoder=tiny_model,
            context_mode="around",
            context_turns=1,
            epochs=1,
            lr=2e-3,
            max_length=64,
            batch_size=5,
        )
        run_round(repo, ws.models_dir, settings)
        model = repo.artifacts.active()
        assert model is not None and model.settings["context_mode"] == "around"
        predictor = load_predictor(model_folder(ws.models_dir, model), model.checksum, "cpu")
        pool = Pool.build(repo, repo.codebook())
        ids = [int(i) for i in pool.message_ids[:16]]
        stored = repo.artifacts.predictions(model.id, ids)
        expected = np.array([[stored[m].probabilities[k] for k in pool.labels] for m in ids])
        inputs = pool_inputs(repo, pool, 1, after=1)[:16]
        nxt = [int(i) for i in pool.next_ids[:16]]
        texts = repo.message_texts([i for i in nxt if i >= 0])
        assert [x.following[0].text if x.following else None for x in inputs] == [
            texts[i] if i >= 0 else None for i in nxt
        ]
        assert sum(i >= 0 for i in nxt) > 8
        # stored probabilities are rounded to 5 decimals
        np.testing.assert_allclose(predictor.predict_proba(inputs), expected, atol=2e-5)
        before_only = [ModelInput(x.text, x.speaker, x.context) for x in inputs]
        assert np.abs(predictor.predict_proba(before_only) - expected).max() > 1e-4
    finally:
        repo.close()

    source = seeds.demo_corpus()
    rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
    file_inputs = with_context(
        [r["text"] for r in rows],
        [r["speaker"] for r in rows],
        [r["conversation_id"] for r in rows],
        1,
        after=1,
    )
    wanted = [x for r, x in zip(rows, file_inputs, strict=True) if r["speaker"] == "therapist"]
    columns = ColumnMap(
        text="text",
        speaker="speaker",
        conversation="conversation_id",
        labelable_speakers=("therapist",),
    )
    out = tmp_path / "scores.parquet"
    predict_file(
        predictor, source, out, columns, model_tag=model.tag, model_checksum=model.checksum,
        chunk_rows=7,
    )  # fmt: skip
    table = pq.read_table(out)
    scored = np.stack([table.column(f"p_{k}").to_numpy() for k in predictor.labels], axis=1)
    np.testing.assert_allclose(scored, predictor.predict_proba(wanted), atol=1e-5)


def test_token_types_mark_the_context() -> None:
    import torch

    ids = torch.tensor([[101, 5, 102, 6, 7, 102, 0], [101, 5, 6, 102, 0, 0, 0]])
    mask = (ids != 0).long()
    types = batching.segment_ids(ids, mask, sep_id=102)
    assert types.tolist() == [[0, 0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0, 0]]


def test_multi_label_sigmoid(tiny_model: str) -> None:
    inputs, y = synthetic(30)
    Y = np.stack([y == 0, y != 2], axis=1).astype(int)
    settings = FinetuneSettings(model_path=tiny_model, max_length=32, epochs=1, batch_size=8)
    clf = FinetuneClassifier(["a", "b"], settings, multi_label=True).fit(inputs, Y)
    proba = clf.predict_proba(inputs)
    assert proba.shape == (30, 2)
    logits = clf.predict_logits(inputs)
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-logits)), rtol=1e-6)
    assert not np.allclose(proba.sum(axis=1), 1.0)


def test_mean_pooling_and_label_smoothing(tiny_model: str, tmp_path: Path) -> None:
    """The mean-of-message-tokens head trains, saves and loads to the same predictions;
    label smoothing reaches small-text's loss."""
    inputs, y = synthetic(24)
    settings = FinetuneSettings(
        model_path=tiny_model,
        max_length=32,
        epochs=1,
        batch_size=8,
        pooling="mean",
        label_smoothing=0.1,
    )
    clf = FinetuneClassifier(LABELS, settings).fit(inputs, y)
    assert clf._clf.criterion.label_smoothing == 0.1
    clf.save(tmp_path / "model")
    loaded = FinetuneClassifier.load(tmp_path / "model", device="cpu")
    assert loaded.settings.pooling == "mean"
    np.testing.assert_allclose(loaded.predict_logits(inputs), clf.predict_logits(inputs), atol=1e-6)
    with pytest.raises(ValueError, match="pooling"):
        FinetuneSettings(model_path=tiny_model, pooling="max")


def test_deterministic_given_seed(tiny_model: str) -> None:
    inputs, y = synthetic(30)
    dev_inputs, dev_y = synthetic(9, seed=1)
    settings = FinetuneSettings(model_path=tiny_model, max_length=32, epochs=2, batch_size=8)
    runs = [
        FinetuneClassifier(LABELS, settings)
        .fit(inputs, y, dev_inputs, dev_y)
        .predict_logits(inputs)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_progress_and_bad_labels(tiny_model: str) -> None:
    inputs, y = synthetic(20)
    settings = FinetuneSettings(model_path=tiny_model, max_length=32, epochs=1, batch_size=8)
    seen: list[tuple[str, float]] = []
    FinetuneClassifier(LABELS, settings).fit(inputs, y, progress=lambda m, f: seen.append((m, f)))
    assert seen[-1] == ("done", 1.0) and any("dev macro-F1" in m for m, _ in seen)
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions)
    with pytest.raises(ValueError, match="int array"):
        FinetuneClassifier(LABELS, settings).fit(inputs, y + 5)
    with pytest.raises(ValueError, match="context_turns"):
        FinetuneSettings(context_mode="window", context_turns=0)


def test_seed_ensemble_averages_its_members(tiny_model: str, tmp_path: Path) -> None:
    """members=3 trains the single models of seeds s, s+1, s+2 and averages their
    probabilities; its logits softmax back to that average; save/load gives the same; a
    round with members=2 registers an ensemble that the predictor loads."""
    from learning.calibration import softmax
    from learning.ensemble import FinetuneEnsemble, load_finetune, new_finetune
    from learning.registry import load_predictor, model_folder
    from learning.rounds import run_round
    from learning.settings import LearningSettings
    from store import Repository
    from tui.demo import build_demo

    inputs, y = synthetic(30)
    dev_inputs, dev_y = synthetic(9, seed=1)
    base = FinetuneSettings(model_path=tiny_model, max_length=32, epochs=2, batch_size=8, seed=5)
    ensemble = new_finetune(LABELS, replace(base, members=3))
    assert isinstance(ensemble, FinetuneEnsemble)
    ensemble.fit(inputs, y, dev_inputs, dev_y)
    singles = [
        FinetuneClassifier(LABELS, replace(base, seed=5 + i))
        .fit(inputs, y, dev_inputs, dev_y)
        .predict_proba(inputs)
        for i in range(3)
    ]
    proba = ensemble.predict_proba(inputs)
    np.testing.assert_allclose(proba, np.mean(singles, axis=0), atol=1e-6)
    np.testing.assert_allclose(softmax(ensemble.predict_logits(inputs)), proba, atol=1e-5)
    assert len(ensemble.dev_history) == 1 and 0 <= ensemble.dev_history[0] <= 1
    ensemble.save(tmp_path / "ensemble")
    loaded = load_finetune(tmp_path / "ensemble", "cpu")
    assert isinstance(loaded, FinetuneEnsemble) and len(loaded.members) == 3
    np.testing.assert_allclose(loaded.predict_proba(inputs), proba, atol=1e-6)

    ws = build_demo(tmp_path / "demo", train=False)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    try:
        settings = LearningSettings.from_workspace(
            ws, backend="finetune", encoder=tiny_model, epochs=1, max_length=32, members=2
        )
        run_round(repo, ws.models_dir, settings)
        model = repo.artifacts.active()
        assert model is not None and model.settings["members"] == 2
        predictor = load_predictor(model_folder(ws.models_dir, model), model.checksum, "cpu")
        assert isinstance(predictor.classifier, FinetuneEnsemble)
    finally:
        repo.close()
