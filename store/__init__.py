"""Techne's store: tables, engine set-up, the repository API, workspaces, import/export.

Knows nothing of the UI or of machine learning. Names load on first use (PEP 562), so a
caller that needs only the errors or the workspace file (`techne --help`) never pays for
SQLAlchemy.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from store.agreement import Dispute
    from store.codebooks import (
        CodebookSpec,
        TechniqueSpec,
        find_codebook,
        load_codebook_file,
        parse_codebook,
        spec_from_view,
    )
    from store.db import create_schema, make_engine, sqlite_url
    from store.domain import CodebookView, EventView, ImportReport, MessageView, TechniqueView
    from store.errors import (
        CodebookError,
        InputError,
        StoreError,
        TechneError,
        WorkspaceError,
    )
    from store.labels import GOLD_LEVELS, Gold, MessageState
    from store.repository import Repository
    from store.splits import grouped_split
    from store.team import TeamPolicy
    from store.workspace import (
        Workspace,
        find_root,
        init_workspace,
        load_workspace,
        write_config,
    )

_HOME = {
    "store.agreement": ("Dispute",),
    "store.codebooks": (
        "CodebookSpec",
        "TechniqueSpec",
        "find_codebook",
        "load_codebook_file",
        "parse_codebook",
        "spec_from_view",
    ),
    "store.db": ("create_schema", "make_engine", "sqlite_url"),
    "store.domain": ("CodebookView", "EventView", "ImportReport", "MessageView", "TechniqueView"),
    "store.errors": ("CodebookError", "InputError", "StoreError", "TechneError", "WorkspaceError"),
    "store.labels": ("GOLD_LEVELS", "Gold", "MessageState"),
    "store.repository": ("Repository",),
    "store.splits": ("grouped_split",),
    "store.team": ("TeamPolicy",),
    "store.workspace": (
        "Workspace",
        "find_root",
        "init_workspace",
        "load_workspace",
        "write_config",
    ),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}

__all__ = [
    "CodebookError",
    "CodebookSpec",
    "CodebookView",
    "Dispute",
    "EventView",
    "GOLD_LEVELS",
    "Gold",
    "ImportReport",
    "InputError",
    "MessageState",
    "MessageView",
    "Repository",
    "StoreError",
    "TeamPolicy",
    "TechneError",
    "TechniqueSpec",
    "TechniqueView",
    "Workspace",
    "WorkspaceError",
    "create_schema",
    "find_codebook",
    "find_root",
    "grouped_split",
    "init_workspace",
    "load_codebook_file",
    "load_workspace",
    "make_engine",
    "parse_codebook",
    "sqlite_url",
    "spec_from_view",
    "write_config",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'store' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
