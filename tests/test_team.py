"""Teams: overlap and claims under concurrency, multi-coder import, agreement against the
reference packages, history and adjudication — on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace

import pytest

import seeds
from store import Repository, StoreError, TeamPolicy, Workspace, load_workspace
from store.errors import InputError
from store.io import ColumnMap, import_file
from store.team import live_claims
from store.workspace import init_workspace
from tests.conftest import ANNOMI_FULL, ROOT
from tui.cli import main
from tui.screens.adjudicate import AdjudicateScreen
from tui.screens.agreement import AgreementScreen
from tui.screens.annotate import AnnotateScreen

SIZE = (120, 36)


def shown(widget: object) -> str:
    """The plain text a Static widget displays (Rich tables included)."""
    from rich.console import Console

    console = Console(width=200, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(widget.content)  # type: ignore[attr-defined]
    return console.export_text()


DEMO_COLUMNS = ColumnMap(
    text="text",
    speaker="speaker",
    conversation="conversation_id",
    order="turn",
    labelable_speakers=("therapist",),
    conversation_fields=("topic", "quality", "outcome"),
)


@pytest.fixture
def team(store_url: str, tmp_path: Path) -> Iterator[Workspace]:
    """A workspace of the demo corpus (no labels) on either backend, overlap 30%."""
    path = tmp_path / "team"
    db = None if store_url.startswith("sqlite") else store_url
    init_workspace(path, "mi", db)
    config = path / "techne.toml"
    config.write_text(
        config.read_text().replace("overlap = 0.0 ", "overlap = 0.3 "), encoding="utf-8"
    )
    ws = load_workspace(path)
    repo = ws.open_repository()
    import_file(repo, seeds.demo_corpus(), DEMO_COLUMNS)
    for name in ("ana", "ben", "cai"):
        repo.ensure_annotator(name)
    repo.set_role("maria", "lead")
    repo.close()
    yield ws


def test_overlap_policy_reads_techne_toml(team: Workspace) -> None:
    policy = team.team_policy()
    assert policy.overlap == 0.3 and policy.overlap_coders == 2
    shares = [policy.is_overlap(i) for i in range(1, 10_001)]
    assert abs(sum(shares) / len(shares) - 0.3) < 0.01
    with pytest.raises(Exception, match="overlap must be in"):
        TeamPolicy.from_section({"overlap": 1.5})


def test_claims_never_double_assign(team: Workspace) -> None:
    """Three experts draw from the same queue: every message gets exactly the coders it
    needs, and nobody holds a message somebody else holds unless it is an overlap item."""
    repo = team.open_repository()
    try:
        coders: dict[int, list[str]] = defaultdict(list)
        mine: dict[str, set[int]] = defaultdict(set)
        for _ in range(40):
            for name in ("ana", "ben", "cai"):
                queue = [m for m in repo.queue(name, limit=200) if m not in mine[name]]
                mid = repo.claim_next(name, queue)
                assert mid is not None
                coders[mid].append(name)
                mine[name].add(mid)
        for mid, names in coders.items():
            assert len(names) == len(set(names))
            assert len(names) <= repo.team.coders_needed(mid)
        held = live_claims(repo.engine)
        assert len(held) == 120
        assert any(len(n) == 2 for n in coders.values())  # overlap items got two coders
        # Saving releases the claim; the message leaves the queue once it has its coders.
        single = next(m for m, n in coders.items() if not repo.team.is_overlap(m))
        name = coders[single][0]
        repo.add_event(single, name, "label", ["open_question"])
        assert (single, name) not in {(m, n) for m, n, _ in live_claims(repo.engine)}
        assert all(single not in repo.queue(other) for other in ("ana", "ben", "cai"))
        assert repo.release_claims("ben") > 0
        assert all(n != "ben" for _, n, _ in live_claims(repo.engine))
    finally:
        repo.close()


CLAIMER = """
import sys, time
from store import load_workspace
from store.team import TeamPolicy
from pathlib import Path
ws = load_workspace(Path(sys.argv[1]))
from store import Repository
repo = Repository.open(ws.db_url, codebook_key=ws.codebook_key,
                       team=TeamPolicy(claim_minutes=float(sys.argv[2]) / 60))
print(repo.claim_next("ana", repo.queue("ana", limit=5)), flush=True)
time.sleep(600)
"""


def test_one_save_is_one_transaction(team: Workspace) -> None:
    """repo.save_label writes the event, gives the message back, claims the next one and
    reads it for the screen, all or nothing: a save whose next claim fails writes nothing."""
    repo = team.open_repository()
    try:
        keys = repo.codebook().keys()
        queue = repo.queue("ana")
        first = repo.claim_next("ana", queue)
        assert first is not None
        saved = repo.save_label(
            first, "ana", "label", [keys[0]], candidates=queue[1:], before=2, after=1
        )
        assert saved.kind == "label" and saved.previous is None and saved.next is not None
        shown = saved.next.message.id
        held = {m for m, n, _ in live_claims(repo.engine) if n == "ana"}
        assert held == {shown}  # the saved message given back, the next one taken
        assert saved.next.mine is None and saved.next.suggestion == repo.suggestion(shown)
        assert [t.id for t in saved.next.context] == [t.id for t in repo.context(shown, 2, 1)]
        again = repo.save_label(first, "ana", "label", [keys[1]], following=shown)
        assert again.kind == "correct" and again.previous == (keys[0],)
        assert again.next is not None and again.next.message.id == shown
        before = repo.events(shown)
        with pytest.raises(Exception):  # noqa: B017 - the driver's own integrity error
            repo.save_label(shown, "ana", "skip", candidates=[10**9])  # no such message
        assert repo.events(shown) == before
        assert {m for m, n, _ in live_claims(repo.engine) if n == "ana"} == {shown}
    finally:
        repo.close()


def test_a_killed_sessions_claim_is_released(team: Workspace) -> None:
    """A session killed with SIGKILL cannot release anything: its claim expires instead."""
    lifetime = 3.0
    proc = subprocess.Popen(
        [sys.executable, "-c", CLAIMER, str(team.root), str(lifetime)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    claimed = int(proc.stdout.readline())
    started = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    repo = team.open_repository()
    try:
        repo.team = TeamPolicy(overlap=0.0)
        assert repo.claim_next("ben", [claimed]) is None  # still held by the dead session
        time.sleep(max(0.0, started + lifetime + 0.2 - time.time()))
        assert repo.claim_next("ben", [claimed]) == claimed
    finally:
        repo.close()


# -- import from several coders ----------------------------------------------------------------


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("conv,turn,who,text,code\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_import_with_an_annotator_column(annomi_repo: Repository, tmp_path: Path) -> None:
    cols = ColumnMap(
        text="text", conversation="conv", order="turn", label="code", annotator_column="who"
    )
    good = _write(
        tmp_path / "coders.csv",
        [
            "1,0,a,How are you?,question",
            "1,0,b,How are you?,other",
            "1,1,a,You feel low.,reflection",
        ],
    )
    report = import_file(annomi_repo, good, cols)
    assert (report.messages_added, report.labels_added) == (2, 3)
    first = annomi_repo.message("1:0")
    assert {e.annotator: e.labels for e in annomi_repo.events(first.id)} == {
        "a": ("question",),
        "b": ("other",),
    }
    assert import_file(annomi_repo, good, cols).labels_added == 0  # re-import adds nothing

    twice = _write(tmp_path / "twice.csv", ["2,0,a,Hi,question", "2,0,a,Hi,other"])
    with pytest.raises(InputError, match=r"twice.csv, line 3, column 'who'.*already coded"):
        import_file(annomi_repo, twice, cols)
    changed = _write(tmp_path / "changed.csv", ["3,0,a,Hi,question", "3,0,b,Hello,question"])
    with pytest.raises(InputError, match=r"line 3, column 'text'.*different text"):
        import_file(annomi_repo, changed, cols)
    assert annomi_repo.counts()["messages"] == 2  # nothing partially written
    with pytest.raises(StoreError, match="needs --label"):
        import_file(annomi_repo, good, ColumnMap(text="text", annotator_column="who"))


# -- agreement -------------------------------------------------------------------------------


@pytest.fixture
def annomi_full(tmp_path: Path) -> Iterator[Repository]:
    if not ANNOMI_FULL.exists():
        pytest.skip(f"AnnoMI not available: {ANNOMI_FULL} is missing (../shared absent)")
    repo = Repository.open(f"sqlite:///{tmp_path / 'full.db'}", create=True)
    from store import load_codebook_file

    repo.install_codebook(load_codebook_file(seeds.CODEBOOKS / "annomi.toml"))
    repo.codebook_key = "annomi"
    import_file(
        repo,
        ANNOMI_FULL,
        ColumnMap(
            text="utterance_text",
            speaker="interlocutor",
            conversation="transcript_id",
            order="utterance_id",
            label="main_therapist_behaviour",
            annotator_column="annotator_id",
            labelable_speakers=("therapist",),
        ),
    )
    yield repo
    repo.close()


def test_agreement_matches_krippendorff_and_sklearn_on_annomi_full(
    annomi_full: Repository,
) -> None:
    """Seven transcripts coded by ten annotators: alpha overall and per technique equals the
    `krippendorff` package, every pair's kappa equals scikit-learn's, to 1e-9."""
    import csv

    import krippendorff
    import numpy as np
    from sklearn.metrics import cohen_kappa_score

    units: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    with ANNOMI_FULL.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["interlocutor"] == "therapist":
                key = (row["transcript_id"], row["utterance_id"])
                units[key][row["annotator_id"]] = row["main_therapist_behaviour"]
    coders = sorted({c for u in units.values() for c in u})
    keys = sorted(units)
    labels = sorted({v for u in units.values() for v in u.values()})

    def matrix(value: object) -> np.ndarray:
        return np.array(
            [[value(units[k][c]) if c in units[k] else np.nan for k in keys] for c in coders],  # type: ignore[operator]
            dtype=float,
        )

    report = annomi_full.agreement()
    expected = krippendorff.alpha(
        reliability_data=matrix(labels.index), level_of_measurement="nominal"
    )
    assert report["items_multiply_coded"] == sum(len(u) > 1 for u in units.values()) > 200
    assert math.isclose(report["alpha"], expected, rel_tol=0, abs_tol=1e-9)
    for label in labels:
        binary = krippendorff.alpha(
            reliability_data=matrix(lambda v, label=label: float(v == label)),
            level_of_measurement="nominal",
        )
        got = report["alpha_per_technique"][label]["alpha"]
        assert math.isclose(got, binary, rel_tol=0, abs_tol=1e-9)
    pairs = {(p["a"], p["b"]): p for p in report["pairs"]}
    assert len(pairs) == 45
    for a, b in combinations(coders, 2):
        shared = [k for k in keys if a in units[k] and b in units[k]]
        want = cohen_kappa_score([units[k][a] for k in shared], [units[k][b] for k in shared])
        got = pairs[(a, b)]
        assert got["items"] == len(shared)
        assert math.isclose(got["kappa"], want, rel_tol=0, abs_tol=1e-9)


def test_agreement_and_history_commands(
    team: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = team.open_repository()
    mids = [m.id for m in repo.iter_messages(labelable_only=True)][:6]
    for i, mid in enumerate(mids):
        repo.add_event(mid, "ana", "label", ["open_question"])
        repo.add_event(mid, "ben", "label", ["open_question" if i < 4 else "affirm"])
    repo.add_event(mids[0], "ben", "note", note="[bold]not markup[/bold]")
    message = repo.message(mids[0])
    repo.close()
    ws = ["-w", str(team.root)]
    assert main([*ws, "agreement", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["items_multiply_coded"] == 6
    assert report["pairs"][0]["items"] == 6
    assert report["pairs"][0]["percent_agreement"] == pytest.approx(4 / 6)
    assert main([*ws, "history", message.external_id]) == 0
    text = capsys.readouterr().out
    assert "ana (expert)" in text and "[bold]not markup[/bold]" in text
    assert main([*ws, "history", "no-such-message"]) == 1
    assert main([*ws, "annotators", "add", "ben", "--role", "lead"]) == 0
    assert main([*ws, "annotators", "--json"]) == 0
    capsys.readouterr()
    assert main([*ws, "adjudicate", "--list", "--json"]) == 0
    disputes = json.loads(capsys.readouterr().out)
    assert {d["reason"] for d in disputes} == {"coders"} and len(disputes) == 2


# -- the adjudication screen -----------------------------------------------------------------


def _disagree(ws: Workspace) -> list[int]:
    repo = ws.open_repository()
    mids = [m.id for m in repo.iter_messages(labelable_only=True)][:3]
    repo.add_event(mids[0], "ana", "label", ["open_question"])
    repo.add_event(mids[0], "ben", "label", ["simple_reflection"])
    repo.add_event(mids[0], "ben", "note", note="could be either")
    repo.add_event(mids[1], "cai", "label", ["affirm"])
    repo.add_event(mids[1], "cai", "flag", reason="check the transcript")
    repo.close()
    return mids


async def test_adjudication_decides_the_gold_label(team: Workspace) -> None:
    from tui.app import make_app

    mids = _disagree(team)
    app = make_app(team.root, annotator="maria", adjudicate=True)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, AdjudicateScreen)
        assert [d.message_id for d in screen.disputes] == mids[:2]
        assert [d.reason for d in screen.disputes] == ["coders", "flagged"]
        coders = shown(screen.query_one("#coders"))
        assert "could be either" in coders and "Open question" in coders  # names, not keys
        book = app.codebook.keys()
        await pilot.press(str(book.index("simple_reflection") + 1))
        await pilot.press("n")
        await pilot.press(*"ben is right", "enter")
        await pilot.press("enter")
        await pilot.pause()
        assert [d.message_id for d in screen.disputes] == [mids[1]]
    events = app.repo.events(mids[0])
    decision = events[-1]
    assert (decision.kind, decision.annotator, decision.labels) == (
        "adjudicate",
        "maria",
        ("simple_reflection",),
    )
    assert decision.note == "ben is right"
    gold = app.repo.gold()[mids[0]]
    assert (gold.source, gold.labels, gold.agreement) == (
        "adjudicated",
        ("simple_reflection",),
        0.5,
    )
    app.repo.close()


async def test_only_leads_reach_adjudication_and_agreement_opens(team: Workspace) -> None:
    from tui.app import make_app

    _disagree(team)
    expert = make_app(team.root, annotator="ana")
    async with expert.run_test(size=SIZE) as pilot:
        await pilot.press("A")
        assert isinstance(expert.screen, AnnotateScreen)
        await pilot.press("G")
        assert isinstance(expert.screen, AgreementScreen)
        await expert.workers.wait_for_complete()
        await pilot.pause()
        assert "Cohen's kappa" in shown(expert.screen.query_one("#agreement"))
    expert.repo.close()
    lead = make_app(team.root, annotator="maria")
    async with lead.run_test(size=SIZE) as pilot:
        await pilot.press("A")
        assert isinstance(lead.screen, AdjudicateScreen)
        await pilot.press("q")
        assert isinstance(lead.screen, AnnotateScreen)
    lead.repo.close()
    assert main(["-w", str(team.root), "adjudicate", "--annotator", "ana"]) == 1


async def test_annotating_claims_and_saves_on_either_backend(team: Workspace) -> None:
    """The annotate screen against this backend: the message shown is claimed, enter saves
    it and releases the claim, and a second expert is shown a different message."""
    from tui.app import make_app

    first = make_app(team.root, annotator="ana")
    second = make_app(team.root, annotator="ben")
    async with first.run_test(size=SIZE) as pilot_a, second.run_test(size=SIZE):
        a, b = first.screen, second.screen
        assert isinstance(a, AnnotateScreen) and isinstance(b, AnnotateScreen)
        assert a.current is not None and b.current is not None
        held = {(m, n) for m, n, _ in live_claims(first.repo.engine)}
        assert (a.current.id, "ana") in held and (b.current.id, "ben") in held
        if not first.repo.team.is_overlap(a.current.id):
            assert a.current.id != b.current.id
        saved = a.current.id
        await pilot_a.press("1", "enter")
        assert (saved, "ana") not in {(m, n) for m, n, _ in live_claims(first.repo.engine)}
        assert [e.kind for e in first.repo.events(saved)] == ["label"]
    assert live_claims(first.repo.engine) == []  # closing the apps released their claims
    first.repo.close()
    second.repo.close()


async def test_overlap_coders_do_not_see_each_other(
    team: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An overlap item coded by one expert reaches a second expert with nothing of the first
    expert's label on screen: the selection starts where it would for a fresh message."""
    from tui.app import make_app
    from tui.widgets.suggestions import SuggestionList

    repo = team.open_repository()
    overlap = next(m for m in repo.queue("ana") if repo.team.is_overlap(m))
    keys = repo.codebook().keys()
    repo.ensure_annotator("first-coder")
    repo.add_event(overlap, "first-coder", "label", [keys[3]])
    assert overlap in repo.queue("ben")  # it needs a second coder
    repo.close()
    app = make_app(team.root, annotator="ben")
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, AnnotateScreen)
        screen.session.requeue([overlap])
        screen._advance()
        await pilot.pause()
        assert screen.current is not None and screen.current.id == overlap
        held = {(m, n): e for m, n, e in live_claims(app.repo.engine)}
        later = held[(overlap, "ben")] + 60.0  # a minute into the claim
        monkeypatch.setattr("store.team.time", SimpleNamespace(time=lambda: later))
        screen._renew_claim()  # the screen's interval timer: a long look keeps the message
        renewed = {(m, n): e for m, n, e in live_claims(app.repo.engine)}
        assert renewed[(overlap, "ben")] > held[(overlap, "ben")]
        assert screen.query_one(SuggestionList).selected == 0
        painted = "\n".join(shown(w) for w in screen.query("Static"))
        assert "first-coder" not in painted
        await pilot.press("enter")
    assert set(app.repo.current_labels(overlap, "ben") or ()) == {keys[0]}
    state = next(app.repo.iter_states([overlap]))
    assert set(state.coder_labels) == {"first-coder", "ben"}
    app.repo.close()
