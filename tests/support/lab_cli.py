"""Helpers for tests that drive the real CLI against lab hosts: run it from the lab's client namespace,
put the stand-in gateway on a host, read unit invocation IDs and health answers from inside a host."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.support.cli import cli_argv, cli_env

STANDIN = Path(__file__).parent / "standin-openclaw"
STANDIN_PATH = "/usr/local/bin/openclaw-standin"
CANARY = "canary-secret-5d1e0b77"


class Provision:
    """Runs the real CLI as an operator would, from inside the lab's client namespace."""

    def __init__(self, lab: Lab, cwd: Path) -> None:
        self.lab = lab
        self.cwd = cwd
        self.outputs: list[str] = []

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = cli_env({"RESCUE_TOKEN": CANARY, "NO_COLOR": "1", **(env or {})})
        argv = self.lab.client_argv(cli_argv(*args))
        r = subprocess.run(argv, cwd=self.cwd, env=full_env, capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL)
        self.outputs += [r.stdout, r.stderr]
        return r


def install_standin(host: LabHost) -> None:
    host.write_file(STANDIN_PATH, STANDIN.read_bytes(), mode=0o755)


def invocation(host: LabHost, unit: str) -> str:
    return host.run(["systemctl", "show", "-p", "InvocationID", "--value", unit]).stdout.strip()


def readyz(host: LabHost, port: int, wait: float = 10.0) -> str:
    """The status /readyz answers on the host itself, polled for up to `wait` seconds until it is 200."""
    code = ("import urllib.request,sys,time\n"
            "end = time.time() + float(sys.argv[2])\n"
            "while True:\n"
            " try: s = urllib.request.urlopen(sys.argv[1], timeout=3).status\n"
            " except Exception as e: s = getattr(e, 'code', 'down')\n"
            " if s == 200 or time.time() > end: break\n"
            " time.sleep(0.2)\n"
            "print(s)")
    return host.run(["python3", "-c", code, f"http://127.0.0.1:{port}/readyz", str(wait)]).stdout.strip()
