"""Waiting on an event a test can observe (a file, a unit's state), polled, with a bound that fails the test."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(cond: Callable[[], bool], what: str = "", timeout: float = 120) -> None:
    """Poll `cond` until it holds. The bound only catches a hang: a passing run never waits for it, so it is set
    for the slowest machine the suite runs on (at a load average of 30-50 on 2 cores, starting an apply up to
    the point where it takes the host lock was measured above 30 s)."""
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.05)
