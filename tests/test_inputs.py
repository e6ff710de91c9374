"""What a model sees of a message: turns before and after it, from a table, a store and a
streamed file; context settings are validated."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import seeds
from learning import predict
from learning.inputs import (
    ModelInput,
    Turn,
    check_context,
    context_segment,
    context_sides,
    following_turns,
    with_context,
)
from learning.settings import LearningSettings
from store import Repository, WorkspaceError, load_codebook_file
from store.io import ColumnMap, import_file

# two conversations; b's turns interleaved with a's in the file order of some tests
ROWS = [
    ("a", "therapist", "what brings you in"),
    ("a", "client", "my drinking"),
    ("a", "therapist", "you want to cut down"),
    ("a", "client", "yeah"),
    ("a", "therapist", "how much a week"),
    ("b", "therapist", "hello"),
    ("b", "client", "hi"),
    ("b", "therapist", "so you came back"),
]


def table(rows: list[tuple[str, str, str]], turns: int, after: int) -> list[ModelInput]:
    convs, speakers, texts = zip(*rows, strict=True)
    return with_context(list(texts), list(speakers), list(convs), turns, after)


def test_with_context_sees_turns_before_and_after_within_a_conversation() -> None:
    items = table(ROWS, 1, 2)
    assert items[2].context == (Turn("client", "my drinking"),)
    assert items[2].following == (Turn("client", "yeah"), Turn("therapist", "how much a week"))
    assert items[4].following == ()  # the conversation ends: nothing from conversation b
    assert items[5].context == () and items[5].following[0] == Turn("client", "hi")
    assert all(x.following == () for x in table(ROWS, 2, 0))


def test_around_sides_and_other_segments() -> None:
    item = table(ROWS, 2, 2)[2]
    assert context_sides(item, "around", 1) == ("client: my drinking", "client: yeah")
    assert context_sides(item, "around", 2) == (
        "therapist: what brings you in | client: my drinking",  # before: oldest first
        "client: yeah | therapist: how much a week",  # after: nearest first
    )
    assert context_sides(table(ROWS, 1, 1)[0], "around", 1) == ("", "client: my drinking")
    assert context_sides(item, "previous", 1) is None
    assert context_segment(item, "around", 1) is None  # around is given by its sides
    assert context_segment(item, "previous", 1) == "my drinking"
    assert context_segment(item, "window", 2) == (
        "client: my drinking | therapist: what brings you in"
    )
    assert following_turns("around", 2) == 2 and following_turns("window", 2) == 0


def test_context_settings_are_validated() -> None:
    check_context("around", 1)
    check_context("none", 0)
    with pytest.raises(ValueError, match="context mode must be one of"):
        check_context("both", 1)
    with pytest.raises(ValueError, match="context_turns"):
        check_context("around", 0)
    LearningSettings(backend="finetune", context_mode="around", context_turns=1).validate()
    bad = [
        dict(context_mode="sideways"),
        dict(context_mode="around", context_turns=0),
        dict(context_mode="previous", epochs=0),
        dict(context_mode="previous", lr=0.0),
        dict(context_mode="previous", max_length=4),
    ]
    for values in bad:
        with pytest.raises(WorkspaceError, match="settings"):
            LearningSettings(**{"backend": "finetune", **values}).validate()  # type: ignore[arg-type]


def write_csv(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["id", "conversation", "speaker", "text"])
        out.writerows([(f"m{i}", *row) for i, row in enumerate(rows)])
    return path


COLUMNS = ColumnMap(
    text="text",
    speaker="speaker",
    conversation="conversation",
    id="id",
    labelable_speakers=("therapist",),
)


def streamed(path: Path, chunk_rows: int, after: int) -> list[list[tuple[str, str, ModelInput]]]:
    return list(predict._chunks(path, COLUMNS, 1, None, chunk_rows, after))


def test_streamed_chunks_carry_the_next_turn_across_chunk_boundaries(tmp_path: Path) -> None:
    """The last message of a chunk still gets its reply, which is read after the chunk is
    full; chunks keep file order and their sizes, so a resumed run cuts them the same."""
    path = write_csv(tmp_path / "grouped.csv", ROWS)
    expected = [
        (f"m{i}", ROWS[i][0], x)
        for i, x in enumerate(table(ROWS, 1, 1))
        if ROWS[i][1] == "therapist"
    ]
    for chunk_rows in (1, 2, 100):
        chunks = streamed(path, chunk_rows, after=1)
        assert [x for chunk in chunks for x in chunk] == expected
        assert [len(c) for c in chunks[:-1]] == [chunk_rows] * (len(chunks) - 1)
    assert all(x.following == () for c in streamed(path, 2, after=0) for _, _, x in c)


def test_streamed_chunks_follow_interleaved_conversations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Conversations interleaved in the file: each message gets its own conversation's next
    turn, output stays in file order; past FOLLOWING_ROWS a message goes without it."""
    order = [0, 5, 1, 6, 2, 7, 3, 4]
    path = write_csv(tmp_path / "mixed.csv", [ROWS[i] for i in order])
    grouped = table(ROWS, 1, 1)
    expected = [grouped[i] for i in order if ROWS[i][1] == "therapist"]
    got = [x for c in streamed(path, 2, after=1) for _, _, x in c]
    assert got == expected
    monkeypatch.setattr(predict, "FOLLOWING_ROWS", 1)  # replies come two rows later here
    got = [x for c in streamed(path, 2, after=1) for _, _, x in c]
    assert [x.text for x in got] == [x.text for x in expected]
    assert got[0].following == () and got[-1].following == ()


def test_pool_inputs_carry_following_turns(tmp_path: Path) -> None:
    """Inputs built from the store for a round match those built from the file."""
    from learning.pool import Pool
    from learning.rounds import pool_inputs

    path = write_csv(tmp_path / "c.csv", ROWS)
    repo = Repository.open(f"sqlite:///{tmp_path / 'techne.db'}", create=True)
    try:
        repo.install_codebook(load_codebook_file(seeds.CODEBOOKS / "mi.toml"))
        repo.codebook_key = "mi"
        import_file(repo, path, COLUMNS)
        pool = Pool.build(repo, repo.codebook(), eval_share=0.0)
        expected = [
            x for row, x in zip(ROWS, table(ROWS, 2, 1), strict=True) if row[1] == "therapist"
        ]
        assert pool_inputs(repo, pool, 2, 1) == expected
        assert pool_inputs(repo, pool, 2) == [
            ModelInput(x.text, x.speaker, x.context) for x in expected
        ]
    finally:
        repo.close()
