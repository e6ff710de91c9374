"""Errors meant for people: each carries a message that says what went wrong and where."""

from __future__ import annotations

QUOTE_LIMIT = 200
"""Most characters of one input value an error quotes (a 50 MB header line is not echoed)."""


def cut(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`value` as text, at most about `limit` characters, saying how much was left out.
    (Escaping for a terminal is the interface's job: see tui/safe.py.)"""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


class TechneError(Exception):
    """Base of every error Techne reports to a user instead of a traceback."""


class StoreError(TechneError):
    """The store cannot be opened, read or written as asked."""


class WorkspaceError(TechneError):
    """No workspace where one was expected, or a broken `techne.toml`."""


class CodebookError(TechneError):
    """A codebook file that is missing or does not follow the schema."""


class InputError(TechneError):
    """A problem with one place in an input file: names file, line, column and the problem.

    The column and the problem may quote input; both are cut to a few hundred characters.
    """

    def __init__(
        self, file: str, line: int | None, column: str | None, problem: str, unit: str = "line"
    ) -> None:
        column = None if column is None else cut(column)
        problem = cut(problem, 2 * QUOTE_LIMIT)
        self.file = file
        self.line = line
        self.column = column
        self.problem = problem
        self.unit = unit
        where = file
        if line is not None:
            where += f", {unit} {line}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {problem}")
