"""One progress bar for long work (imports, syncs), behind the library's ``Progress`` protocol."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn


class RowsBar:
    """Rows done out of the total (a spinner when the total is unknown); silent below ``minimum``
    rows, so small jobs print nothing extra."""

    def __init__(self, console: Console, label: str, minimum: int = 0) -> None:
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True,
        )  # fmt: skip
        self.label, self.minimum = label, minimum
        self.task: TaskID | None = None

    def start(self, total: int) -> None:
        if total >= self.minimum:
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=total or None)

    def advance(self, rows: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, rows)

    def stop(self) -> None:
        if self.task is not None:
            self.progress.stop()
