"""Progress bars for long commands: rich on an interactive terminal, silent elsewhere."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

from tui.safe import shown


class ProgressBar:
    """`with ProgressBar(console, "import x.csv", unit="bytes") as update:` gives a callback
    (None when not on a terminal): update(done, total) for bytes, update(stage, fraction)
    for stages."""

    def __init__(
        self, console: Console, description: str, *, unit: str = "stage", enabled: bool = True
    ) -> None:
        self.console = console
        self.description = escape(shown(description))  # the column reads markup
        self.unit = unit
        self.enabled = enabled and console.is_terminal
        self._progress: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        extra = (
            (DownloadColumn(), TimeRemainingColumn())
            if self.unit == "bytes"
            else (TimeElapsedColumn(),)
        )
        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            *extra,
            console=self.console,
            transient=True,
        )
        self._progress.start()
        task = self._progress.add_task(
            self.description, total=None if self.unit == "bytes" else 1.0
        )

        def by_bytes(done: int, total: int) -> None:
            self._progress.update(task, completed=done, total=total)

        def by_stage(stage: str, fraction: float) -> None:
            self._progress.update(task, description=escape(shown(stage)), completed=fraction)

        return by_bytes if self.unit == "bytes" else by_stage

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
