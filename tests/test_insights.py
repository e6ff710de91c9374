"""Insights: seeded bootstrap intervals checked against known answers, MI indices, outcomes,
the AnnoMI worked example through the real CLI, label sources, and the app's screen."""

from __future__ import annotations

import csv
import json
import shutil
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import seeds
from learning.bootstrap import (
    _resampled_ranks,
    average_ranks,
    correlation,
    correlation_ci,
    difference_ci,
    mean_ci,
    resampled_means,
    rng_for,
)
from learning.insights import (
    CodedCorpus,
    InsightsError,
    analyse,
    mi_indices,
    outcome_fields,
    read_outcome,
)
from store import load_codebook_file
from tests.conftest import ANNOMI_ARGS
from tui.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- the bootstrap against answers known in advance --------------------------------------------


def test_difference_interval_matches_the_hand_computed_bootstrap() -> None:
    """A = [1, 1, 1], B = [0, 1]: mean(B*) - mean(A) is -1, -0.5 or 0 with probability
    1/4, 1/2, 1/4, so the 95% percentile interval is [-1, 0] and the 40% one [-0.5, -0.5]."""
    a, b = np.array([1.0, 1.0, 1.0]), np.array([0.0, 1.0])
    wide = difference_ci(a, b, np.random.default_rng(0), resamples=20_000, level=0.95)
    assert (wide.estimate, wide.low, wide.high) == (-0.5, -1.0, 0.0)
    narrow = difference_ci(a, b, np.random.default_rng(0), resamples=20_000, level=0.40)
    assert (narrow.low, narrow.high) == (-0.5, -0.5)
    reps = resampled_means(b, np.random.default_rng(1), 20_000) - 1.0
    shares = [np.mean(reps == v) for v in (-1.0, -0.5, 0.0)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.015)


@pytest.mark.parametrize(("n", "expected_ratio"), [(20, 0.913), (400, 0.994)])
def test_mean_interval_approaches_the_t_interval(n: int, expected_ratio: float) -> None:
    """For the mean of a normal sample the percentile interval is about mean ± z·s·√((n-1)/n)/√n:
    narrower than the t-interval by 9% at n = 20, within 1% of it at n = 400."""
    x = np.random.default_rng(7).normal(10.0, 2.0, n)
    ci = mean_ci(x, np.random.default_rng(3), resamples=40_000)
    half = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n)
    assert ci.estimate == pytest.approx(x.mean())
    assert (ci.high - ci.low) / (2 * half) == pytest.approx(expected_ratio, abs=0.03)
    if n >= 400:
        assert ci.low == pytest.approx(x.mean() - half, abs=0.04 * half)
        assert ci.high == pytest.approx(x.mean() + half, abs=0.04 * half)


def test_bootstrap_is_seeded_and_per_statistic() -> None:
    """The same seed and name give the same interval; another seed gives another one."""
    x = np.random.default_rng(0).normal(size=50)
    first = mean_ci(x, rng_for(0, "mean:reflection"))
    assert mean_ci(x, rng_for(0, "mean:reflection")) == first
    assert mean_ci(x, rng_for(1, "mean:reflection")) != first
    assert mean_ci(x, rng_for(0, "mean:question")) != first


def test_correlations_and_their_intervals() -> None:
    """Pearson and Spearman (ties averaged) agree with scipy; a perfectly monotone relation
    has rho = 1 in every resample, so its interval is [1, 1]."""
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 5, 40).astype(float), rng.normal(size=40)
    assert correlation(x, y, "pearson") == pytest.approx(stats.pearsonr(x, y)[0])
    assert correlation(x, y, "spearman") == pytest.approx(stats.spearmanr(x, y)[0])
    idx = rng.integers(0, 40, size=(30, 40))
    expected = np.array([average_ranks(x[row]) for row in idx])
    assert np.allclose(_resampled_ranks(x, idx), expected)
    grow = np.arange(12.0)
    ci = correlation_ci(grow, np.exp(grow), rng_for(0, "rho"), "spearman")
    assert (ci.estimate, ci.low, ci.high) == pytest.approx((1.0, 1.0, 1.0))
    assert ci.resamples == 2000


# -- indices, outcomes, zero denominators ------------------------------------------------------


def test_mi_indices_only_where_the_codebook_has_the_codes() -> None:
    """annomi gives R:Q only; the mi codebook all three; supportive has no reflection code."""

    def available(book: str) -> set[str]:
        keys = load_codebook_file(seeds.CODEBOOKS / f"{book}.toml").technique_keys()
        return {k for k, v in mi_indices(keys).items() if not isinstance(v, str)}

    assert available("annomi") == {"reflection_to_question"}
    assert available("mi") == {
        "reflection_to_question",
        "complex_reflection_pct",
        "open_question_pct",
    }
    assert available("supportive") == set()
    spec = mi_indices(load_codebook_file(seeds.CODEBOOKS / "mi.toml").technique_keys())
    rq = spec["reflection_to_question"]
    assert not isinstance(rq, str) and set(rq.numerator) == {
        "simple_reflection",
        "complex_reflection",
    }


def corpus(counts: list[list[int]], outcome: list[object]) -> CodedCorpus:
    """A corpus on the annomi codes (reflection, question, therapist_input, other)."""
    c = np.asarray(counts, dtype=float)
    coded = c.sum(axis=1).astype(int)
    return CodedCorpus(
        codebook="annomi",
        techniques=("reflection", "question", "therapist_input", "other"),
        source="gold",
        model=None,
        conversations=[f"c{i}" for i in range(len(counts))],
        meta=[{"quality": v} for v in outcome],
        counts=c,
        labelable=coded,
        from_gold=coded,
        from_model=np.zeros_like(coded),
    )


def test_zero_denominators_are_left_out_not_counted() -> None:
    """R:Q of a conversation without questions is undefined: it is left out of the index
    (and said so), while its shares still count; a conversation with no codes is left out."""
    data = corpus(
        [[2, 0, 1, 1], [1, 1, 0, 0], [3, 1, 0, 0], [1, 2, 1, 0], [0, 0, 0, 0]],
        ["low", "low", "high", "high", "high"],
    )
    report = analyse(data, "quality", ("low", "high"), resamples=500)
    assert report["indices"]["reflection_to_question"]["undefined"] == 1
    rq = report["outcome"]["indices"]["reflection_to_question"]
    assert rq["conversations"] == {"low": 1, "high": 2}
    assert rq["means"] == {"low": 1.0, "high": pytest.approx((3.0 + 0.5) / 2)}
    share = report["outcome"]["shares"]["reflection"]
    assert share["conversations"] == {"low": 2, "high": 2}
    assert share["estimate"] == pytest.approx((0.75 + 0.25) / 2 - (0.5 + 0.5) / 2)
    assert report["outcome"]["left_out"] == 1
    assert report["profiles"][1]["indices"]["reflection_to_question"] == 1.0
    assert report["profiles"][0]["indices"]["reflection_to_question"] is None


def test_outcome_kinds_and_refusals() -> None:
    """Two values: binary (sorted, or as --groups orders them); more numbers: numeric;
    missing values are left out; anything else is refused with the values named."""
    meta = [
        {"q": "low", "s": "3.5", "t": "a"},
        {"q": "high", "s": 2, "t": "b"},
        {"q": "n/a", "t": "c"},
    ]
    assert read_outcome(meta, "q").groups == ("high", "low")
    assert read_outcome(meta, "q").values == ["low", "high", None]
    assert read_outcome(meta, "q", ("low", "high")).groups == ("low", "high")
    numeric = read_outcome([*meta, {"s": "7"}], "s")
    assert numeric.kind == "numeric" and numeric.values == [3.5, 2.0, None, 7.0]
    with pytest.raises(InsightsError, match="3 values"):
        read_outcome(meta, "t")
    with pytest.raises(InsightsError, match="--conversation-field nope"):
        read_outcome(meta, "nope")
    with pytest.raises(InsightsError, match="mid is not one"):
        read_outcome(meta, "q", ("low", "mid"))
    assert outcome_fields(meta) == ["q", "s"]


# -- the AnnoMI worked example, through the real CLI -------------------------------------------


@pytest.fixture(scope="module")
def annomi_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import ANNOMI_SIMPLE

    if not ANNOMI_SIMPLE.exists():
        pytest.skip(f"AnnoMI not available: {ANNOMI_SIMPLE} is missing (../shared absent)")
    ws = tmp_path_factory.mktemp("insights") / "annomi"
    assert main(["init", str(ws), "--codebook", "annomi"]) == 0
    args = [*ANNOMI_ARGS, "--conversation-field", "mi_quality"]
    assert main(["-w", str(ws), "import", str(ANNOMI_SIMPLE), *args]) == 0
    return ws


def annomi_shares(path: Path) -> dict[str, dict[str, list[float]]]:
    """Straight from the CSV: quality -> technique -> each transcript's share."""
    per: dict[str, Counter[str]] = defaultdict(Counter)
    quality = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["interlocutor"] == "therapist":
                per[row["transcript_id"]][row["main_therapist_behaviour"]] += 1
                quality[row["transcript_id"]] = row["mi_quality"]
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for tid, counts in per.items():
        for key in ("reflection", "question", "therapist_input", "other"):
            out[quality[tid]][key].append(counts[key] / sum(counts.values()))
    return out


def test_annomi_high_quality_sessions_reflect_more_and_inform_less(
    annomi_workspace: Path, annomi_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """mi_quality, high minus low: the reflection share and R:Q are higher in high-quality
    sessions and the therapist-input share lower, with intervals that exclude 0; the
    estimates equal the per-transcript shares computed straight from the CSV."""
    argv = ["-w", str(annomi_workspace), "insights", "--outcome", "mi_quality"]
    code, out, err = run(capsys, *argv, "--groups", "low,high", "--json")
    assert code == 0, err
    report = json.loads(out)
    o = report["outcome"]
    assert o["difference"] == "high minus low" and o["left_out"] == 0
    assert {g: t["conversations"] for g, t in o["groups"].items()} == {"low": 23, "high": 110}
    assert {g: t["coded"] for g, t in o["groups"].items()} == {"low": 441, "high": 4441}
    assert report["messages"]["from_gold"] == 4882 and report["messages"]["from_model"] == 0
    shares = annomi_shares(annomi_csv)
    for key, row in o["shares"].items():
        expected = np.mean(shares["high"][key]) - np.mean(shares["low"][key])
        assert row["estimate"] == pytest.approx(expected, abs=1e-9)
        assert row["ci"][0] < row["estimate"] < row["ci"][1]
    assert o["shares"]["reflection"]["ci"][0] > 0
    assert o["indices"]["reflection_to_question"]["ci"][0] > 0
    assert o["shares"]["therapist_input"]["ci"][1] < 0
    assert not report["indices"]["complex_reflection_pct"]["available"]
    assert not report["indices"]["open_question_pct"]["available"]
    assert run(capsys, *argv, "--groups", "low,high", "--json")[1] == out  # seeded: the same
    code, text, _ = run(capsys, *argv, "--groups", "low,high")
    assert code == 0 and "high minus low" in text and "%CR: not available" in text
    assert "R:Q = reflection / question, per conversation" in text


def test_model_source_without_a_model_is_refused(
    annomi_workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--source model or both with no trained model: exit 1 saying what to do."""
    for source in ("model", "both"):
        code, _, err = run(capsys, "-w", str(annomi_workspace), "insights", "--source", source)
        assert code == 1 and "no model yet" in err and "techne retrain" in err
    code, _, err = run(capsys, "-w", str(annomi_workspace), "insights", "--groups", "low")
    assert code == 2


def test_numeric_outcome_correlations_and_literal_ids(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A numeric outcome gives Pearson and Spearman with intervals: reflection share rising
    exactly with the score has rho = 1 [1, 1]; ids that look like markup print literally."""
    rows = []
    for i in range(5):
        conv = "[b]c4[/b]" if i == 4 else f"c{i}"
        for turn in range(4):
            label = "reflection" if turn < i else "question"
            rows.append(
                {"conv": conv, "turn": turn, "text": f"t{turn}", "code": label, "score": i * 10}
            )
    data = tmp_path / "numeric.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ws = str(tmp_path / "w")
    assert run(capsys, "init", ws, "--codebook", "annomi")[0] == 0
    flags = ["--conversation", "conv", "--order", "turn", "--label", "code", "--annotator", "x"]
    assert (
        run(capsys, "-w", ws, "import", str(data), *flags, "--conversation-field", "score")[0] == 0
    )
    code, out, err = run(capsys, "-w", ws, "insights", "--outcome", "score", "--json")
    assert code == 0, err
    o = json.loads(out)["outcome"]
    assert o["kind"] == "numeric" and o["conversations"] == 5
    rho = o["shares"]["reflection"]["spearman"]
    assert rho["estimate"] == pytest.approx(1.0) and rho["ci"] == pytest.approx([1.0, 1.0])
    assert o["shares"]["question"]["pearson"]["estimate"] == pytest.approx(-1.0)
    assert o["indices"]["reflection_to_question"]["conversations"] == 4  # c4 has no question
    code, text, _ = run(capsys, "-w", ws, "insights", "--outcome", "score", "--profiles")
    assert code == 0 and "[b]c4[/b]" in text and "Spearman rho" in text


# -- gold, model, both; the screen (a trained model) -------------------------------------------


@pytest.fixture
def demo(trained_demo: Path, tmp_path: Path) -> Path:
    path = tmp_path / "demo"
    shutil.copytree(trained_demo, path)
    return path


@pytest.mark.slow
def test_sources_say_where_each_label_came_from(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """gold: only labelled messages; model: every message predicted; both: gold where there
    is gold, predictions for the rest, and the counts of each."""
    found = {}
    for source in ("gold", "model", "both"):
        argv = ["-w", str(demo), "insights", "--source", source, "--outcome", "quality", "--json"]
        code, out, err = run(capsys, *argv)
        assert code == 0, err
        found[source] = json.loads(out)
    gold, model, both = (found[s]["messages"] for s in ("gold", "model", "both"))
    assert gold["from_model"] == 0 and gold["coded"] == gold["from_gold"] > 300
    assert model["from_gold"] == 0 and model["from_model"] == model["labelable"]
    assert both["from_gold"] == gold["from_gold"]
    assert both["from_model"] == both["labelable"] - gold["from_gold"] and both["uncoded"] == 0
    assert found["both"]["model"] == "v1" and found["gold"]["model"] is None
    groups = found["both"]["outcome"]["groups"]
    assert sum(g["from_gold"] for g in groups.values()) == both["from_gold"]
    indices = found["gold"]["indices"]
    assert all(spec["available"] for spec in indices.values())  # the mi codebook has them all


@pytest.mark.slow
async def test_insights_screen_from_the_stats_screen(demo: Path) -> None:
    """c then i opens insights (computed in a worker); s cycles gold -> model -> both and the
    header says where the labels came from; escape goes back."""
    from textual.widgets import DataTable, Static

    from tui.app import make_app
    from tui.screens.insights import InsightsScreen
    from tui.screens.stats import StatsScreen

    app = make_app(demo, annotator="dana")
    try:
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.press("c", "i")
            await app.workers.wait_for_complete()
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, InsightsScreen) and screen.report is not None
            assert screen.report["source"] == "gold" and screen.outcome == "outcome"
            rows = screen.query_one("#insights-profiles", DataTable).row_count
            assert rows == screen.report["conversations"]["total"]
            for source in ("model", "both"):
                await pilot.press("s")
                await app.workers.wait_for_complete()
                await pilot.pause()
                assert screen.report["source"] == source
            header = str(screen.query_one("#insights-header", Static).render())
            m = screen.report["messages"]
            assert f"{m['from_gold']:,} from gold labels" in header
            assert m["from_gold"] + m["from_model"] == m["labelable"]
            await pilot.press("o")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert screen.report["outcome"]["field"] == "quality"
            await pilot.press("escape")
            assert isinstance(app.screen, StatsScreen)
    finally:
        app.repo.close()


async def settled_layout(pilot, limit: int = 200) -> None:  # noqa: ANN001
    """Pause until the screen's layout stops changing (the app's own state, not the clock)."""

    def layout() -> list[tuple[str, object, object]]:
        return [(repr(w), w.region, w.virtual_size) for w in pilot.app.screen.walk_children()]

    await pilot.wait_for_scheduled_animations()
    before = layout()
    for _ in range(limit):
        await pilot.pause()
        now = layout()
        if now == before:
            return
        before = now
    raise AssertionError("the layout kept changing")


@pytest.mark.slow
def test_insights_screen_snapshot(snap_compare, demo: Path) -> None:  # noqa: ANN001
    """The demo's insights from gold labels: provenance and outcome in the header, the
    table of group means and differences with intervals, the forest plot, the
    per-conversation profiles, and the keys s, o, g in the footer."""
    from tui.app import make_app

    async def computed(pilot) -> None:  # noqa: ANN001
        await pilot.press("c", "i")
        await pilot.app.workers.wait_for_complete()
        # under load one pause could catch the tables before their last layout (columns at
        # other widths): wait until two consecutive refreshes lay every widget out alike
        await settled_layout(pilot)

    app = make_app(demo, annotator="snap")
    assert snap_compare(app, terminal_size=(120, 36), run_before=computed)
