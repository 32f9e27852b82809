"""Hostile names and paths, every value in every field: refused by `validate` with a location on the value's own
line, or applied to a host where it arrives as literal data (paths, unit files, argv, environment, config, `gateway
status`, health paths, the release prefix); no payload ever runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.lab.harness import Lab
from tests.lab.hosts import LabHost
from tests.security.matrix import (
    SECRET_SOURCE,
    Layout,
    apply_doc,
    check_delivered,
    check_host_level,
    classify,
    expectations,
    hostile_values,
    matrix_doc,
)
from tests.security.support import (
    clear_records,
    executed_on_controller,
    executed_on_host,
    host_facts,
    operator_cli,
    prepare_host,
    record_key,
    tail,
    write_yaml,
)

pytestmark = pytest.mark.lab

def test_hostile_names_and_paths_are_refused_with_a_location_or_delivered_literally_and_never_run(
        make_host: Callable[..., LabHost], lab: Lab, tmp_path: Path) -> None:
    """Every hostile value in every field that ends up in a path, a unit file or a shell script: `validate` either
    refuses it with an error located on its own line, or it is applied to a host, where each path exists under its
    exact name and each value reaches the gateway (argv, working directory, environment, config) and `gateway
    status` byte for byte; a second plan is empty; and no payload ran, on the host or on the controller."""
    host = make_host("systemd")
    prepare_host(host)
    cli = operator_cli(lab, tmp_path, dict([SECRET_SOURCE]))
    values = hostile_values()
    ci = next(k for k, h in enumerate(values) if h.name == "combined")
    lay = Layout(tmp_path / "ctl", values)
    lay.create_controller_files(host)

    # 1. validate decides: every refusal is located on the hostile value's own line
    rejected, accepted = classify(cli, tmp_path, lambda inc: matrix_doc(lay, inc))
    assert rejected, "nothing hostile was refused (newlines and tabs at least should be)"
    assert len(accepted) >= 40, f"too few hostile values accepted to prove anything: {sorted(accepted)}"

    # 2. the host-level fields and the release prefix take one value for the whole host: each value on its own,
    # in a plan (it logs in with them, plans under them); a few at a time, on a host nothing was applied to yet
    with ThreadPoolExecutor(4) as pool:
        problems = [p for ps in pool.map(lambda k: check_host_level(cli, tmp_path, host, lay, k, accepted),
                                         range(len(values))) for p in ps]

    # 3. what was accepted goes onto a host
    doc, moved = apply_doc(host, lay, lambda p: p in accepted, ci)
    inv = write_yaml(tmp_path / "hostile.yaml", doc)
    r = cli("validate", inv)
    assert r.returncode == 0, tail(r)
    r = cli("apply", inv, "--yes")
    assert r.returncode == 0, tail(r)
    args = doc["openclaw"]["command"][1:]
    exp = expectations(doc)
    # from here on every check runs and reports, so that one wrong value does not hide the others
    problems += check_delivered(host, exp, args)
    r = cli("plan", inv, "--detailed-exitcode")  # the probe reads every hostile path back: nothing left to do
    if r.returncode != 0:
        problems.append(f"a second plan is not empty (a path read back wrongly?):\n{tail(r, 1500)}")

    # the files are byte for byte what `render` makes of the inventory
    out = tmp_path / "rendered"
    assert cli("render", inv, "--out", str(out)).returncode == 0
    for e in exp:
        for p in (e.config_path, f"/etc/systemd/system/{e.unit}"):
            if host.read_file(p) != (out / "gw" / p.lstrip("/")).read_bytes():
                problems.append(f"{p!r} on the host differs from what `render` wrote")

    # `status` runs `openclaw gateway status` as each instance, with its env file sourced by sh
    clear_records(host)
    r = cli("status", inv, "--json")
    if r.returncode != 0 or json.loads(r.stdout)["healthy"] is not True:
        problems.append(f"status is not healthy:\n{tail(r, 1500)}")
    records = host_facts(host, [])["records"]
    for e in exp:
        rec = records.get(record_key(e.profile, "status"))
        if rec is None or rec["extra"] != args:
            problems.append(f"{e.profile}: `gateway status` did not run with the hostile arguments: {rec}")
            continue
        for var, want in e.env.items():
            if rec["env"].get(var) != want:
                problems.append(f"{e.profile} (status): ${var} = {rec['env'].get(var)!r}, wanted {want!r}")

    # health paths are only asked over HTTP: `status` with the hostile ones the schema lets through
    with_health = json.loads(json.dumps(doc))
    asked = []
    for k in range(len(values)):
        if ("health.path", k) in accepted:
            with_health["hosts"]["gw"]["instances"][f"c{k:02d}"]["health"] = {"path": "/" + values[k].value}
            asked.append(f"c{k:02d}")
    r = cli("status", write_yaml(tmp_path / "health.yaml", with_health), "--json", "--no-openclaw-status")
    ready = {i["instance"]: i["readyz"] for i in json.loads(r.stdout)["instances"]}
    if not all(ready[name] == "404" for name in asked):
        problems.append(f"hostile health paths were not asked as written: {ready}")

    counts: dict[str, list[str]] = {}
    for fld, k in sorted(accepted | set(rejected)):
        counts.setdefault(fld, []).append(("+" if (fld, k) in accepted else "-") + values[k].name)
    print("\nhostile values per field (+ accepted, - refused with a location):")
    for fld, names in counts.items():
        print(f"  {fld}: {' '.join(names)}")
    print("  left to test_paths_systemd_reads_differently_...: " + "; ".join(moved))

    # 4. nothing ran, anywhere
    assert executed_on_host(host) == []
    assert executed_on_controller(tmp_path) == []
    assert problems == [], "accepted hostile values that did not arrive as written:\n" + "\n".join(problems)
