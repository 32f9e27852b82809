"""`--forks N` and the inventory's `forks`: at most that many hosts are worked on at once, through the real CLI.

The CLI runs in this process on local stand-in hosts; the fact-gathering stage (the first thing done per host)
is wrapped to count the hosts in flight. Each host, once in, waits until its whole wave is in flight (so a limit
that is honoured is also reached), then waits a little longer for an extra host that would break the limit.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from provisioner.apply import fleet
from provisioner.cli.main import main

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("own_controller")]


def _inventory(tmp_path: Path, hosts: int, forks: int | None = None) -> str:
    names = [f"h{i}" for i in range(hosts)]
    lines = ["version: 1", 'openclaw: {version: "2026.9.6", command: [/opt/openclaw/bin/openclaw]}',
             *([f"forks: {forks}"] if forks else []), "defaults:", "  service: {manager: none}", "hosts:"]
    lines += [f"  {n}: {{connection: local, root: hosts/{n}, instances: {{main: {{port: 18789}}}}}}" for n in names]
    p = tmp_path / "inv.yaml"
    p.write_text("\n".join(lines) + "\n")
    return str(p)


class InFlight:
    """Wraps `gather`: counts the hosts inside it, the most at once, and holds each until `wave` are in."""

    def __init__(self, wave: int) -> None:
        self.wave = wave
        self.now = 0
        self.most = 0
        self.cv = threading.Condition()

    def wrap(self, real: Any) -> Any:
        def gather(*a: Any, **kw: Any) -> Any:
            with self.cv:
                self.now += 1
                self.most = max(self.most, self.now)
                self.cv.notify_all()
                assert self.cv.wait_for(lambda: self.now >= self.wave, timeout=60), "the wave never filled"
                # a broken limit lets another host in now; an honoured one never does
                self.cv.wait_for(lambda: self.now > self.wave, timeout=0.3)
                self.most = max(self.most, self.now)
            try:
                return real(*a, **kw)
            finally:
                with self.cv:
                    self.now -= 1
                    self.cv.notify_all()
        return gather


@pytest.mark.parametrize(("flag", "in_inventory", "limit"), [(2, None, 2), (None, 3, 3), (2, 3, 2)],
                         ids=["flag", "inventory", "flag-wins"])
def test_at_most_forks_hosts_are_in_flight_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str], flag: int | None,
                                                    in_inventory: int | None, limit: int) -> None:
    monkeypatch.chdir(tmp_path)
    inv = _inventory(tmp_path, 2 * limit, in_inventory)  # two full waves
    count = InFlight(limit)
    monkeypatch.setattr(fleet, "gather", count.wrap(fleet.gather))
    rc = main(["plan", inv, *(["--forks", str(flag)] if flag else [])])
    assert rc == 0, capsys.readouterr()
    assert count.most == limit


def test_without_forks_the_default_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(fleet, "DEFAULT_FORKS", 4)
    count = InFlight(4)
    monkeypatch.setattr(fleet, "gather", count.wrap(fleet.gather))
    assert main(["plan", _inventory(tmp_path, 8)]) == 0, capsys.readouterr()
    assert count.most == 4


@pytest.mark.parametrize("bad", ["0", "-1", "two", "1025"])
def test_forks_must_be_a_whole_number_from_1(bad: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", _inventory(tmp_path, 1), "--forks", bad]) == 1
    assert "--forks: must be a whole number from 1 to 1024" in capsys.readouterr().err


def test_an_inventory_forks_of_0_is_a_located_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = _inventory(tmp_path, 1)
    Path(inv).write_text(Path(inv).read_text().replace("defaults:", "forks: 0\ndefaults:"))
    assert main(["validate", inv]) == 1
    assert f"{inv}:3:8: error" in capsys.readouterr().err
