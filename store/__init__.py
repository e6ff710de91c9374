"""Techne's store: tables, engine set-up, the repository API, workspaces, import/export.

Knows nothing of the UI or of machine learning.
"""

from store.agreement import Dispute
from store.codebooks import CodebookSpec, TechniqueSpec, load_codebook_file, parse_codebook
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
from store.workspace import Workspace, find_root, load_workspace, write_config

__all__ = [
    "GOLD_LEVELS",
    "CodebookError",
    "CodebookSpec",
    "CodebookView",
    "Dispute",
    "EventView",
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
    "find_root",
    "grouped_split",
    "load_codebook_file",
    "load_workspace",
    "make_engine",
    "parse_codebook",
    "sqlite_url",
    "write_config",
]
