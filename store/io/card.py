"""The dataset card written beside every export: what is in it and where it came from."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from store.agreement import krippendorff_alpha
from store.io.options import ExportOptions

if TYPE_CHECKING:  # SQLAlchemy loads with the repository, not with this module
    from store.repository import Repository


def nominal_alpha(rows: list[dict[str, Any]]) -> float | None:
    """Krippendorff's alpha (nominal) over the coders' labels of multiply-coded rows."""
    units = [[str(c["label"]) for c in r["coders"]] for r in rows if len(r["coders"]) >= 2]
    if not units:
        return None
    alpha = krippendorff_alpha(units)
    return None if math.isnan(alpha) else alpha


def _techne_version() -> str:
    try:
        return version("techne")
    except PackageNotFoundError:
        return "source"


def render_card(
    repo: Repository, rows: list[dict[str, Any]], options: ExportOptions, when: datetime
) -> str:
    """Markdown: counts, label distribution, annotators, agreement, date, codebook."""
    book = repo.codebook()
    labels = Counter(label for r in rows for label in r["labels"])
    sources = Counter(r["gold_source"] for r in rows)
    per_annotator = Counter(a for r in rows for a in r["annotators"])
    adjudicated = Counter(r["adjudicator"] for r in rows if r["adjudicator"])
    roles = repo.annotators()
    multi = [r for r in rows if r["n_annotators"] >= 2]
    splits = Counter(r.get("split", "all") for r in rows)
    split_convs = {
        name: len({r["conversation_id"] for r in rows if r.get("split", "all") == name})
        for name in splits
    }
    out = [
        f"# Gold dataset — {book.name}",
        "",
        f"Exported by Techne {_techne_version()} on {when.strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        "## Contents",
        "",
        f"- Messages: {len(rows):,} in {len({r['conversation_id'] for r in rows}):,} conversations",
        f"- Format: {options.fmt}; context turns per message: {options.context_turns}",
        f"- Gold policy: weakest source accepted = `{options.gold}` "
        "(adjudicated > majority > single annotator)",
        "- Gold sources: " + ", ".join(f"{k} {v:,}" for k, v in sorted(sources.items())),
    ]
    if options.split is not None:
        out.append(
            f"- Split (conversation-grouped, seed {options.seed}, shares "
            f"{'/'.join(str(s) for s in options.split)}): "
            + ", ".join(
                f"{n} {splits.get(n, 0):,} messages / {split_convs.get(n, 0)} conversations"
                for n in ("train", "dev", "test")
            )
        )
    out += ["", "## Label distribution", "", "| technique | messages | share |", "|---|---:|---:|"]
    total = sum(labels.values()) or 1
    for t in book.techniques:
        out.append(f"| {t.key} | {labels.get(t.key, 0):,} | {labels.get(t.key, 0) / total:.1%} |")
    out += [
        "",
        "## Annotators",
        "",
        "| annotator | role | gold messages coded | adjudicated |",
        "|---|---|---:|---:|",
    ]
    for name in sorted(set(per_annotator) | set(adjudicated)):
        out.append(
            f"| {name} | {roles.get(name, '?')} | {per_annotator[name]:,} | {adjudicated[name]:,} |"
        )
    out += ["", "## Agreement", ""]
    if multi:
        mean = sum(r["agreement"] for r in multi if r["agreement"] is not None) / len(multi)
        out.append(f"- Messages coded by two or more annotators: {len(multi):,}")
        out.append(f"- Mean share of coders agreeing with the gold label: {mean:.3f}")
    else:
        out.append("- Every message was coded by one annotator: no agreement can be computed.")
    alpha = nominal_alpha(rows)
    if alpha is not None and not math.isnan(alpha):
        out.append(f"- Krippendorff's alpha (nominal): {alpha:.3f}")
    out += [
        "",
        f"## Codebook: {book.name} (`{book.key}` v{book.version})",
        "",
        book.description,
        "",
    ]
    for t in book.techniques:
        out.append(f"- **{t.name}** (`{t.key}`): {t.definition}")
    out += [
        "",
        "## Columns",
        "",
        "message_id, conversation_id, position, speaker, text; context (previous turns); "
        "label (`;`-joined) and labels; gold_source; annotators, n_annotators, coders (each "
        "coder's label), adjudicator; agreement "
        "(share of coders agreeing with the gold label, empty with one coder); event_count "
        "(every recorded annotation event); model_version (the model whose suggestion was on "
        "screen when the label was given)" + ("; split" if options.split else "") + ".",
        "",
    ]
    return "\n".join(out)
