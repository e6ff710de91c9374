"""Failures the machine or the input causes (disk full, a broken database, input nested
too deeply): one line for a person instead of a traceback."""

from __future__ import annotations

from typing import Any


def environmental() -> tuple[type[BaseException], ...]:
    """What the CLI and the app report as one line; anything else is a bug and keeps its
    traceback. A function, so that `techne --help` never loads the database driver."""
    from store.db import DatabaseFailure

    return (OSError, RecursionError, MemoryError, UnicodeError, DatabaseFailure)


def __getattr__(name: str) -> Any:
    if name == "ENVIRONMENTAL":  # for code that runs with the store loaded (the app)
        return environmental()
    raise AttributeError(name)


def failure_text(exc: BaseException) -> str:
    """One line for an environmental failure: what failed and, for a file, which."""
    if isinstance(exc, OSError):
        what = exc.strerror or exc.__class__.__name__
        where = exc.filename
        return f"{where}: {what}" if where else what
    from store.db import DatabaseFailure

    if isinstance(exc, DatabaseFailure):
        first = str(exc.orig).splitlines()[0] if str(exc.orig) else exc.__class__.__name__
        return f"the database failed: {first}"
    if isinstance(exc, RecursionError):
        return "input nested too deeply to process"
    if isinstance(exc, MemoryError):
        return "out of memory"
    return f"{exc.__class__.__name__}: {exc}"
