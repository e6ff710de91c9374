"""Errors meant for people: each carries a message that says what went wrong and where."""

from __future__ import annotations


class TechneError(Exception):
    """Base of every error Techne reports to a user instead of a traceback."""


class StoreError(TechneError):
    """The store cannot be opened, read or written as asked."""


class WorkspaceError(TechneError):
    """No workspace where one was expected, or a broken `techne.toml`."""


class CodebookError(TechneError):
    """A codebook file that is missing or does not follow the schema."""


class InputError(TechneError):
    """A problem with one place in an input file: names file, line, column and the problem."""

    def __init__(
        self, file: str, line: int | None, column: str | None, problem: str, unit: str = "line"
    ) -> None:
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
