"""Shared fixtures: the real OpenClaw install and the lab of real SSH and systemd hosts."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def _lab_per_worker() -> None:
    """Under pytest-xdist every worker gets a lab of its own: namespaces, cgroups and addresses are global on
    the machine, so each needs its own prefix and subnet (the lab itself allows one lab per prefix)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    n = int(worker[2:])
    prefix = os.environ.get("OCP_LAB_PREFIX", "ocp-")
    os.environ["OCP_LAB_PREFIX"] = f"{prefix.rstrip('-')}{n}-"
    a, b, c = os.environ.get("OCP_LAB_SUBNET", "10.78.0").split(".")
    os.environ["OCP_LAB_SUBNET"] = f"{a}.{b}.{int(c) + 100 + n}"
    os.environ.pop("OCP_LAB_DIR", None)


_lab_per_worker()


def _mutmut_modes_stay_in_process() -> None:
    """Under `scripts/mutation`, mutmut's own phases (recording which test reaches which function, checking that
    a broken function fails a test) live in this process only: a CLI subprocess started in a temporary directory
    cannot record its hits here, and would fail looking for mutmut's settings. Mutant runs (a mutant's name in
    MUTANT_UNDER_TEST) still reach the subprocesses, so CLI tests kill mutants too."""
    if os.environ.get("MUTANT_UNDER_TEST") in ("stats", "fail", "list_all_tests", "mutant_generation"):
        del os.environ["MUTANT_UNDER_TEST"]  # mutmut keeps its own copy of the mode for this process


_mutmut_modes_stay_in_process()

pytest_plugins = ["tests.openclaw_fixtures", "tests.lab.fixtures"]


@pytest.fixture()
def own_controller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A controller of this test's own: an empty cache dir (so a digest key of its own), no shared key file."""
    from provisioner import digests

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-a"))
    monkeypatch.delenv(digests.KEY_ENV, raising=False)
    digests.forget_key()
    yield tmp_path / "cache-a"
    digests.forget_key()  # later tests in this process load their own key again
