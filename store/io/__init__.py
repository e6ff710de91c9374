"""Import and export: CSV, JSONL, Parquet in; JSONL, CSV, Parquet, Hugging Face out.

The importer's names load on first use (PEP 562): it pulls in SQLAlchemy. The exporter is
light and loads at once, so `store.io.export` is always the function, never the module.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from store.io.export import (
    EXPORT_FORMATS,
    ExportOptions,
    ExportReport,
    export,
    format_for,
    gold_rows,
)

if TYPE_CHECKING:
    from store.io.importer import ColumnMap, import_file
    from store.io.readers import FORMATS, open_rows

_HOME = {
    "store.io.importer": ("ColumnMap", "import_file"),
    "store.io.readers": ("FORMATS", "open_rows"),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}

__all__ = [
    "ColumnMap",
    "EXPORT_FORMATS",
    "ExportOptions",
    "ExportReport",
    "FORMATS",
    "export",
    "format_for",
    "gold_rows",
    "import_file",
    "open_rows",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'store.io' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
