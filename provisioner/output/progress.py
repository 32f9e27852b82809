"""Progress of a long apply: a live per-host display on a terminal (rich), plain log lines otherwise."""

from __future__ import annotations

import sys
import threading
from typing import Any


class ApplyProgress:
    """Per-host status lines; thread-safe, since hosts report from worker threads."""

    def __init__(self, live: bool, quiet: bool = False) -> None:
        # reentrant: the SIGINT handler runs on the main thread, possibly while that thread holds the lock (the
        # first Ctrl-C's report being printed); a second Ctrl-C then closes the display from inside it, and a
        # plain lock would wait for itself forever
        self._lock = threading.RLock()
        self._quiet = quiet
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        if live and not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                      console=Console(stderr=True), transient=False)
            self._progress.start()

    def __call__(self, host: str, message: str) -> None:
        with self._lock:
            if self._progress is None:
                if not self._quiet:
                    print(f"  {host}: {message}", file=sys.stderr, flush=True)
                return
            task = self._tasks.get(host)
            text = f"[bold]{host}[/bold]: {message}"
            if task is None:
                self._tasks[host] = self._progress.add_task(text, total=None)
            else:
                self._progress.update(task, description=text)

    def done(self, host: str, ok: bool, message: str) -> None:
        with self._lock:
            if self._progress is None:
                return
            task = self._tasks.get(host)
            mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
            text = f"{mark} [bold]{host}[/bold]: {message}"
            if task is None:
                task = self._tasks[host] = self._progress.add_task(text, total=1)
            self._progress.update(task, description=text, total=1, completed=1)

    def close(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
