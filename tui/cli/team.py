"""Team commands: annotators and roles, agreement, a message's history, adjudication."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from store.errors import TechneError
from tui.cli.common import Json, open_repo, options, out, require_terminal
from tui.safe import literal, shown


def annotators_cmd(ctx: typer.Context, as_json: Json = False) -> None:
    """List annotators with their roles and labelled messages."""
    if ctx.invoked_subcommand is not None:
        return
    with open_repo(ctx) as (_, repo):
        roles = repo.annotators()
        labelled = repo.status()["per_annotator"]
    rows = {
        name: {"role": role, "labelled": labelled.get(name, {}).get("labelled", 0)}
        for name, role in roles.items()
    }
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("annotator", "role", "labelled")
    for name, row in rows.items():
        table.add_row(literal(name), literal(row["role"]), f"{row['labelled']:,}")
    out.print(table)


def annotators_add_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The annotator's name.")],
    role: Annotated[str, typer.Option(help="expert | lead | maintainer")] = "expert",
) -> None:
    """Add an annotator, or change an existing one's role.

    Example:

        techne annotators add maria --role lead
    """
    with open_repo(ctx) as (_, repo):
        repo.set_role(name, role)
    out.print(shown(f"{name.strip()} is a {role}"), markup=False)


def agreement_cmd(
    ctx: typer.Context,
    as_json: Json = False,
    model: Annotated[bool, typer.Option(help="Also compare each expert with the model.")] = True,
) -> None:
    """Inter-coder agreement: Cohen's kappa per annotator pair, Krippendorff's alpha
    (nominal) overall and per technique, and each expert against the model's suggestion
    they saw, with item counts.

    Example:

        techne -w study agreement --json
    """
    with open_repo(ctx) as (_, repo):
        report = repo.agreement(model=model)
    if as_json:
        out.print_json(json.dumps(report))
        return
    from tui.agreement_view import agreement_view

    out.print(agreement_view(report))


def history_cmd(
    ctx: typer.Context,
    message: Annotated[str, typer.Argument(help="Message id (external id or number).")],
    as_json: Json = False,
) -> None:
    """Every event on a message, oldest first: who did what (with the role they had then),
    when, with which model shown.

    Example:

        techne -w study history 12:4
    """
    with open_repo(ctx) as (_, repo):
        msg = repo.message(message)
        events = repo.events(msg.id)
        tags = repo.model_tags()
    if as_json:
        out.print_json(json.dumps({"message": asdict(msg), "events": [asdict(e) for e in events]}))
        return
    header = literal(
        f"{msg.external_id} ({msg.speaker or 'speaker'}, conversation "
        f"{msg.conversation_external_id}, turn {msg.position}): "
    )
    header.append_text(literal(msg.text, multiline=True))
    out.print(header, soft_wrap=True)
    for e in events:
        line = literal(f"#{e.id}  {e.created_at[:19]}  ")
        line.append_text(literal(f"{e.annotator} ({e.role or 'role not recorded'})", style="bold"))
        line.append_text(literal(f"  {e.kind}"))
        if e.labels:
            line.append_text(literal("  " + ", ".join(e.labels)))
        if e.model_version_id:
            line.append_text(literal(f"  model {tags.get(e.model_version_id, e.model_version_id)}"))
            if e.accepted_suggestion is not None:
                line.append(" (accepted)" if e.accepted_suggestion else " (changed)")
        if e.target_event_id:
            line.append(f"  undoes #{e.target_event_id}")
        line.append_text(literal(f"  via {e.source}", style="dim"))
        if e.note or e.reason:
            line.append(f"\n      {'note' if e.note else 'reason'}: ")
            line.append_text(literal(e.note or e.reason, multiline=True))
        out.print(line, soft_wrap=True)
    if not events:
        out.print("No events yet.", markup=False)


def adjudicate_cmd(
    ctx: typer.Context,
    annotator: Annotated[str | None, typer.Option(help="The lead deciding.")] = None,
    list_only: Annotated[
        bool, typer.Option("--list", help="Print the open disputes instead of opening the app.")
    ] = False,
    model: Annotated[
        bool, typer.Option(help="Include messages where a coder and the model disagree.")
    ] = True,
    as_json: Json = False,
) -> None:
    """Decide disputed messages: coders who disagree (or a coder and the model), and flagged
    ones, side by side with notes and flags. A lead's decision is the gold label.

    Examples:

        techne -w study adjudicate --annotator maria

        techne -w study adjudicate --list --json
    """
    if not list_only and not as_json:
        import getpass

        from store.team import DECIDING_ROLES, role_refusal

        who = annotator or getpass.getuser()
        with open_repo(ctx) as (_, repo):
            roles = repo.annotators()
        if roles.get(who) not in DECIDING_ROLES:
            raise TechneError(role_refusal(who, roles.get(who), "adjudicate", roles))
        require_terminal("adjudicate")
        from tui.app import make_app

        opts = options(ctx)
        application = make_app(opts.workspace, opts.db, who, adjudicate=True)
        application.run()
        return
    with open_repo(ctx) as (_, repo):
        found = repo.disputes(include_model=model)
    rows = [asdict(d) for d in found]
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("message", "reason", "coders", "model", "flags", title="Open disputes")
    for d in found:
        coders = "; ".join(f"{k}: {'+'.join(v)}" for k, v in d.coder_labels.items())
        table.add_row(
            str(d.message_id),
            literal(d.reason),
            literal(coders),
            literal(d.model_label or ""),
            str(d.flags),
        )
    out.print(table)
