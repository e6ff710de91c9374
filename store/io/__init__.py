"""Import and export: CSV, JSONL, Parquet in; JSONL, CSV, Parquet, Hugging Face out."""

from store.io.export import (
    EXPORT_FORMATS,
    ExportOptions,
    ExportReport,
    export,
    format_for,
    gold_rows,
)
from store.io.importer import ColumnMap, import_file
from store.io.readers import FORMATS, open_rows

__all__ = [
    "EXPORT_FORMATS",
    "FORMATS",
    "ColumnMap",
    "ExportOptions",
    "ExportReport",
    "export",
    "format_for",
    "gold_rows",
    "import_file",
    "open_rows",
]
