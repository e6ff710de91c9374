"""The agreement report as Rich renderables, for the command line and the agreement screen."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from tui.safe import literal


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def agreement_view(report: dict[str, Any], names: dict[str, str] | None = None) -> Group:
    """The report as Rich tables (coder names as literal text); `names` maps technique keys
    to the names the labelling screen shows."""
    names = names or {}
    head = Text(
        f"{report['items_coded']:,} messages coded; {report['items_multiply_coded']:,} coded by "
        f"two or more. Krippendorff's alpha (nominal): {_num(report['alpha'])}"
    )
    techniques = Table(title="Alpha per technique", title_justify="left")
    for name in ("technique", "alpha", "codes on shared items"):
        techniques.add_column(name)
    for key, row in report["alpha_per_technique"].items():
        techniques.add_row(literal(names.get(key, key)), _num(row["alpha"]), f"{row['coded']:,}")
    pairs = Table(title="Cohen's kappa per pair", title_justify="left")
    for name in ("coder", "coder", "items", "kappa", "agree"):
        pairs.add_column(name)
    for p in report["pairs"]:
        pairs.add_row(
            literal(p["a"]),
            literal(p["b"]),
            f"{p['items']:,}",
            _num(p["kappa"]),
            f"{p['percent_agreement']:.0%}",
        )
    versus = Table(title="Expert vs model suggestion", title_justify="left")
    for name in ("expert", "items", "kappa", "agree"):
        versus.add_column(name)
    for row in report.get("expert_vs_model", []):
        versus.add_row(
            literal(row["annotator"]),
            f"{row['items']:,}",
            _num(row["kappa"]),
            f"{row['percent_agreement']:.0%}",
        )
    if not report.get("expert_vs_model"):
        note = Text("Expert vs model: no expert has labelled with a suggestion on screen yet.")
        return Group(head, techniques, pairs, note)
    return Group(head, techniques, pairs, versus)
