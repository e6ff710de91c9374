"""Progress of long commands: counts, rate and ETA; plain lines when stderr is a log."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from tui.cli import main
from tui.demo import build_demo
from tui.progress import ProgressBar


class Clock:
    """The one boundary faked here: time, so lines and ETAs are exact without sleeping."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def log_console() -> tuple[Console, io.StringIO]:
    sink = io.StringIO()
    return Console(file=sink, force_terminal=False, width=80), sink


def test_off_a_terminal_one_plain_line_every_few_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage callbacks that count (`n of N messages`) get a rate and an ETA; a line is
    written at most every 5 s, plus one when the work ends; never an escape code."""
    monkeypatch.delenv("TECHNE_PROGRESS_INTERVAL", raising=False)
    console, sink = log_console()
    clock = Clock()
    with ProgressBar(console, "retraining", clock=clock) as update:
        update("encoding 0 of 1,000 messages", 0.0)
        clock.now += 2
        update("encoding 100 of 1,000 messages", 0.1)  # 2 s after the last line: not shown
        clock.now += 4
        update("encoding 300 of 1,000 messages", 0.3)
        clock.now += 1
    lines = sink.getvalue().splitlines()
    assert lines == [
        "retraining: encoding 0 of 1,000 messages (0 s so far)",
        "retraining: encoding 300 of 1,000 messages · 50 messages/s · 30% · ETA 14 s (6 s so far)",
        "retraining: done in 7 s",
    ]
    assert "\x1b" not in sink.getvalue()


def test_counts_of_bytes_and_stages_without_counts() -> None:
    """A file read by bytes shows MB read of the total, MB/s and ETA; a stage that gives
    only a fraction gets an ETA from it."""
    console, sink = log_console()
    clock = Clock()
    with ProgressBar(console, "import big.csv", unit="bytes", clock=clock) as update:
        update(0, 40_000_000)
        clock.now += 5
        update(10_000_000, 40_000_000)
    first, second, done = sink.getvalue().splitlines()
    assert second == "import big.csv: 10.0 of 40.0 MB · 2.0 MB/s · 25% · ETA 15 s (5 s so far)"
    console, sink = log_console()
    with ProgressBar(console, "simulating", clock=clock) as update:
        update("model 1/2: epoch 1", 0.0)
        clock.now += 10
        update("model 1/2: epoch 2", 0.25)
    assert "· 25% · ETA 30 s" in sink.getvalue().splitlines()[1]


def test_disabled_gives_no_callback_and_writes_nothing() -> None:
    console, sink = log_console()
    with ProgressBar(console, "quiet", enabled=False) as update:
        assert update is None
    assert sink.getvalue() == ""


def test_encoding_reports_messages_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real encoder path (as retrain and simulate call it) feeds counts: `0 of N`, the
    batches, and `N of N messages`."""
    from learning.encoders import Encoder
    from learning.features import cached_embeddings
    from learning.pool import Pool

    monkeypatch.setenv("TECHNE_PROGRESS_INTERVAL", "0")
    ws = build_demo(tmp_path / "demo", train=False)
    repo = ws.open_repository()
    try:
        ids = Pool.build(repo, repo.codebook(), eval_share=0.0).message_ids[:40]
        console, sink = log_console()
        with ProgressBar(console, "retraining") as update:
            cached_embeddings(repo, Encoder(), ids, update)
    finally:
        repo.close()
    lines = sink.getvalue().splitlines()
    assert lines[0] == "retraining: encoding 0 of 40 messages (0 s so far)"
    assert lines[-2].startswith("retraining: encoding 40 of 40 messages · ")
    assert lines[-1].startswith("retraining: done in ")


def test_import_off_a_terminal_prints_plain_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`techne import` with stderr to a file: a progress line in MB, then the report."""
    monkeypatch.setenv("TECHNE_PROGRESS_INTERVAL", "0")
    assert main(["init", str(tmp_path / "w")]) == 0
    source = tmp_path / "talk.csv"
    source.write_text("text\n" + "".join(f"message {i}\n" for i in range(50)), encoding="utf-8")
    code = main(["-w", str(tmp_path / "w"), "import", str(source)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"import {source.name}: " in err and " MB" in err and "\x1b" not in err
