"""Progress display: rich progress bars on a terminal, nothing with ``--quiet``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["ProgressDisplay", "StepHandle", "make_progress"]


class StepHandle(Protocol):
    def advance(self, amount: int = 1) -> None: ...

    def set_total(self, total: int) -> None: ...


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
                TimeElapsedColumn(),
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
