"""Hostile paths that systemd reads differently from how a unit file writes them (trailing whitespace, a final
backslash, wildcards in EnvironmentFile=, quotes and `$` in ExecStart='s program): refused by `validate`, or they
still reach the gateway intact."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.security.matrix import Doc, Layout, Pair, classify, expand, unit_setting_edge, y
from tests.security.support import (
    VERSION,
    WRAP_PATH,
    clear_records,
    executed_on_host,
    host_facts,
    located_errors,
    marker,
    operator_cli,
    prepare_host,
    record_key,
    single_host_doc,
    tail,
    write_yaml,
)

pytestmark = pytest.mark.lab


# ---- values systemd reads differently ------------------------------------------------------------------------

# (field, value) pairs that systemd itself reads differently from how the unit file writes them; each is tried on
# its own in test_paths_systemd_reads_differently_are_refused_or_still_work instead of in the big apply
SYSTEMD_EDGES = [("state_dir", "trail "), ("state_dir", "end\\"), ("state_dir", "*?[ab]"), ("env_file", "trail "),
                 ("env_file", "end\\"), ("env_file", "*?[ab]"), ("env_file", "back\\slash")]


def edge_instance(fld: str, v: str) -> dict[str, Any]:
    where = {"state_dir": Layout.state_dir(v)} if fld == "state_dir" else {"env_file": Layout.env_file(v)}
    return {**where, "env": {"OCS_HOSTILE": "delivered"}}


def edge_doc(inc: Callable[[Pair], bool]) -> Doc:
    d = Doc()
    for line in ("version: 1", f"openclaw: {{version: {y(VERSION)}, command: [{y(WRAP_PATH)}]}}", "hosts:", "  gw:",
                 '    address: "192.0.2.10"', "    instances:"):
        d.add(0, line)
    for i, (fld, v) in enumerate(SYSTEMD_EDGES):
        d.add(6, f"e{i}:")
        d.add(8, f"port: {20000 + 150 * i}")
        if inc((fld, i)):
            for key, val in edge_instance(fld, v).items():
                d.add(8, f"{key}: {json.dumps(val, ensure_ascii=False)}", (fld, i))
    return d


def test_paths_systemd_reads_differently_are_refused_or_still_work(
        make_host: Callable[..., LabHost], lab: Lab, tmp_path: Path) -> None:
    """systemd strips a setting's trailing whitespace, joins a line ending in a backslash with the next one, and
    reads EnvironmentFile= as a wildcard pattern; WorkingDirectory= and EnvironmentFile= take the path unquoted.
    A state dir or env file path that systemd would read differently must be refused by validate, or reach the
    gateway intact (an env file that silently does not load leaves the gateway without its secrets)."""
    host = make_host("systemd")
    prepare_host(host)
    cli = operator_cli(lab, tmp_path)
    rejected, accepted = classify(cli, tmp_path, edge_doc)
    # what keeps a gateway from starting (a working directory that is not there, a line joined with the next one)
    # would fail the whole apply and hide the rest: those get applies of their own, one per field
    def breaks(p: Pair) -> bool:
        v = SYSTEMD_EDGES[p[1]][1]
        return v.endswith("\\") or (p[0] == "state_dir" and unit_setting_edge(v))

    alone = [sorted(p for p in accepted if breaks(p) and p[0] == fld) for fld in ("state_dir", "env_file")]
    batches = [*alone, sorted(p for p in accepted if not breaks(p))]
    problems = []
    for n, batch in enumerate(b for b in batches if b):
        clear_records(host)
        insts = {f"e{i}": {"port": 20000 + 150 * i, **edge_instance(fld, SYSTEMD_EDGES[i][1])} for fld, i in batch}
        # a gateway that cannot start costs the whole health timeout: short for the cases that may break the unit
        inv = write_yaml(tmp_path / f"edge-{n}.yaml",
                         single_host_doc(host, insts, health_timeout=5 if batch in alone else 30))
        r = cli("apply", inv, "--yes")
        if r.returncode != 0:
            what = ", ".join(f"{fld} {insts[f'e{i}'][fld]!r}" for fld, i in batch)
            problems.append(f"{what}: accepted by validate, but apply failed:\n{tail(r, 700)}")
            continue
        records = host_facts(host, [])["records"]
        for fld, i in batch:
            inst = insts[f"e{i}"]
            rec = records.get(record_key(f"e{i}"))
            want = {"cwd": expand(inst.get("state_dir", f"~/.openclaw-e{i}"), "/home/openclaw"),
                    "OCS_HOSTILE": "delivered"}
            got = rec and {"cwd": rec["cwd"], "OCS_HOSTILE": rec["env"].get("OCS_HOSTILE")}
            if got != want:
                unit = host.read_file(f"/etc/systemd/system/openclaw-gateway-e{i}.service").decode()
                settings = [ln for ln in unit.splitlines() if ln.startswith(("EnvironmentFile=", "WorkingDirectory="))]
                problems.append(f"{fld} {inst[fld]!r}: accepted and applied, but the gateway got {got}, wanted {want} "
                                f"(the unit says {settings})")
    print(f"\nsystemd edge paths: refused {sorted(rejected)}, accepted {sorted(accepted)}")
    assert problems == [], "\n".join(problems)
    assert executed_on_host(host) == []


def test_executable_paths_systemd_takes_differently_are_refused_or_still_work(
        make_host: Callable[..., LabHost], lab: Lab, tmp_path: Path) -> None:
    """The first word of ExecStart= is the program: systemd refuses quotes and backslashes in it and expands no
    `$$` there. A command path with such characters must be refused by validate, or run as written."""
    host = make_host("systemd")
    exes = {"quotes-and-backslash": "/opt/it's \"q\" back\\slash/ocs-wrap",
            "dollar": f"/opt/$(touch /tmp/{marker('exe')}) $HOME/ocs-wrap",
            "inner-space": "/opt/ocs inner space/ocs-wrap"}  # what systemd takes as written: it must run
    refused = {"quotes-and-backslash", "dollar"}
    prepare_host(host, exes.values())
    cli = operator_cli(lab, tmp_path)
    problems = []
    for name, exe in exes.items():
        clear_records(host)
        inv = write_yaml(tmp_path / f"{name}.yaml", single_host_doc(host, {"main": {"port": 18789}}, [exe],
                                                                        health_timeout=5))
        r = cli("validate", inv)
        if name in refused:
            # refused where the command is written (openclaw.command[0], line 5), saying why
            assert r.returncode == 1, tail(r)
            assert [(line, msg.split(" makes ")[0]) for line, _, msg in located_errors(r, inv)] == [
                (5, "openclaw.command[0]")] and "systemd refuses quotes and backslashes" in r.stdout + r.stderr, tail(r)
            continue
        assert r.returncode == 0, tail(r)
        r = cli("apply", inv, "--yes")
        rec = host_facts(host, [])["records"].get(record_key("main"))
        if r.returncode != 0 or rec is None or rec["argv0"] != exe:
            problems.append(f"{name}: command {exe!r} accepted by validate, but apply exited {r.returncode} and the "
                            f"gateway ran as {rec and rec['argv0']!r}:\n{tail(r, 600)}")
    assert problems == [], "\n".join(problems)
    assert executed_on_host(host) == []
