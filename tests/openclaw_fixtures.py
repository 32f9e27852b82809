"""Pytest plugin: session fixtures giving tests the real OpenClaw, installed by scripts/install-openclaw."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OPENCLAW_VERSION = os.environ.get("OCP_TEST_OPENCLAW_VERSION", "2026.9.6")
INSTALL_TIMEOUT_S = 1800  # a cold install downloads ~850 MB from the npm registry


@dataclass(frozen=True)
class OpenClawInstall:
    version: str
    dir: Path  # the install dir (node24/, oc/, bin/openclaw)

    @property
    def exe(self) -> Path:
        return self.dir / "bin" / "openclaw"

    def env(self, home: Path, state_dir: Path, config_path: Path, **extra: str) -> dict[str, str]:
        """An environment that points OpenClaw only at the given paths: inherited OPENCLAW_* would leak in."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCLAW_")}
        env.update(HOME=str(home), OPENCLAW_STATE_DIR=str(state_dir), OPENCLAW_CONFIG_PATH=str(config_path))
        env.update(extra)
        return env

    def run(self, args: list[str], env: Mapping[str, str],
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.exe), *args], env=dict(env), capture_output=True, text=True,
                              timeout=timeout, check=False)


@pytest.fixture(scope="session")
def openclaw_install() -> OpenClawInstall:
    """The real OpenClaw, installed (or found) once per session; fails, never skips, if it cannot be."""
    script = REPO / "scripts" / "install-openclaw"
    try:
        proc = subprocess.run([str(script), OPENCLAW_VERSION], capture_output=True, text=True,
                              timeout=INSTALL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"could not run {script}: {exc}", pytrace=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(f"{script} {OPENCLAW_VERSION} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}",
                    pytrace=False)
    install = OpenClawInstall(OPENCLAW_VERSION, Path(proc.stdout.strip().splitlines()[-1]))
    if not os.access(install.exe, os.X_OK):
        pytest.fail(f"install-openclaw reported {install.dir}, but {install.exe} is not executable",
                    pytrace=False)
    return install
