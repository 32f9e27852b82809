"""Progress of a long apply: a live per-host display on a terminal (rich), plain log lines otherwise."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
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


class JsonEventsProgress:
    """apply --json-events: every progress report becomes one event (a dict) handed to `write`, one at a time.

    Events: {"type": "batch", "hosts": [...]} when a batch starts; {"type": "progress", "host", "message"} as a host
    goes (the controller's own reports have host null; with "kind" and "data" when the report carries its facts);
    {"type": "host_done", "host", "ok", "message"} per host."""

    def __init__(self, write: Callable[[dict[str, Any]], None]) -> None:
        self._write = write
        self._lock = threading.RLock()  # reentrant for the same reason as ApplyProgress's

    def __call__(self, host: str, message: str) -> None:
        if host == "batch":
            self._emit({"type": "batch", "host": None, "hosts": message.split(", "), "message": message})
        else:
            event: dict[str, Any] = {"type": "progress", "host": None if host == "controller" else host,
                                     "message": str(message)}
            # a message that carries its facts (apply/results.py ProgressEvent: the gate, a watched restart) gives
            # them as "kind" and "data", for a pipeline to read without parsing the text
            kind, data = getattr(message, "kind", None), getattr(message, "fields", None)
            if kind:
                event["kind"] = kind
            if data:
                event["data"] = data
            self._emit(event)

    def done(self, host: str, ok: bool, message: str) -> None:
        self._emit({"type": "host_done", "host": host, "ok": ok, "message": message})

    def close(self) -> None:
        pass

    def _emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._write(event)
