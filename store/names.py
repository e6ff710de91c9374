"""Names people give (annotators): checked where they are made, so every screen and table
can show them on one line."""

from __future__ import annotations

from store.errors import StoreError, cut

MAX_NAME_CHARS = 64


def name_problem(name: str) -> str | None:
    """What is wrong with `name` as an annotator name, or None: it must be non-empty,
    printable (no newline, control, bidi or zero-width character) and at most 64 characters."""
    if not name.strip():
        return "is empty"
    if len(name) > MAX_NAME_CHARS:
        return f"is {len(name):,} characters long; at most {MAX_NAME_CHARS} are allowed"
    if name.isprintable():
        return None
    for index, ch in enumerate(name, start=1):
        if not ch.isprintable():
            return (
                f"has an unprintable character U+{ord(ch):04X} at position {index}; "
                "names must be printable, on one line"
            )
    return None


def check_annotator_name(name: str) -> str:
    """`name` stripped, or a StoreError saying what is wrong with it."""
    name = name.strip()
    problem = name_problem(name)
    if problem is not None:
        shown = cut(name.encode("unicode_escape").decode("ascii"), 80)
        raise StoreError(f"annotator name '{shown}' {problem}")
    return name
