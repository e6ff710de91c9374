"""Techne on AnnoMI: full-label macro-F1 per backend and context mode (none, previous,
around), ECE of the calibrated model, and learning curves of the default loop (embedding +
lexical heads, `around` vectors) per strategy against random. Prints JSON; each finished
curve is also printed to stderr as one JSON line.

    python bench/al_annomi.py [--skip-finetune] [--finetune-contexts none:0,previous:1,around:1]
        [--seeds 0,1,2,3,4] [--budgets 50,...,1600] [--strategies auto,random,...]
        [--split dev|test] [--refresh-from N]

--split dev: the pool is the train transcripts, scored on dev (10% of the training side's
transcripts) - for choosing; --split test: pool = train + dev, scored on test.

--refresh-from N puts the app's encoder refresh in the loop (learning.tuned.refresh_due:
at N labels, then at each doubling; each refresh joins the features from the round after
the one that started it, as in the app, where it runs while the expert labels). Measured
2026-12-02 on dev (--refresh-from 400, seeds 0-1; AMD EPYC, 2 cores; 93-250 s a refresh),
mean macro-F1, against the same loop without:

    labels            200   400   800   1200  1600
    auto, refresh    .656  .696  .698  .693  .696
    auto             .656  .696  .711  .717  .717
    random, refresh  .665  .700  .710  .699  .707
    random           .665  .700  .705  .723  .722

So the app does not refresh by itself by default ([learning] encoder_refresh_from = 0).
Outside the loop, one draw of 800 random labels (frozen .726 at 800 and .727 at 1,200
labels; the encoder trained on the 800): the tuned encoder gave .696 / .704, with another
fine-tuning seed .691 / .690, with 2 epochs .709 / .718, without early stopping .696 /
.702, cross-fitted (two encoders on halves of the conversations, each labelled message
given the other's vectors) .707 / .716; another draw gained (.700 -> .730 at 800, .708 ->
.737 at 1,200). What a refresh adds depends on the labels it gets. A gate (adopt only if
heads with the new encoder beat the one in use on the labelled conversations its
fine-tuning held out, 53-143 messages) kept 2 of 8 refreshes; loop means at 800 / 1,200 /
1,600: auto .703 / .714 / .717, random .712 / .714 / .713 - near the frozen loop, no gain.

Measured 2026-12-02, --split test, 5 seeds, budgets 50-1,600 with 1,200 (AMD EPYC, 2 CPU
cores; 4 min with the vectors cached), the learner self-training as a round does
(learning.self_training; --no-self-training: gold labels only):

    strategy          50    100   200   400   800   1200  1600  AUC   labels to random@1600
    auto             .593  .630  .697  .734  .763  .772  .773  .745  1,126 (never below by >1 SE)
    random           .593  .630  .670  .733  .755  .765  .770  .738
    auto, gold only  .593  .630  .696  .729  .755  .769  .773  .742  1,501 (below by >1 SE at 400)
    random, gold     .593  .630  .671  .734  .758  .766  .772  .740
    all labels: 0.785 with the lexical head, 0.745 without

(`auto` is random below 100 labels, the very draw `random` makes, then a draw weighted by
1 - margin. 10 seeds: auto - random = +.027 at 200, +.007 at 400, +.010 at 800, +.005 at
1,200, +.003 at 1,600, random's 1,600-label score at 1,345 labels; gold labels only +.025,
+.004, -.002, -.002, -.004, never reached. Rows measured on different machines differ by
up to 0.007 in the full-label score (int8 ONNX kernels differ between CPU types): compare
rows from one run.)

Same split, 3 seeds, the other strategies: see the README (Learning).

Split: therapist messages of ../shared/data/annomi/AnnoMI-simple.csv, conversation-grouped
80/20 by transcript (seed 0); dev is 10% of the train transcripts: fine-tuning early-stops
on it, and the embed head reports its dev macro-F1 (fitted without dev) before its test
scores (fitted with it). The same split as bench/finetune_annomi.py, which searched the
fine-tuning recipe. A context mode is chosen by dev, never by test.

Measured 2026-11-29, before the embedding head's C became 0.3 (frozen MiniLM + balanced LR;
2 shared CPU cores, encoding 197 s, each head under 3 s), dev / test macro-F1, ECE: none
0.665 / 0.718, 0.040; previous 0.676 / 0.709, 0.037; around 0.686 / 0.736, 0.041.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from finetune_annomi import DATA, LABELS, load_annomi, splits  # noqa: E402

from learning.calibration import fit_temperature, softmax  # noqa: E402
from learning.classifiers import EmbedClassifier  # noqa: E402
from learning.encoders import Encoder  # noqa: E402
from learning.inputs import following_turns  # noqa: E402
from learning.metrics import evaluate, expected_calibration_error  # noqa: E402
from learning.settings import LearningSettings  # noqa: E402

EMBED_CONTEXTS = ("none", "previous", "around")


def embed_features(inputs: list, encoder: Encoder, cache: Path | None) -> dict[str, np.ndarray]:
    """Per context mode, the embed backend's features: the message's vector (none); with the
    previous turn's vector beside it (previous); with the previous and the next turn's
    vectors (around). Zeros where there is no such turn. `cache` keeps the vectors between
    runs (a file outside the repository)."""
    key = f"{encoder.key}|{len(inputs)}|around"
    if cache is not None and cache.exists():
        saved = np.load(cache)
        if saved["key"].item() == key:
            return {mode: saved[mode] for mode in EMBED_CONTEXTS}
    own = encoder.encode([i.text for i in inputs])

    def vectors(texts: list[str]) -> np.ndarray:
        out = np.zeros_like(own)
        has = [j for j, t in enumerate(texts) if t]
        out[has] = encoder.encode([texts[j] for j in has])
        return out

    prev = vectors([i.context[-1].text if i.context else "" for i in inputs])
    after = vectors([i.following[0].text if i.following else "" for i in inputs])
    out = {"none": own, "previous": np.hstack([own, prev]), "around": np.hstack([own, prev, after])}
    if cache is not None:
        np.savez(cache, key=np.array(key), **out)
    return out


def embed_results(
    inputs: list,
    y: np.ndarray,
    train: np.ndarray,
    dev: np.ndarray,
    test: np.ndarray,
    cache: Path | None,
) -> dict:
    """Per context mode: dev macro-F1 of a head fitted on `train` (how a mode is chosen),
    then test metrics of a head fitted on train + dev."""
    encoder = Encoder()
    out = {}
    t0 = time.perf_counter()
    features = embed_features(inputs, encoder, cache)
    encode_s = time.perf_counter() - t0
    fit_rows = np.concatenate([train, dev])
    for context in EMBED_CONTEXTS:
        x = features[context]
        t0 = time.perf_counter()
        on_dev = EmbedClassifier(LABELS, seed=0).fit(x[train], y[train]).predict_proba(x[dev])
        dev_f1 = evaluate(y[dev], on_dev, LABELS)["macro_f1"]
        clf = EmbedClassifier(LABELS, seed=0).fit(x[fit_rows], y[fit_rows])
        proba = clf.predict_proba(x[test])
        m = evaluate(y[test], proba, LABELS)
        out[f"embed/{context}"] = {
            "dev_macro_f1": round(dev_f1, 4),
            "macro_f1": round(m["macro_f1"], 4),
            "ece": round(m["ece"], 4),
            "temperature": round(clf.temperature, 3),
            "per_technique_f1": {k: round(v["f1"], 3) for k, v in m["per_technique"].items()},
            "encode_s": round(encode_s, 1),
            "train_s": round(time.perf_counter() - t0, 2),
        }
    return {"results": out, "features": features, "encoder_dim": encoder.dim}


def finetune_results(
    inputs: list,
    y: np.ndarray,
    train: np.ndarray,
    dev: np.ndarray,
    test: np.ndarray,
    contexts: list[tuple[str, int]],
) -> dict:
    from learning.finetune import FinetuneClassifier, FinetuneSettings

    out = {}
    for mode, turns in contexts:
        settings = FinetuneSettings(context_mode=mode, context_turns=max(turns, 1))
        t0 = time.perf_counter()
        clf = FinetuneClassifier(LABELS, settings).fit(
            [inputs[i] for i in train],
            y[train],
            dev_inputs=[inputs[i] for i in dev],
            dev_y=y[dev],
        )
        train_s = time.perf_counter() - t0
        dev_logits = clf.predict_logits([inputs[i] for i in dev])
        temperature = fit_temperature(dev_logits, y[dev])
        logits = clf.predict_logits([inputs[i] for i in test])
        raw, calibrated = softmax(logits), softmax(logits, temperature)
        m = evaluate(y[test], calibrated, LABELS)
        out[f"finetune/{mode}" + (f"-{turns}" if mode in ("window", "around") else "")] = {
            "macro_f1": round(m["macro_f1"], 4),
            "ece_uncalibrated": round(expected_calibration_error(raw, y[test]), 4),
            "ece": round(m["ece"], 4),
            "temperature": round(temperature, 3),
            "per_technique_f1": {k: round(v["f1"], 3) for k, v in m["per_technique"].items()},
            "settings": {k: v for k, v in settings.__dict__.items() if k != "model_path"},
            "train_s": round(train_s, 1),
        }
    return out


def around_vectors(encoder: Encoder, inputs: list, rows: np.ndarray) -> tuple[np.ndarray, float]:
    """`around` vectors (the message, the turn before, the turn after; zeros where none) of
    these rows from `encoder`, each distinct text encoded once, and texts encoded per second
    (what encoding a pool costs)."""
    sides = [
        [inputs[r].text for r in rows],
        [inputs[r].context[-1].text if inputs[r].context else "" for r in rows],
        [inputs[r].following[0].text if inputs[r].following else "" for r in rows],
    ]
    texts = sorted({t for side in sides for t in side} - {""})
    started = time.perf_counter()
    vectors = encoder.encode(texts)
    rate = len(texts) / (time.perf_counter() - started)
    at = {t: k for k, t in enumerate(texts)}
    out = np.zeros((len(rows), 3 * encoder.dim), dtype=np.float32)
    for s, side in enumerate(sides):
        for r, text in enumerate(side):
            if text:
                out[r, s * encoder.dim : (s + 1) * encoder.dim] = vectors[at[text]]
    return out, rate


def refresher_for(inputs: list, y: np.ndarray, groups: np.ndarray, rows: np.ndarray, seed: int):
    """The app's encoder refresh as the simulated loop runs it: MiniLM fine-tuned on the
    labelled rows (learning.encoder_refresh.tune_encoder, the very recipe), saved, loaded
    back as the rounds load it (torch, mean pooling), and its `around` vectors of `rows`
    (the pool and the scored messages; each distinct text encoded once)."""
    import tempfile

    from learning.encoder_refresh import tune_encoder
    from learning.settings import LearningSettings

    def refresh(labelled: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        tuned = tune_encoder(
            [inputs[i] for i in labelled],
            y[labelled],
            [str(g) for g in groups[labelled]],
            LABELS,
            LearningSettings(seed=seed),
        )
        with tempfile.TemporaryDirectory() as folder:
            tuned.save(Path(folder))
            vectors, _ = around_vectors(Encoder(folder, runtime="torch"), inputs, rows)
        out = np.zeros((len(inputs), vectors.shape[1]), dtype=np.float32)
        out[rows] = vectors
        line = {"refresh": int(len(labelled)), "seconds": round(time.perf_counter() - started, 1)}
        print(json.dumps(line), file=sys.stderr, flush=True)
        return out

    return refresh


def default_loop(args, inputs, y, groups, embed, train, dev, test):
    """Learning curves of the default learner (embedding + lexical heads, self-trained on the
    pool's surest messages unless --no-self-training) per strategy, with the app's encoder
    refresh in the loop from --refresh-from labels (0: without)."""
    from al_loop import curve, fit_score, summarise

    from learning.lexical import LexicalSpec

    x = embed["features"]["around"]
    counts = LexicalSpec().transform([i.text for i in inputs])
    split, refresh_from, self_training = args.split, args.refresh_from, not args.no_self_training
    seeds = [int(s) for s in args.seeds.split(",")]
    budgets = [int(b) for b in args.budgets.split(",")]
    strategies = args.strategies.split(",")
    pool, scored = (train, dev) if split == "dev" else (np.concatenate([train, dev]), test)
    own = x[:, : embed["encoder_dim"]]
    runs: dict[str, list[list[float]]] = {}
    t0 = time.perf_counter()
    for seed in seeds:  # seeds outermost: an interrupted run still compares like with like
        for name in strategies:
            scores = curve(
                x,
                counts,
                y,
                LABELS,
                own,
                pool,
                scored,
                name,
                budgets,
                seed,
                refresher=refresher_for(inputs, y, groups, np.concatenate([pool, scored]), seed)
                if refresh_from
                else None,
                refresh_from=refresh_from,
                self_training=self_training,
            )
            runs.setdefault(name, []).append(scores)
            line = {"strategy": name, "seed": seed, "macro_f1": scores}
            print(json.dumps(line), file=sys.stderr, flush=True)
    full = {
        f"{'embed+lexical' if lex else 'embed'}": round(
            fit_score(x, counts, y, LABELS, pool, scored, 0, lex), 4
        )
        for lex in (True, False)
    }
    return {
        "split": split,
        "pool": int(len(pool)),
        "scored": int(len(scored)),
        "budgets": budgets,
        "seeds": seeds,
        "encoder_refresh_from": refresh_from,
        "self_training": self_training,
        "strategies": summarise(budgets, runs),
        "per_seed": runs,
        "all_labels_macro_f1": full,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-finetune", action="store_true")
    parser.add_argument(
        "--finetune-contexts",
        default="none:0,previous:1,around:1",
        help="mode:turns pairs to fine-tune, comma-separated",
    )
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--strategies", default="auto,random,cluster-margin,badge,breaking-ties")
    parser.add_argument("--budgets", default="50,100,200,400,800,1600")
    parser.add_argument(
        "--split",
        choices=["dev", "test"],
        default="test",
        help="dev: pool = train, scored on dev (for choosing); test: pool = train + dev",
    )
    parser.add_argument(
        "--refresh-from",
        type=int,
        default=LearningSettings().encoder_refresh_from,
        help="labels of the loop's first encoder refresh, then at each doubling; 0 (the "
        "app's default): frozen encoder only (fast)",
    )
    parser.add_argument(
        "--no-self-training",
        action="store_true",
        help="the learner without pseudo-labels (learning.self_training), for comparison",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("/tmp/techne-annomi-embeddings.npz"),
        help="embedding cache between runs (outside the repo)",
    )
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} is missing: this benchmark reads AnnoMI from ../shared/data")
    contexts = []
    for pair in args.finetune_contexts.split(","):
        mode, _, turns = pair.partition(":")
        contexts.append((mode, int(turns or 1)))
    after = max([following_turns(m, t) for m, t in contexts] + [1])
    inputs, y, groups = load_annomi(DATA, 3, after)
    train, dev, test = splits(groups, 0)
    fit_rows = np.concatenate([train, dev])  # the embed head has no use for a dev split
    report: dict = {
        "benchmark": "al_annomi",
        "data": {
            "therapist_messages": int(len(y)),
            "train": int(len(fit_rows)),
            "test": int(len(test)),
            "test_transcripts": int(len(set(groups[test]))),
        },
    }
    embed = embed_results(inputs, y, train, dev, test, args.cache)
    report["full_labels"] = embed["results"]
    report["default_loop"] = default_loop(args, inputs, y, groups, embed, train, dev, test)
    if not args.skip_finetune:
        report["full_labels"].update(finetune_results(inputs, y, train, dev, test, contexts))
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} cpus"
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
