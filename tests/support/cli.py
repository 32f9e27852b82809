"""How tests start the real CLI: this checkout's code, whatever copy of the package is installed.

`Provision` is the one runner every test uses, on the controller itself or from a lab's client namespace."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

REPO = Path(__file__).resolve().parents[2]


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "provisioner.cli", *args]


def cli_env(extra: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI subprocess; PYTHONPATH puts this checkout first (tests may run in a clone
    while an editable install points elsewhere)."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


class ClientNamespace(Protocol):
    """Where a client must run to reach lab hosts (tests.lab.harness.Lab)."""

    def client_argv(self, argv: Sequence[str]) -> list[str]: ...


class Provision:
    """Runs the real CLI (`python -m provisioner.cli`) as an operator would, and keeps every output for scanning.

    - `cwd`: its working directory (None: this process's).
    - `lab`: run it inside the lab's client namespace (`lab.client_argv`), where lab hosts are reachable.
    - `env`: set for every run, over this process's environment, PYTHONPATH (this checkout) and NO_COLOR=1;
      a value None removes that variable. `__call__`/`start` take an `env` for one run, merged on top.
    - `timeout`: seconds a run may take (per run: `__call__(..., timeout=)`, `finish(..., timeout=)`); a run
      that takes longer is killed and `subprocess.TimeoutExpired` raised.
    - `forbid_traceback`: fail (assert) when a run's stderr holds a Python traceback.

    `provision(*args)` runs to completion; `start(*args)` returns the running `Popen` (to signal it, or to run
    several at once) and `finish(proc)` waits for it. stdin is always /dev/null: the CLI never gets a terminal.
    `outputs` holds the stdout and the stderr of every finished run, in order."""

    def __init__(self, cwd: Path | None = None, *, lab: ClientNamespace | None = None,
                 env: Mapping[str, str | None] | None = None, timeout: float | None = 300,
                 forbid_traceback: bool = False) -> None:
        self.cwd = cwd
        self.lab = lab
        self.env: dict[str, str | None] = {"NO_COLOR": "1", **(env or {})}
        self.timeout = timeout
        self.forbid_traceback = forbid_traceback
        self.outputs: list[str] = []

    def argv(self, *args: str) -> list[str]:
        argv = cli_argv(*args)
        return self.lab.client_argv(argv) if self.lab is not None else argv

    def environ(self, env: Mapping[str, str | None] | None = None) -> dict[str, str]:
        merged = {**self.env, **(env or {})}
        full = cli_env({k: v for k, v in merged.items() if v is not None})
        for k, v in merged.items():
            if v is None:
                full.pop(k, None)
        return full

    def start(self, *args: str, env: Mapping[str, str | None] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(*args), cwd=self.cwd, env=self.environ(env), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, proc: subprocess.Popen[str], timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        try:
            out, err = proc.communicate(timeout=self.timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        self.outputs += [out, err]
        if self.forbid_traceback:
            assert "Traceback (most recent call last)" not in err, err[-3000:]
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def __call__(self, *args: str, env: Mapping[str, str | None] | None = None,
                 timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        return self.finish(self.start(*args, env=env), timeout)
