"""Insights as text, tables and a terminal forest plot: shared by the CLI and the app. Values
that come from data (group names, conversation ids) are Text, never markup."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from tui.safe import literal, shown

INDEX_NOTES = {
    "reflection_to_question": "without a question",
    "complex_reflection_pct": "without a reflection",
    "open_question_pct": "without a question",
}
"""Why a conversation has no value for an index (its denominator is 0)."""


def configured(
    section: dict[str, Any], outcome: str | None, groups: str | None
) -> tuple[str | None, tuple[str, str] | None]:
    """The outcome field and groups: as given, else `[insights] outcome` and `groups` from
    techne.toml (its groups only apply to its own outcome). ValueError on bad groups."""
    field = outcome or section.get("outcome")
    if groups is None and field and field == section.get("outcome"):
        groups = section.get("groups")
    if not groups:
        return (str(field) if field else None), None
    parts = [p.strip() for p in str(groups).split(",")]
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"expected two outcome values like low,high, got {groups!r}")
    return (str(field) if field else None), (parts[0], parts[1])


def describe(report: dict[str, Any]) -> list[str]:
    """What was analysed: codebook, source, where the labels came from, the outcome."""
    m, c = report["messages"], report["conversations"]
    source = {"gold": "gold labels", "model": "model predictions", "both": "gold + model"}
    model = f" (model {report['model']})" if report["model"] else ""
    lines = [
        f"Insights · codebook {report['codebook']} · {source[report['source']]}{model}",
        f"{m['coded']:,} of {m['labelable']:,} messages coded in {c['coded']:,} of "
        f"{c['total']:,} conversations: {m['from_gold']:,} from gold labels, "
        f"{m['from_model']:,} from the model, {m['uncoded']:,} uncoded.",
    ]
    o = report["outcome"]
    if o and o["kind"] == "binary":
        parts = [
            f"{g} ({_count(t['conversations'], 'conversation')}, {t['coded']:,} messages: "
            f"{t['from_gold']:,} gold, {t['from_model']:,} model)"
            for g, t in o["groups"].items()
        ]
        lines.append(f"{_outcome(o['field'])}: " + " vs ".join(parts) + ".")
    elif o:
        lines.append(
            f"{_outcome(o['field'])} (numeric): {_count(o['conversations'], 'conversation')}, "
            f"{o['coded']:,} messages."
        )
    if o and o["left_out"]:
        lines.append(
            f"{_count(o['left_out'], 'conversation')} left out: no outcome or no coded message."
        )
    return [shown(line) for line in lines]


def _outcome(field: str) -> str:
    """'Outcome mi_quality', or just 'Outcome' for a field named outcome."""
    return "Outcome" if field.strip().lower() == "outcome" else f"Outcome {shown(field)}"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _metrics(report: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(kind, key, is a share/percentage) of every metric, shares first."""
    rows = [("shares", k, True) for k in report["techniques"]]
    for key, spec in report["indices"].items():
        if spec["available"]:
            rows.append(("indices", key, spec["percent"]))
    return rows


def technique_name(report: dict[str, Any], key: str) -> str:
    """A technique's name where the report carries the codebook's names (the app adds them
    as `technique_names`), else its key."""
    return str(report.get("technique_names", {}).get(key, key))


def _name(report: dict[str, Any], kind: str, key: str) -> Text:
    return literal(
        technique_name(report, key) if kind == "shares" else report["indices"][key]["name"]
    )


def _value(value: float | None, percent: bool, sign: bool = False) -> str:
    if value is None:
        return "-"
    if percent:
        return f"{value * 100:+.1f}" if sign else f"{value * 100:.1f}%"
    return f"{value:+.2f}" if sign else f"{value:.2f}"


def _interval(row: dict[str, Any], percent: bool, unit: bool = True) -> str:
    low, high = row["ci"]
    est = _value(row["estimate"], percent, sign=True) + (" pp" if percent and unit else "")
    return f"{est} [{_value(low, percent, True)}, {_value(high, percent, True)}]"


def _table(title: str, compact: bool) -> Table:
    """A titled table; compact (for the app's narrower panel) drops the outer lines."""
    if not compact:
        return Table(title=literal(title), title_justify="left")
    return Table(
        title=literal(title),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )


def summary_table(report: dict[str, Any], compact: bool = False) -> Table:
    """Mean per conversation of each technique share and MI index, with its interval."""
    level = f"{report['bootstrap']['level']:.0%}"
    table = _table("Mean per conversation", compact)
    table.add_column("technique" if compact else "technique / index", no_wrap=True, min_width=12)
    table.add_column(f"mean [{level} CI]", justify="right")
    table.add_column("n" if compact else "conversations", justify="right")
    for kind, key, percent in _metrics(report):
        row = report["summary"][kind][key]
        low, high = row["ci"]
        table.add_row(
            _name(report, kind, key),
            f"{_value(row['estimate'], percent)} [{_value(low, percent)}, {_value(high, percent)}]",
            str(row["conversations"]),
        )
    return table


def outcome_table(report: dict[str, Any], compact: bool = False) -> Table:
    """Binary: both group means and compared minus reference; numeric: r and rho."""
    o, level = report["outcome"], f"{report['bootstrap']['level']:.0%}"
    binary = o["kind"] == "binary"
    title = f"By {o['field']}: " + (o["difference"] if binary else "correlation")
    if binary and compact:
        title += " (shares in percentage points)"
    table = _table(title, compact)
    table.add_column("technique" if compact else "technique / index", no_wrap=True, min_width=12)
    if binary:
        ref, cmp_ = o["reference"], o["compared"]
        table.add_column(literal(ref), justify="right", min_width=min(len(ref), 12))
        table.add_column(literal(cmp_), justify="right", min_width=min(len(cmp_), 12))
        diff = "difference" if compact else f"{cmp_} - {ref}"
        table.add_column(literal(f"{diff} [{level} CI]"), justify="right", no_wrap=True)
        table.add_column(literal("n" if compact else f"n {ref}/{cmp_}"), justify="right")
    else:
        table.add_column(f"Pearson r [{level} CI]", justify="right")
        table.add_column(f"Spearman rho [{level} CI]", justify="right")
        table.add_column("n", justify="right")
    for kind, key, percent in _metrics(report):
        row = o[kind][key]
        if binary:
            n = row["conversations"]
            table.add_row(
                _name(report, kind, key),
                _value(row["means"][ref], percent),
                _value(row["means"][cmp_], percent),
                _interval(row, percent, unit=not compact),
                f"{n[ref]}/{n[cmp_]}",
            )
        else:
            table.add_row(
                _name(report, kind, key),
                _interval(row["pearson"], False),
                _interval(row["spearman"], False),
                str(row["conversations"]),
            )
    return table


def footnotes(report: dict[str, Any]) -> list[str]:
    """Indices not available, how zero denominators were handled, how intervals were made."""
    lines = []
    for key, spec in report["indices"].items():
        if not spec["available"]:
            lines.append(
                f"{spec['name']}: not available with codebook {report['codebook']} "
                f"({spec['reason']})"
            )
        elif spec["undefined"]:
            lines.append(
                f"{spec['name']} = {' + '.join(spec['numerator'])} / "
                f"{' + '.join(spec['denominator'])}, per conversation; "
                f"{_count(spec['undefined'], 'conversation')} {INDEX_NOTES[key]} "
                f"{'is' if spec['undefined'] == 1 else 'are'} left out of it."
            )
    b = report["bootstrap"]
    within = " within each group" if (report["outcome"] or {}).get("kind") == "binary" else ""
    lines.append(
        f"Intervals: {b['method']} bootstrap, {b['resamples']:,} resamples of conversations"
        f"{within}, seed {b['seed']}. Shares are of a conversation's coded messages."
    )
    if report["source"] != "gold" and report["messages"]["from_model"]:
        lines.append(
            f"Model labels are {report['model']}'s predictions, uncorrected for its errors."
        )
    return [shown(line) for line in lines]


def profile_columns(report: dict[str, Any]) -> list[str]:
    """Column names of the per-conversation profiles."""
    indices = [s["name"] for s in report["indices"].values() if s["available"]]
    names = [technique_name(report, k) for k in report["techniques"]]
    return ["conversation", "outcome", "gold", "model", *names, *indices]


def profile_rows(report: dict[str, Any]) -> list[list[Text]]:
    """One row per conversation: coded messages by origin, shares and indices."""
    available = [k for k, s in report["indices"].items() if s["available"]]
    rows = []
    for p in report["profiles"]:
        cells = [
            p["conversation"],
            "" if p["outcome"] is None else str(p["outcome"]),
            str(p["from_gold"]),
            str(p["from_model"]),
            *(_value(p["shares"][k], True) for k in report["techniques"]),
            *(_value(p["indices"][k], report["indices"][k]["percent"]) for k in available),
        ]
        rows.append([literal(c) for c in cells])
    return rows


def profile_table(report: dict[str, Any]) -> Table:
    """The per-conversation profiles as one table."""
    table = Table(title="Per conversation (shares of coded messages)", title_justify="left")
    widest = max((len(p["conversation"]) for p in report["profiles"]), default=12)
    for i, name in enumerate(profile_columns(report)):
        table.add_column(literal(name), justify="left" if i < 2 else "right")
    table.columns[0].min_width = min(widest, 24)
    for row in profile_rows(report):
        table.add_row(*row)
    return table


def forest_rows(report: dict[str, Any]) -> tuple[str, list[tuple[str, float, float, float]]]:
    """(title, [(technique, estimate, low, high)]) for the report's outcome: share
    differences in percentage points, or Spearman's rho; empty without an outcome."""
    outcome = report.get("outcome")
    if not outcome:
        return "", []
    level = f"{report['bootstrap']['level']:.0%}"
    rows = []
    for key, row in outcome["shares"].items():
        found = row if outcome["kind"] == "binary" else row["spearman"]
        low, high = found["ci"]
        if found["estimate"] is None or low is None or high is None:
            continue
        scale = 100.0 if outcome["kind"] == "binary" else 1.0
        name = technique_name(report, key)
        rows.append((shown(name), found["estimate"] * scale, low * scale, high * scale))
    if outcome["kind"] == "binary":
        title = shown(f"{outcome['difference']}, share in pp ({level} CI)")
    else:
        title = shown(f"Spearman rho with {outcome['field']} ({level} CI)")
    return title, rows


def draw_forest(plt: Any, report: dict[str, Any], label_width: int = 32) -> bool:
    """Draw the forest plot on `plt` (technique names cut to `label_width` characters);
    False when there is nothing to draw."""
    title, rows = forest_rows(report)
    plt.clear_data()
    if not rows:
        plt.title("no outcome chosen" if not report.get("outcome") else "no intervals")
        return False
    n = len(rows)
    for i, (_, estimate, low, high) in enumerate(rows):
        y = n - i
        plt.plot([low, high], [y, y], marker="─", color="blue")
        plt.scatter([estimate], [y], marker="●", color="red")
    lows = [r[2] for r in rows] + [0.0]
    highs = [r[3] for r in rows] + [0.0]
    pad = max(max(highs) - min(lows), 1e-9) * 0.05
    plt.xlim(min(lows) - pad, max(highs) + pad)
    plt.vline(0.0, "gray")
    names = [r[0] if len(r[0]) <= label_width else r[0][: label_width - 1] + "…" for r in rows]
    plt.yticks([n - i for i in range(n)], names)
    plt.ylim(0.5, n + 0.5)
    plt.title(title)
    return True


def forest_text(report: dict[str, Any], width: int = 78, height: int = 14) -> str:
    """The forest plot as text with ANSI colours (empty without an outcome)."""
    import plotext as plt

    plt.clear_figure()
    plt.theme("clear")
    plt.plotsize(width, height)
    if not draw_forest(plt, report):
        return ""
    return str(plt.build())
