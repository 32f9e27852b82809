"""Shared fixtures: the real OpenClaw install and the lab of real SSH and systemd hosts."""

import os


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

pytest_plugins = ["tests.openclaw_fixtures", "tests.lab.fixtures"]
