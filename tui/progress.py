"""Progress of long commands: counts, rate and ETA.

On an interactive terminal a rich bar; elsewhere (a log, a pipe, `nohup`) one plain line
every few seconds, without escape codes. Two kinds of callbacks come from the layers below:
`update(done, total)` counts (bytes of a file read, or items) and `update(stage, fraction)`
stages. A stage that says how far it is in the words `N of M things` ("encoding 1,200 of
5,000 messages") gets a rate and an ETA in those things; any other gets an ETA from its
fraction.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.markup import escape

from tui.safe import shown

INTERVAL_S = 5.0
"""Seconds between plain progress lines (`$TECHNE_PROGRESS_INTERVAL` overrides)."""
ENV_INTERVAL = "TECHNE_PROGRESS_INTERVAL"

_COUNTED = re.compile(r"(\d[\d,]*) of (\d[\d,]*) (\w+)")
_NUMBERS = re.compile(r"\d[\d,.]*")


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _megabytes(n: float) -> str:
    return f"{n / 1e6:,.1f}"


class Meter:
    """Turns progress callbacks into one line: what, how far, how fast, how long to go."""

    def __init__(self, description: str, unit: str, clock: Callable[[], float]) -> None:
        self.description = description
        self.unit = unit
        self.clock = clock
        self.started = clock()
        self.stage = ""
        self.fraction = 0.0
        self.done: float | None = None
        self.total: float | None = None
        self.counted = unit  # what `done` counts
        self._since = self.started  # start of the current stage (or count run)
        self._done_at_start = 0.0
        self._kind = ""

    def by_count(self, done: int, total: int) -> None:
        self._enter(f"count:{self.unit}", float(done))
        self.done, self.total = float(done), float(total)
        self.fraction = done / total if total else 0.0

    def by_stage(self, stage: str, fraction: float) -> None:
        counted = _COUNTED.search(stage)
        done = float(counted.group(1).replace(",", "")) if counted else None
        self._enter("stage:" + _NUMBERS.sub("#", stage), done or 0.0)
        self.stage = stage
        self.fraction = max(0.0, min(1.0, fraction))
        if counted:
            self.done = done
            self.total = float(counted.group(2).replace(",", ""))
            self.counted = counted.group(3)
        else:
            self.done = self.total = None

    def _enter(self, kind: str, done: float) -> None:
        """A new stage restarts the clock its rate and ETA are measured from."""
        if kind != self._kind:
            self._kind = kind
            self._since = self.clock()
            self._done_at_start = done

    def rate(self) -> float | None:
        """Things per second in the current stage (None before any time has passed)."""
        if self.done is None:
            return None
        elapsed = self.clock() - self._since
        if elapsed <= 0 or self.done <= self._done_at_start:
            return None
        return (self.done - self._done_at_start) / elapsed

    def eta(self) -> float | None:
        """Seconds left in the current stage, from its rate or its fraction."""
        rate = self.rate()
        if rate and self.total is not None and self.done is not None:
            return (self.total - self.done) / rate
        elapsed = self.clock() - self._since
        if 0 < self.fraction < 1 and elapsed > 0:
            return elapsed * (1 - self.fraction) / self.fraction
        return None

    def detail(self) -> str:
        """`1,200 of 5,000 messages · 240 messages/s · ETA 16 s` (whatever is known)."""
        parts = []
        rate = self.rate()
        if self.unit == "bytes" and self.done is not None and self._kind.startswith("count"):
            parts.append(f"{_megabytes(self.done)} of {_megabytes(self.total or 0)} MB")
            if rate:
                parts.append(f"{_megabytes(rate)} MB/s")
        else:
            if self.stage:
                parts.append(self.stage)
            elif self.done is not None:
                parts.append(f"{self.done:,.0f} of {self.total or 0:,.0f} {self.counted}")
            if rate:
                shown = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"
                parts.append(f"{shown} {self.counted}/s")
        if 0 < self.fraction < 1:
            parts.append(f"{self.fraction:.0%}")
        eta = self.eta()
        if eta is not None and self.fraction < 1:
            parts.append(f"ETA {_duration(eta)}")
        return " · ".join(parts)

    def line(self) -> str:
        elapsed = _duration(self.clock() - self.started)
        detail = self.detail()
        if not detail:
            return f"{self.description}: {elapsed} so far"
        return f"{self.description}: {detail} ({elapsed} so far)"


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get(ENV_INTERVAL, INTERVAL_S)))
    except ValueError:
        return INTERVAL_S


class ProgressBar:
    """`with ProgressBar(console, "import x.csv", unit="bytes") as update:` gives a callback
    (None when disabled): update(done, total) for counts (unit "bytes", "messages", ...),
    update(stage, fraction) for stages (unit "stage"). On a terminal a bar with the counts,
    rate and ETA; off a terminal a plain line every `$TECHNE_PROGRESS_INTERVAL` seconds
    (default 5) and one when it ends."""

    def __init__(
        self,
        console: Console,
        description: str,
        *,
        unit: str = "stage",
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.description = escape(shown(description))  # the column reads markup
        self.unit = unit
        self.enabled = enabled
        self.meter = Meter(description, unit, clock)
        self._progress: Any = None
        self._task: Any = None
        self._printed_at: float | None = None
        self._updated = False

    def __enter__(self) -> Any:
        if not self.enabled:
            return None
        if self.console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                TextColumn("{task.fields[detail]}", markup=False),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                escape(shown(self.description)), total=1.0, detail=""
            )

        def update(first: Any, second: Any) -> None:
            if isinstance(first, str):
                self.meter.by_stage(first, float(second))
            else:
                self.meter.by_count(int(first), int(second))
            self._updated = True
            self._show()

        return update

    def _show(self) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task, completed=self.meter.fraction, detail=escape(shown(self.meter.detail()))
            )
            return
        now = self.meter.clock()
        if self._printed_at is None or now - self._printed_at >= _interval():
            self._printed_at = now
            self._write(shown(self.meter.line()))

    def _write(self, line: str) -> None:
        self.console.file.write(line + "\n")
        self.console.file.flush()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
        elif self.enabled and self._updated and exc_type is None:
            took = _duration(self.meter.clock() - self.meter.started)
            self._write(shown(f"{self.description}: done in {took}"))
