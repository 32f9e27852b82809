"""Hostile values in the dedupe directory and its mount: the directory name is data to `dedupe verify`, and an sshfs
identity file path stays one mount option (sshfs runs its `ssh_command` option)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.security.support import (
    both,
    executed_on_host,
    located_errors,
    marker,
    operator_cli,
    prepare_host,
    single_host_doc,
    tail,
    write_yaml,
)

pytestmark = pytest.mark.lab


# ---- the dedupe directory and its mount ----------------------------------------------------------------------

def test_dedupe_verify_treats_the_directory_name_as_data(make_host: Callable[..., LabHost], lab: Lab,
                                                         tmp_path: Path) -> None:
    host = make_host("systemd")
    prepare_host(host)
    cli = operator_cli(lab, tmp_path)
    d = f"/srv/ocs-claims $(touch /tmp/{marker('dd1')}) `touch /tmp/{marker('dd2')}` 'q' \"d\" ü"
    inv = write_yaml(tmp_path / "dedupe.yaml", single_host_doc(
        host, {"main": {"port": 18789}}, dedupe={"dir": d, "configure_gateway": False}))
    r = cli("validate", inv)
    assert r.returncode == 0, tail(r)  # the name is data: nothing in it needs refusing
    r = cli("apply", inv, "--yes")
    assert r.returncode == 0, tail(r)
    host.run(["install", "-d", "-m", "0777", "--", d])  # the operator's (or the mount's) job; verify checks it
    r = cli("dedupe", "verify", inv)
    assert f"{d} exists on every host" in both(r), tail(r)
    assert executed_on_host(host) == [], f"`dedupe verify` ran what the directory name holds:\n{tail(r, 1500)}"


def test_an_sshfs_identity_file_stays_one_mount_option(make_host: Callable[..., LabHost], lab: Lab,
                                                       tmp_path: Path) -> None:
    """Mount options are comma-separated and sshfs runs its `ssh_command` option: a path must not add options.
    The mount's source is hostile too (What= takes it as one word)."""
    host = make_host("systemd")
    prepare_host(host)
    cli = operator_cli(lab, tmp_path)
    identity = f"/root/.ssh/id ed25519,ssh_command=sh -c >/tmp/{marker('mnt')}"
    source = f"{host.address}:/export/sp ace 'q' \"d\" $(touch /tmp/{marker('src')}) `touch /tmp/{marker('src2')}`"

    def doc(name: str, src: str, ident: str) -> str:
        return write_yaml(tmp_path / name, single_host_doc(host, {"main": {"port": 18789}}, dedupe={
            "dir": "/srv/ocs-claims", "configure_gateway": False,
            "mount": {"type": "sshfs", "source": src, "identity_file": ident}}))

    # the identity file that would add an option is refused, on its own line, saying why
    inv = doc("identity.yaml", f"{host.address}:/export/plain", identity)
    r = cli("validate", inv)
    errors = located_errors(r, inv)
    assert r.returncode == 1 and len(errors) == 1 and errors[0][2].startswith("dedupe.mount.identity_file:"), tail(r)
    assert "no commas, blanks or quotes" in errors[0][2], tail(r)
    assert Path(inv).read_text().splitlines()[errors[0][0] - 1].strip().startswith("identity_file:"), errors
    # the hostile source, with a plain identity file, is accepted: What= holds it as one word, and nothing runs
    plain = "/root/.ssh/id_ed25519"
    inv = doc("source.yaml", source, plain)
    r = cli("validate", inv)
    assert r.returncode == 0, tail(r)
    out = tmp_path / "rendered"
    assert cli("render", inv, "--out", str(out)).returncode == 0
    unit = next((out / "gw" / "etc/systemd/system").glob("*.mount")).read_text()
    assert f"What={source}" in unit.splitlines(), unit
    options_line = next(line for line in unit.splitlines() if line.startswith("Options="))
    options = [o.replace("\\,", ",") for o in re.split(r"(?<!\\),", options_line.removeprefix("Options="))]
    assert f"IdentityFile={plain}" in options and not any(o.startswith("ssh_command=") for o in options), options
    cli("apply", inv, "--yes")  # the mount cannot succeed (nothing serves that path); what matters is what ran
    assert executed_on_host(host) == []
