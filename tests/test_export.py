"""Export of gold datasets: gold policy, provenance columns, context, splits, CSV formula
neutralisation, private atomic files, dataset card, and the AnnoMI round trip (export each
format, import the export into a new workspace, get every label back).

Small synthetic stores are built per test (on SQLite and PostgreSQL through `annomi_repo`);
the AnnoMI tests run on SQLite only.
"""

from __future__ import annotations

import csv
import importlib
import json
import re
import stat
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow.parquet as pq
import pytest

from store import Repository, StoreError, load_workspace
from store import models as m
from store.io import ColumnMap, ExportOptions, export, format_for, gold_rows, import_file
from store.io.export import SPLIT_NAMES, neutralise
from tests.conftest import ANNOMI_ARGS
from tui.cli import main

# `store.io.export` the module (the package re-exports a function of the same name).
export_mod = importlib.import_module("store.io.export")

COLS = ColumnMap(
    text="text",
    speaker="speaker",
    conversation="conversation",
    order="turn",
    id="id",
    labelable_speakers=("therapist",),
)
LABELLED_COLS = ColumnMap(
    text="text",
    speaker="speaker",
    conversation="conversation",
    order="turn",
    id="id",
    label="label",
    annotator="alice",
    labelable_speakers=("therapist",),
)
# Columns of an export, read back by `techne import`.
REIMPORT_ARGS = [
    "--text",
    "text",
    "--speaker",
    "speaker",
    "--conversation",
    "conversation_id",
    "--order",
    "position",
    "--id",
    "message_id",
    "--label",
    "label",
    "--annotator",
    "roundtrip",
]
ANNOMI_COUNTS = {"reflection": 1296, "question": 1386, "therapist_input": 614, "other": 1586}

# The small corpus: (id, conversation, turn, speaker, text).
TURNS = [
    ("c1-0", "c1", 0, "client", "Hello, thanks for seeing me."),
    ("c1-1", "c1", 1, "therapist", "What brings you here today?"),
    ("c1-2", "c1", 2, "client", "My drinking, I guess."),
    ("c1-3", "c1", 3, "therapist", "You're worried about your drinking."),
    ("c1-4", "c1", 4, "client", "Yes."),
    ("c1-5", "c1", 5, "therapist", "Tell me more."),
    ("c2-0", "c2", 0, "therapist", "Welcome back."),
    ("c2-1", "c2", 1, "client", "Thanks."),
    ("c2-2", "c2", 2, "therapist", "Smoking harms your lungs."),
    ("c2-3", "c2", 3, "therapist", "So you want to quit."),
    ("c2-4", "c2", 4, "therapist", "Nobody labelled this one."),
]
TEXT = {t[0]: t[4] for t in TURNS}
SPEAKER = {t[0]: t[3] for t in TURNS}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def turn_rows(turns: list[tuple[str, str, int, str, str]]) -> list[dict[str, Any]]:
    return [
        {"id": i, "conversation": c, "turn": n, "speaker": s, "text": t} for i, c, n, s, t in turns
    ]


def ids_of(repo: Repository) -> dict[str, int]:
    return {msg.external_id: msg.id for msg in repo.iter_messages()}


@pytest.fixture
def small(annomi_repo: Repository, tmp_path: Path) -> tuple[Repository, dict[str, int]]:
    """The small corpus with events from three experts and an adjudicating lead.

    c1-1 single (alice question); c1-3 majority 2/3 reflection; c1-5 tie (no gold);
    c2-0 adjudicated question over a tie; c2-2 adjudicated therapist_input over a unanimous
    'other'; c2-3 alice labels then corrects to reflection (single, 2 events); c2-4 none.
    """
    repo = annomi_repo
    import_file(repo, write_jsonl(tmp_path / "small.jsonl", turn_rows(TURNS)), COLS)
    for name in ("alice", "bob", "carol"):
        repo.ensure_annotator(name, "expert")
    repo.ensure_annotator("lead", "lead")
    ids = ids_of(repo)

    def ev(ext: str, who: str, kind: str, *labels: str) -> int:
        return repo.add_event(ids[ext], who, kind, labels)

    ev("c1-1", "alice", "label", "question")
    ev("c1-3", "alice", "label", "reflection")
    ev("c1-3", "bob", "label", "reflection")
    ev("c1-3", "carol", "label", "question")
    ev("c1-5", "alice", "label", "question")
    ev("c1-5", "bob", "label", "other")
    ev("c2-0", "alice", "label", "reflection")
    ev("c2-0", "bob", "label", "question")
    ev("c2-0", "lead", "adjudicate", "question")
    ev("c2-2", "alice", "label", "other")
    ev("c2-2", "bob", "label", "other")
    ev("c2-2", "lead", "adjudicate", "therapist_input")
    ev("c2-3", "alice", "label", "question")
    ev("c2-3", "alice", "correct", "reflection")
    return repo, ids


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["message_id"]: r for r in rows}


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def snapshot(path: Path) -> dict[str, bytes]:
    """Relative path -> bytes of a file, or of every file under a folder."""
    if path.is_dir():
        return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    return {"": path.read_bytes()}


def card_path(out: Path, fmt: str) -> Path:
    return out / "README.md" if fmt == "hf" else out.with_name(out.name + ".card.md")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    # split on \n only: str.splitlines() would also split inside a text holding U+2028
    lines = path.read_bytes().decode("utf-8").split("\n")
    return [json.loads(line) for line in lines if line]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def gold_labels(workspace: Path) -> dict[str, tuple[str, ...]]:
    """External message id -> gold labels (single policy) of a workspace's store."""
    ws = load_workspace(workspace)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    try:
        external = {msg.id: msg.external_id for msg in repo.iter_messages()}
        return {external[mid]: g.labels for mid, g in repo.gold("single").items()}
    finally:
        repo.close()


def texts(workspace: Path) -> dict[str, str]:
    ws = load_workspace(workspace)
    repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key)
    try:
        return {msg.external_id: msg.text for msg in repo.iter_messages()}
    finally:
        repo.close()


def annomi_expected(path: Path) -> dict[str, tuple[str, ...]]:
    """The labels the AnnoMI file itself holds, keyed as the importer names its messages."""
    with path.open(newline="", encoding="utf-8") as fh:
        return {
            f"{r['transcript_id']}:{r['utterance_id']}": (r["main_therapist_behaviour"],)
            for r in csv.DictReader(fh)
            if r["interlocutor"] == "therapist" and r["main_therapist_behaviour"] != "n/a"
        }


def annomi_sqlite_repo(tmp_path: Path, csv_path: Path) -> Repository:
    import seeds
    from store import load_codebook_file

    repo = Repository.open(f"sqlite:///{tmp_path / 'annomi.db'}", create=True)
    repo.install_codebook(load_codebook_file(seeds.CODEBOOKS / "annomi.toml"))
    repo.codebook_key = "annomi"
    import_file(
        repo,
        csv_path,
        ColumnMap(
            text="utterance_text",
            speaker="interlocutor",
            conversation="transcript_id",
            order="utterance_id",
            label="main_therapist_behaviour",
            annotator="annomi",
            labelable_speakers=("therapist",),
        ),
    )
    return repo


# -- gold policy, provenance columns, context ------------------------------------------------


def test_gold_policy_single_includes_every_resolved_source(small: Any) -> None:
    """gold=single gives single, majority and adjudicated rows in conversation order; ties drop."""
    repo, _ = small
    rows = gold_rows(repo, ExportOptions(gold="single", context_turns=2))
    assert [r["message_id"] for r in rows] == ["c1-1", "c1-3", "c2-0", "c2-2", "c2-3"]
    got = {r["message_id"]: (r["label"], r["labels"], r["gold_source"]) for r in rows}
    assert got == {
        "c1-1": ("question", ["question"], "single"),
        "c1-3": ("reflection", ["reflection"], "majority"),
        "c2-0": ("question", ["question"], "adjudicated"),
        "c2-2": ("therapist_input", ["therapist_input"], "adjudicated"),
        "c2-3": ("reflection", ["reflection"], "single"),
    }
    for r in rows:
        assert r["conversation_id"] == r["message_id"].split("-")[0]
        assert r["text"] == TEXT[r["message_id"]]
        assert r["speaker"] == "therapist"
        assert r["position"] == int(r["message_id"].split("-")[1])


def test_gold_policy_majority_drops_single_and_ties(small: Any) -> None:
    """gold=majority keeps majority and adjudicated rows only; a 1-1 tie has no majority."""
    repo, _ = small
    rows = by_id(gold_rows(repo, ExportOptions(gold="majority")))
    assert set(rows) == {"c1-3", "c2-0", "c2-2"}
    assert {k: r["gold_source"] for k, r in rows.items()} == {
        "c1-3": "majority",
        "c2-0": "adjudicated",
        "c2-2": "adjudicated",
    }


def test_gold_policy_adjudicated_only(small: Any) -> None:
    """gold=adjudicated keeps only adjudicated rows, and adjudication beats a unanimous vote."""
    repo, _ = small
    rows = gold_rows(repo, ExportOptions(gold="adjudicated"))
    assert [r["message_id"] for r in rows] == ["c2-0", "c2-2"]
    assert all(r["gold_source"] == "adjudicated" for r in rows)
    assert all(r["adjudicator"] == "lead" for r in rows)
    assert by_id(rows)["c2-2"]["labels"] == ["therapist_input"]
    assert all(
        r["adjudicator"] is None
        for r in gold_rows(repo, ExportOptions())
        if r["gold_source"] != "adjudicated"
    )


def test_unknown_gold_policy_is_a_store_error(small: Any) -> None:
    """An unknown --gold value raises StoreError naming the allowed levels."""
    repo, _ = small
    with pytest.raises(StoreError, match="adjudicated, majority, single"):
        gold_rows(repo, ExportOptions(gold="best"))


def test_provenance_agreement_annotators_event_count(small: Any) -> None:
    """Agreement (2 of 3 -> 0.667; None for one coder), annotators, coders and event counts."""
    repo, _ = small
    rows = by_id(gold_rows(repo, ExportOptions(gold="single")))
    expect = {
        # id: (agreement, annotators, n_annotators, event_count, coders)
        "c1-1": (None, ["alice"], 1, 1, [("alice", "question")]),
        "c1-3": (
            2 / 3,
            ["alice", "bob", "carol"],
            3,
            3,
            [("alice", "reflection"), ("bob", "reflection"), ("carol", "question")],
        ),
        "c2-0": (0.5, ["alice", "bob"], 2, 3, [("alice", "reflection"), ("bob", "question")]),
        "c2-2": (0.0, ["alice", "bob"], 2, 3, [("alice", "other"), ("bob", "other")]),
        "c2-3": (None, ["alice"], 1, 2, [("alice", "reflection")]),
    }
    for ext, (agreement, annotators, n, events, coders) in expect.items():
        row = rows[ext]
        if agreement is None:
            assert row["agreement"] is None, ext
        else:
            assert row["agreement"] == pytest.approx(agreement), ext
        assert row["annotators"] == annotators, ext
        assert row["n_annotators"] == n, ext
        assert row["event_count"] == events, ext
        assert [(c["annotator"], c["label"]) for c in row["coders"]] == coders, ext
        assert row["model_version"] is None, ext
    assert round(rows["c1-3"]["agreement"], 3) == 0.667


def test_context_turns_reset_at_conversation_boundary(small: Any) -> None:
    """Each row carries the previous N turns of its own conversation, client turns included."""
    repo, _ = small
    rows = by_id(gold_rows(repo, ExportOptions(context_turns=2)))

    def turns(*ids: str) -> list[dict[str, str]]:
        return [{"speaker": SPEAKER[i], "text": TEXT[i]} for i in ids]

    assert rows["c1-1"]["context"] == turns("c1-0")
    assert rows["c1-3"]["context"] == turns("c1-1", "c1-2")
    assert rows["c2-0"]["context"] == []  # first turn of c2: nothing from c1 leaks in
    assert rows["c2-2"]["context"] == turns("c2-0", "c2-1")
    assert rows["c2-3"]["context"] == turns("c2-1", "c2-2")
    wide = by_id(gold_rows(repo, ExportOptions(context_turns=10)))
    assert wide["c2-3"]["context"] == turns("c2-0", "c2-1", "c2-2")
    assert wide["c1-3"]["context"] == turns("c1-0", "c1-1", "c1-2")
    none = gold_rows(repo, ExportOptions(context_turns=0))
    assert all(r["context"] == [] for r in none)


def test_model_version_tag_of_the_suggestion(small: Any) -> None:
    """model_version is the tag of the model whose suggestion was on screen, else None."""
    repo, ids = small
    with repo.session() as s:
        version = m.ModelVersion(tag="round-1", backend="test")
        s.add(version)
        s.commit()
        vid = version.id
    repo.add_event(ids["c2-4"], "carol", "label", ["other"], model_version_id=vid)
    rows = by_id(gold_rows(repo, ExportOptions()))
    assert rows["c2-4"]["model_version"] == "round-1"
    assert rows["c1-1"]["model_version"] is None


# -- splits -----------------------------------------------------------------------------------


@pytest.fixture
def many(annomi_repo: Repository, tmp_path: Path) -> Repository:
    """30 conversations with 1-5 labelled therapist turns each (single annotator)."""
    rows = []
    labels = ["reflection", "question", "therapist_input", "other"]
    for c in range(30):
        for t in range(1 + c % 5):
            rows.append(
                {
                    "id": f"k{c}-{t}",
                    "conversation": f"k{c}",
                    "turn": t,
                    "speaker": "therapist",
                    "text": f"turn {t} of conversation {c}",
                    "label": labels[(c + t) % 4],
                }
            )
    import_file(annomi_repo, write_jsonl(tmp_path / "many.jsonl", rows), LABELLED_COLS)
    return annomi_repo


def split_of(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Conversation -> split, asserting no conversation is in two splits."""
    seen: dict[str, set[str]] = {}
    for r in rows:
        seen.setdefault(r["conversation_id"], set()).add(r["split"])
    assert all(len(v) == 1 for v in seen.values()), {k: v for k, v in seen.items() if len(v) > 1}
    return {k: next(iter(v)) for k, v in seen.items()}


def test_split_is_conversation_grouped_and_seeded(many: Repository) -> None:
    """No conversation spans two splits; a seed repeats exactly; other seeds may differ."""
    options = ExportOptions(split=(0.6, 0.2, 0.2), seed=7)
    rows = gold_rows(many, options)
    assert len(rows) == sum(1 + c % 5 for c in range(30))
    assert {r["split"] for r in rows} == set(SPLIT_NAMES)
    first = split_of(rows)
    assert len(first) == 30
    again = [(r["message_id"], r["split"]) for r in gold_rows(many, options)]
    assert again == [(r["message_id"], r["split"]) for r in rows]
    assignments = {
        tuple(
            sorted(split_of(gold_rows(many, ExportOptions(split=(0.6, 0.2, 0.2), seed=s))).items())
        )
        for s in range(5)
    }
    assert len(assignments) > 1
    assert "split" not in gold_rows(many, ExportOptions())[0]


def test_split_shares_on_annomi(tmp_path: Path, annomi_csv: Path) -> None:
    """On AnnoMI (SQLite) the train share is within 5 points of 0.8 and grouping holds."""
    repo = annomi_sqlite_repo(tmp_path, annomi_csv)
    try:
        for seed in (0, 1, 2):
            rows = gold_rows(repo, ExportOptions(split=(0.8, 0.1, 0.1), seed=seed))
            assert len(rows) == 4882
            split_of(rows)
            sizes = Counter(r["split"] for r in rows)
            assert abs(sizes["train"] / len(rows) - 0.8) <= 0.05, (seed, sizes)
            assert sizes["dev"] > 0 and sizes["test"] > 0, (seed, sizes)
    finally:
        repo.close()


# -- CSV --------------------------------------------------------------------------------------


FORMULA_TEXTS = {
    "f-eq": '=HYPERLINK("http://evil","x")',
    "f-plus": "+1 555 0100",
    "f-minus": "-5 points for that",
    "f-at": "@SUM(A1:A9)",
    "f-plain": "A plain sentence = fine.",
    "f-multi": 'He said "stop"\nand then, "quietly", left.\r\nDone.',
}


def test_csv_neutralises_formula_cells(annomi_repo: Repository, tmp_path: Path) -> None:
    """CSV cells starting with = + - @ get a leading quote; others, multiline text, survive."""
    rows = [
        {"id": k, "conversation": "f", "turn": n, "speaker": "therapist", "text": t}
        for n, (k, t) in enumerate(FORMULA_TEXTS.items())
    ]
    import_file(annomi_repo, write_jsonl(tmp_path / "f.jsonl", rows), COLS)
    annomi_repo.ensure_annotator("=cmd|calc")
    ids = ids_of(annomi_repo)
    for k in FORMULA_TEXTS:
        annomi_repo.add_event(ids[k], "=cmd|calc", "label", ["question"])
    out = tmp_path / "out" / "gold.csv"
    out.parent.mkdir()
    export(annomi_repo, out, ExportOptions(fmt="csv", context_turns=1))
    got = {r["message_id"]: r for r in read_csv(out)}
    assert set(got) == set(FORMULA_TEXTS)
    for k, text in FORMULA_TEXTS.items():
        row = got[k]
        expected = "'" + text if text[0] in "=+-@" else text
        assert row["text"] == expected, k
        assert row["label"] == "question"
        assert row["annotators"] == "'=cmd|calc"
        assert row["coders"] == "'=cmd|calc=question"
        assert row["conversation_id"] == "f"
        assert row["speaker"] == "therapist"
        assert row["gold_source"] == "single"
        assert row["agreement"] == "" and row["model_version"] == ""
        assert row["event_count"] == "1"
    # context is "speaker: text", so it never starts with a formula character
    assert got["f-plus"]["context"] == "therapist: " + FORMULA_TEXTS["f-eq"]
    assert "labels" not in got["f-eq"]


def test_neutralise_function() -> None:
    """neutralise() prefixes = + - @ (and tab/CR) with a quote and leaves other text alone."""
    for cell in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert neutralise(cell) == "'" + cell
    for cell in ("", "plain", "'quoted", " =spaced", "a=b"):
        assert neutralise(cell) == cell


# -- markup and escapes -------------------------------------------------------------------------


MARKUP = {
    "r-rich": "[bold]hi[/]",
    "r-ansi": "\x1b[31mred\x1b[0m",
    "r-mixed": "[link=http://x]click[/link] \x1b]8;;http://y\x1b\\y\x1b]8;;\x1b\\ \u2028 end",
}


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_markup_and_escapes_survive(annomi_repo: Repository, tmp_path: Path, fmt: str) -> None:
    """Rich markup and ANSI escapes in text come out identical in JSONL and Parquet."""
    rows = [
        {"id": k, "conversation": "r", "turn": n, "speaker": "therapist", "text": t}
        for n, (k, t) in enumerate(MARKUP.items())
    ]
    import_file(annomi_repo, write_jsonl(tmp_path / "r.jsonl", rows), COLS)
    annomi_repo.ensure_annotator("alice")
    ids = ids_of(annomi_repo)
    for k in MARKUP:
        annomi_repo.add_event(ids[k], "alice", "label", ["other"])
    out = tmp_path / f"gold.{fmt}"
    export(annomi_repo, out, ExportOptions(fmt=fmt, context_turns=2))
    back = read_jsonl(out) if fmt == "jsonl" else pq.read_table(out).to_pylist()
    got = {r["message_id"]: r for r in back}
    for k, text in MARKUP.items():
        assert got[k]["text"].encode("utf-8") == text.encode("utf-8"), k
    assert [t["text"] for t in got["r-mixed"]["context"]] == [MARKUP["r-rich"], MARKUP["r-ansi"]]


# -- files: modes, card, atomicity -------------------------------------------------------------


FORMATS = [
    ("jsonl", "gold.jsonl"),
    ("csv", "gold.csv"),
    ("parquet", "gold.parquet"),
    ("hf", "gold"),
]


@pytest.mark.parametrize(("fmt", "name"), FORMATS)
def test_files_are_private_and_card_is_beside(
    small: Any, tmp_path: Path, fmt: str, name: str
) -> None:
    """Output and card are mode 0600 (every file of an hf folder too); the card sits beside."""
    repo, _ = small
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / name
    report = export(repo, out, ExportOptions(fmt=fmt, split=(0.5, 0.25, 0.25), seed=1))
    card = card_path(out, fmt)
    assert report.card == str(card) and report.path == str(out)
    assert report.rows == 5 and report.conversations == 2
    assert card.is_file()
    files = [p for p in out.rglob("*") if p.is_file()] if fmt == "hf" else [out, card]
    assert files and card in files
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    if fmt == "hf":
        assert out.is_dir()
        for d in [out, *(p for p in out.rglob("*") if p.is_dir())]:
            assert stat.S_IMODE(d.stat().st_mode) & 0o077 == 0, d
        assert sorted(p.name for p in folder.iterdir()) == [name]
    else:
        assert sorted(p.name for p in folder.iterdir()) == sorted([name, card.name])


def test_card_contents(small: Any, tmp_path: Path) -> None:
    """The card names counts, label distribution, annotators, agreement, alpha, codebook, date."""
    repo, _ = small
    before = datetime.now(UTC)
    export(repo, tmp_path / "gold.jsonl", ExportOptions(fmt="jsonl", context_turns=2))
    after = datetime.now(UTC)
    card = (tmp_path / "gold.jsonl.card.md").read_text(encoding="utf-8")
    assert "Messages: 5 in 2 conversations" in card
    assert "Gold sources: adjudicated 2, majority 1, single 2" in card
    for line in (
        "| reflection | 2 | 40.0% |",
        "| question | 2 | 40.0% |",
        "| therapist_input | 1 | 20.0% |",
        "| other | 0 | 0.0% |",
        "| alice | expert | 5 |",
        "| bob | expert | 3 |",
        "| carol | expert | 1 |",
    ):
        assert line in card, line
    assert "Messages coded by two or more annotators: 3" in card
    assert "Mean share of coders agreeing with the gold label: 0.389" in card
    assert re.search(r"Krippendorff's alpha \(nominal\): -?\d\.\d{3}", card)
    assert "AnnoMI main therapist behaviour" in card and "`annomi`" in card
    stamp = re.search(r"on (\d{4}-\d{2}-\d{2}) \d{2}:\d{2} UTC", card)
    assert stamp and stamp.group(1) in {
        before.strftime("%Y-%m-%d"),
        after.strftime("%Y-%m-%d"),
    }


def test_card_without_multiple_coders_has_no_alpha(many: Repository, tmp_path: Path) -> None:
    """With one coder per message the card says so and prints no Krippendorff's alpha."""
    out = tmp_path / "hf_out"
    export(many, out, ExportOptions(fmt="hf", split=(0.6, 0.2, 0.2)))
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "Every message was coded by one annotator" in card
    assert "Krippendorff" not in card
    assert "| alice | expert | 90 |" in card
    assert "Messages: 90 in 30 conversations" in card
    assert "Split (conversation-grouped, seed 0" in card


def _fail_jsonl(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}

    def dumps(obj: Any, **kwargs: Any) -> str:
        calls["n"] += 1
        if calls["n"] > 1:
            raise RuntimeError("disk full")
        return json.dumps(obj, **kwargs)

    monkeypatch.setattr(export_mod, "json", SimpleNamespace(dumps=dumps))


def _fail_csv(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = export_mod.neutralise

    def broken(cell: str) -> str:
        calls["n"] += 1
        if calls["n"] > 20:
            raise RuntimeError("disk full")
        return real(cell)

    monkeypatch.setattr(export_mod, "neutralise", broken)


def _fail_parquet(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(table: Any, where: Any, *args: Any, **kwargs: Any) -> None:
        Path(where).write_bytes(b"PAR1 half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)


def _fail_hf(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def broken(self: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "data-00000-of-00001.arrow").write_bytes(b"half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", broken)
    monkeypatch.setattr(datasets.DatasetDict, "save_to_disk", broken)


FAILURES = {"jsonl": _fail_jsonl, "csv": _fail_csv, "parquet": _fail_parquet, "hf": _fail_hf}


@pytest.mark.parametrize(("fmt", "name"), FORMATS)
def test_failed_export_leaves_previous_output(
    small: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, name: str
) -> None:
    """A write failing midway leaves the previous output and card untouched, no temp files."""
    repo, _ = small
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / name
    export(repo, out, ExportOptions(fmt=fmt, gold="single"))
    card = card_path(out, fmt)
    before_out, before_card, before_list = snapshot(out), card.read_bytes(), listing(folder)
    FAILURES[fmt](monkeypatch)
    with pytest.raises(RuntimeError, match="disk full"):
        export(repo, out, ExportOptions(fmt=fmt, gold="majority", context_turns=0, force=True))
    assert snapshot(out) == before_out
    assert card.read_bytes() == before_card
    assert listing(folder) == before_list


@pytest.mark.parametrize(("fmt", "name"), FORMATS)
def test_failed_first_export_leaves_nothing(
    small: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, name: str
) -> None:
    """A failing first export leaves no output, no card and no temp files behind."""
    repo, _ = small
    folder = tmp_path / "exports"
    folder.mkdir()
    FAILURES[fmt](monkeypatch)
    with pytest.raises(RuntimeError, match="disk full"):
        export(repo, folder / name, ExportOptions(fmt=fmt))
    assert listing(folder) == []


def test_hf_export_never_replaces_what_is_not_an_export(small: Any, tmp_path: Path) -> None:
    """hf over a plain file or a folder of other things is refused; nothing there changes."""
    repo, _ = small
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "gold").write_text("an old file", encoding="utf-8")
    with pytest.raises(StoreError, match="is a file"):
        export(repo, folder / "gold", ExportOptions(fmt="hf"))
    documents = tmp_path / "Documents"
    documents.mkdir()
    (documents / "thesis.docx").write_text("years of work", encoding="utf-8")
    with pytest.raises(StoreError, match="not replacing it"):
        export(repo, documents, ExportOptions(fmt="hf"))
    assert (folder / "gold").read_text(encoding="utf-8") == "an old file"
    assert listing(documents) == ["thesis.docx"]
    with pytest.raises(StoreError, match="is a folder"):
        export(repo, documents, ExportOptions(fmt="jsonl"))


def test_hf_export_replaces_an_earlier_export_cleanly(small: Any, tmp_path: Path) -> None:
    """A second hf export to the same folder swaps it in whole and leaves no aside copy."""
    repo, _ = small
    out = tmp_path / "exports" / "gold_hf"
    out.parent.mkdir()
    export(repo, out, ExportOptions(fmt="hf"))
    export(repo, out, ExportOptions(fmt="hf", split=(0.6, 0.2, 0.2), force=True))
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == ["gold_hf"]
    assert (out / "dataset_dict.json").exists()


# -- errors -------------------------------------------------------------------------------------


def test_nothing_to_export_is_a_store_error(annomi_repo: Repository, tmp_path: Path) -> None:
    """No gold label (none at all, or none under the policy) raises StoreError, writes nothing."""
    import_file(annomi_repo, write_jsonl(tmp_path / "s.jsonl", turn_rows(TURNS)), COLS)
    out = tmp_path / "exports" / "gold.jsonl"
    out.parent.mkdir()
    with pytest.raises(StoreError, match="nothing to export"):
        export(annomi_repo, out, ExportOptions())
    annomi_repo.ensure_annotator("alice")
    annomi_repo.add_event(ids_of(annomi_repo)["c1-1"], "alice", "label", ["question"])
    with pytest.raises(StoreError, match="nothing to export"):
        export(annomi_repo, out, ExportOptions(gold="majority"))
    assert not out.exists() and not out.with_name("gold.jsonl.card.md").exists()
    assert len(gold_rows(annomi_repo, ExportOptions())) == 1


def test_cli_export_without_gold_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`techne export` with no gold labels exits 1 with 'error:' on stderr and writes nothing."""
    ws = tmp_path / "ws"
    assert main(["init", str(ws), "--codebook", "annomi"]) == 0
    src = write_jsonl(tmp_path / "s.jsonl", turn_rows(TURNS))
    args = ["--speaker", "speaker", "--conversation", "conversation", "--order", "turn"]
    assert main(["-w", str(ws), "import", str(src), *args, "--id", "id"]) == 0
    capsys.readouterr()
    out = tmp_path / "gold.jsonl"
    assert main(["-w", str(ws), "export", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err.lstrip().startswith("error:")
    assert "nothing to export" in captured.err
    assert "Traceback" not in captured.err
    assert not out.exists() and not (tmp_path / "gold.jsonl.card.md").exists()
    assert main(["-w", str(ws), "export", str(out), "--gold", "best"]) == 1
    assert "error:" in capsys.readouterr().err


def test_format_for_guesses_from_name() -> None:
    """The format comes from --format, else the suffix; a name without suffix is hf."""
    assert format_for(Path("a.jsonl"), None) == "jsonl"
    assert format_for(Path("a.CSV"), None) == "csv"
    assert format_for(Path("a.parquet"), None) == "parquet"
    assert format_for(Path("gold_hf"), None) == "hf"
    assert format_for(Path("a.txt"), "csv") == "csv"
    with pytest.raises(StoreError, match="pass --format"):
        format_for(Path("a.txt"), None)
    with pytest.raises(StoreError, match="unknown export format"):
        format_for(Path("a.jsonl"), "xlsx")


# -- the AnnoMI round trip (SQLite) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name", "extra"),
    [
        ("jsonl", "gold.jsonl", []),
        ("csv", "gold.csv", []),
        ("parquet", "gold.parquet", ["--split", "0.8,0.1,0.1", "--seed", "3"]),
        ("hf", "gold_hf", ["--split", "0.8,0.1,0.1"]),
    ],
)
def test_annomi_round_trip(
    tmp_path: Path, annomi_csv: Path, fmt: str, name: str, extra: list[str]
) -> None:
    """Exporting AnnoMI to each format and importing it into a new workspace keeps every label."""
    expected = annomi_expected(annomi_csv)
    assert len(expected) == 4882
    assert Counter(v[0] for v in expected.values()) == ANNOMI_COUNTS

    first, second = tmp_path / "first", tmp_path / "second"
    assert main(["init", str(first), "--codebook", "annomi"]) == 0
    assert main(["-w", str(first), "import", str(annomi_csv), *ANNOMI_ARGS]) == 0
    assert gold_labels(first) == expected

    out = tmp_path / "exports" / name
    out.parent.mkdir()
    assert main(["-w", str(first), "export", str(out), "--format", fmt, *extra]) == 0
    source = out
    if fmt == "hf":
        import datasets

        loaded = datasets.load_from_disk(str(out))
        assert set(loaded) == set(SPLIT_NAMES)
        table = datasets.concatenate_datasets([loaded[s] for s in SPLIT_NAMES])
        assert len(table) == 4882
        source = tmp_path / "from_hf.parquet"
        table.to_parquet(str(source))
        assert (out / "README.md").is_file()
    else:
        assert out.with_name(name + ".card.md").is_file()

    assert main(["init", str(second), "--codebook", "annomi"]) == 0
    fmt_arg = "parquet" if fmt == "hf" else fmt
    args = ["-w", str(second), "import", str(source), "--format", fmt_arg, *REIMPORT_ARGS]
    assert main(args) == 0
    assert gold_labels(second) == expected

    original, copied = texts(first), texts(second)
    assert set(copied) == set(expected)
    for ext in expected:
        text = original[ext]
        if fmt == "csv" and text.startswith(("=", "+", "-", "@", "\t", "\r")):
            assert copied[ext] == "'" + text, ext
        else:
            assert copied[ext] == text, ext


def test_annomi_card_and_rows(tmp_path: Path, annomi_csv: Path) -> None:
    """The AnnoMI export card and rows: 4,882 messages, the per-technique counts, no alpha."""
    repo = annomi_sqlite_repo(tmp_path, annomi_csv)
    try:
        report = export(repo, tmp_path / "a.jsonl", ExportOptions(context_turns=3))
    finally:
        repo.close()
    assert report.rows == 4882 and report.conversations == 133
    assert report.labels == ANNOMI_COUNTS
    rows = read_jsonl(tmp_path / "a.jsonl")
    assert Counter(r["label"] for r in rows) == ANNOMI_COUNTS
    assert all(r["agreement"] is None and r["annotators"] == ["annomi"] for r in rows)
    assert all(len(r["context"]) <= 3 for r in rows)
    card = (tmp_path / "a.jsonl.card.md").read_text(encoding="utf-8")
    assert "Messages: 4,882 in 133 conversations" in card
    assert "| question | 1,386 |" in card and "| other | 1,586 |" in card
    assert "Krippendorff" not in card
