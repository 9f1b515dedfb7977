"""Progress display: rich progress bars on a terminal, nothing with ``--quiet``.

Each step shows its elapsed time; a step that counts its work (``total`` > 1) also shows its
rate (units a second) and, while running, an estimate of the time left.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["ProgressDisplay", "StepHandle", "make_progress"]


class StepHandle(Protocol):
    def advance(self, amount: int = 1) -> None: ...

    def set_total(self, total: int) -> None: ...


class _RateColumn(ProgressColumn):
    """Units done a second, for steps that count their work."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None or (task.total or 0) <= 1:
            return Text("")
        return Text(
            f"{speed:,.1f}/s" if speed < 100 else f"{speed:,.0f}/s", style="progress.data.speed"
        )


class _TimeLeftColumn(TimeRemainingColumn):
    """Estimated time left, for steps that count their work."""

    def render(self, task: Task) -> Text:
        if (task.total or 0) <= 1:
            return Text("")
        return super().render(task)


class _RichStep:
    def __init__(self, progress: Progress, task_id: TaskID) -> None:
        self._progress = progress
        self._task = task_id

    def advance(self, amount: int = 1) -> None:
        self._progress.advance(self._task, amount)

    def set_total(self, total: int) -> None:
        self._progress.update(self._task, total=total)


class _NullStep:
    def advance(self, amount: int = 1) -> None:
        pass

    def set_total(self, total: int) -> None:
        pass


class ProgressDisplay:
    def __init__(self, *, quiet: bool = False, console: Console | None = None) -> None:
        self.quiet = quiet
        self.console = console or Console(stderr=True)
        self._progress: Progress | None = None

    def __enter__(self) -> ProgressDisplay:
        if not self.quiet:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeElapsedColumn(),
                _TimeLeftColumn(compact=True),
                console=self.console,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @contextmanager
    def step(self, description: str, total: int = 1) -> Iterator[StepHandle]:
        """A progress bar for one step; completed when the block ends."""
        if self._progress is None:
            yield _NullStep()
            return
        task = self._progress.add_task(description, total=total)
        try:
            yield _RichStep(self._progress, task)
        finally:
            current = next(t for t in self._progress.tasks if t.id == task)
            self._progress.update(task, completed=current.total or total)

    def note(self, message: str) -> None:
        """Print a note (rich markup allowed); a message whose data is not valid markup, such
        as a ``[/bold]`` in a file name, is printed as plain text instead of crashing."""
        if self.quiet:
            return
        from rich.errors import MarkupError
        from rich.text import Text

        from audit_sdk.errors import terminal_safe
        from audit_sdk.redaction import redact_text

        safe = terminal_safe(redact_text(message))
        try:
            text = Text.from_markup(safe)
        except MarkupError:
            text = Text(safe)
        self.console.print(text)


def make_progress(quiet: bool) -> ProgressDisplay:
    return ProgressDisplay(quiet=quiet)
