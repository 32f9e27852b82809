"""The rollout driver (provisioner/apply/driver.py) without hosts: a fake fleet, the per-host work stubbed."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from provisioner.apply import driver
from provisioner.apply.driver import Rollout
from provisioner.apply.results import HostResult, HostStatus
from provisioner.apply.rollout import Playbook
from provisioner.core.changes import Action, Change, HostPlan, Plan
from provisioner.remote.transport import TransportError


class FakeFleet:
    def transport(self, h: Any) -> str:
        return f"transport of {h.name}"

    def each(self, hosts: list[Any], fn: Callable[[Any], Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for h in hosts:
            try:
                out[h.name] = fn(h)
            except Exception as exc:  # noqa: BLE001 - as Fleet.each: an exception is that host's result
                out[h.name] = exc
        return out


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.closed = 0

    def __call__(self, host: str, message: str) -> None:
        self.lines.append((host, message))

    def done(self, host: str, ok: bool, message: str) -> None:
        self.lines.append((host, f"done {ok} {message}"))

    def close(self) -> None:
        self.closed += 1


def host(name: str) -> Any:
    return SimpleNamespace(name=name, connection="local", ssh=SimpleNamespace(become=False, user="root"))


def change(h: str) -> Change:
    return Change(h, "main", "/etc/x", Action.UPDATE, "content")


def rollout(names: list[str], playbook: Playbook, *, error: str = "") -> tuple[Rollout, Recorder, list[str]]:
    hosts = [host(n) for n in [*names, "idle", "down"]]
    plans = [HostPlan(n, (change(n),)) for n in names]
    plans += [HostPlan("idle", ()), HostPlan("down", (), error=error or "unreachable: no route")]
    session = SimpleNamespace(inv=None, hosts=hosts, desired={h.name: h.name for h in hosts}, partial=False)
    stopped: list[str] = []
    r = Rollout(session, Plan("inv.yaml", "0" * 64, tuple(plans)), FakeFleet(), playbook,  # type: ignore[arg-type]
                Recorder(), stop_now=lambda: stopped.append("now"))
    return r, r.progress, stopped  # type: ignore[return-value]


def test_a_failed_batch_stops_the_rollout_and_every_host_has_a_result(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def apply_host(t: str, desired: str, planned: HostPlan, **kw: Any) -> HostResult:
        if planned.host == "b":
            raise TransportError("b", "connection reset")
        return HostResult(planned.host, HostStatus.CHANGED)

    monkeypatch.setattr(driver, "apply_host", apply_host)
    r, progress, _ = rollout(["a", "b", "c"], Playbook(serial=(1,)))
    result = r.run()
    status = {n: h.status for n, h in result.results.items()}
    assert status == {"a": HostStatus.CHANGED, "b": HostStatus.FAILED, "c": HostStatus.NOT_REACHED,
                      "idle": HostStatus.UNCHANGED, "down": HostStatus.UNREACHABLE}
    assert "connection lost during apply" in result.results["b"].message
    assert result.results["down"].message == "unreachable: no route"
    assert result.stopped_after_batch == 2 and progress.closed == 1
    assert ("batch", "a") in progress.lines and ("a", "done True changed") in progress.lines
    assert capsys.readouterr() == ("", "")  # the driver prints nothing: all goes through the progress


def test_rollback_puts_back_the_good_hosts_of_a_failed_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    def apply_host(t: str, desired: str, planned: HostPlan, **kw: Any) -> HostResult:
        ok = planned.host != "b"
        return HostResult(planned.host, HostStatus.CHANGED if ok else HostStatus.FAILED)

    rolled: list[str] = []

    def roll_back_host(t: str, desired: str, done: HostResult, **kw: Any) -> HostResult:
        rolled.append(done.host)
        return HostResult(done.host, HostStatus.ROLLED_BACK)

    monkeypatch.setattr(driver, "apply_host", apply_host)
    monkeypatch.setattr(driver, "roll_back_host", roll_back_host)
    r, _, _ = rollout(["a", "b"], Playbook(serial=(2,), on_failure="rollback"))
    result = r.run()
    assert rolled == ["a"] and result.results["a"].status is HostStatus.ROLLED_BACK


def test_first_interrupt_starts_no_more_hosts_and_the_second_stops_now(monkeypatch: pytest.MonkeyPatch) -> None:
    r, progress, stopped = rollout(["a", "b"], Playbook(serial=(1,)))

    def apply_host(t: str, desired: str, planned: HostPlan, **kw: Any) -> HostResult:
        r.interrupt(2, None)  # Ctrl-C while the first host is in flight
        return HostResult(planned.host, HostStatus.CHANGED)

    monkeypatch.setattr(driver, "apply_host", apply_host)
    result = r.run()
    assert result.interrupted and result.results["a"].status is HostStatus.CHANGED
    assert result.results["b"].status is HostStatus.NOT_REACHED and stopped == []
    r.interrupt(2, None)
    assert stopped == ["now"] and progress.closed == 2


def test_the_progress_display_can_be_closed_by_a_handler_that_interrupts_its_own_report() -> None:
    """A second Ctrl-C's handler runs on the main thread, maybe while that thread is inside the display's lock
    (printing the first Ctrl-C's report): closing the display from there must not wait for itself."""
    import threading

    from provisioner.output.progress import ApplyProgress

    shown = ApplyProgress(live=False, quiet=True)
    finished = threading.Event()

    def report_interrupted_by_the_second_ctrl_c() -> None:
        with shown._lock:  # the first report, mid-print
            shown.close()  # what the second Ctrl-C's handler does
            shown("h", "still reporting")
        finished.set()

    worker = threading.Thread(target=report_interrupted_by_the_second_ctrl_c, daemon=True)
    worker.start()
    assert finished.wait(5), "closing the display from inside its own lock waited for itself"
