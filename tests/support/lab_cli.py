"""Helpers for tests that drive the real CLI against lab hosts (the runner itself is tests.support.cli.Provision,
given `lab=` and `env=LAB_ENV`): put the stand-in gateway on a host, read unit invocation IDs and health answers
from inside a host."""

from __future__ import annotations

from pathlib import Path

from tests.lab.hosts import LabHost

STANDIN = Path(__file__).parent / "standin-openclaw"
STANDIN_PATH = "/usr/local/bin/openclaw-standin"
CANARY = "canary-secret-5d1e0b77"
LAB_ENV = {"RESCUE_TOKEN": CANARY}  # what the lab inventories' `secrets: {...: {env: RESCUE_TOKEN}}` read


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
