"""Loading a playbook file, exactly: what each key becomes, the defaults of keys left out, and the located error of
each kind of bad value. Found by mutation testing (`scripts/mutation playbook`): only the shipped playbooks were
loaded by the fast tests, so a bad playbook's diagnostic (its location, its words) could change unnoticed.

README: `--playbook FILE` takes `serial` (counts or percentages), `max_fail` (count or "10%"), `health_gate:
{enabled, timeout}`, `pause` and `on_failure: stop|rollback`; keys left out take the default playbook's values;
diagnostics read `PATH:LINE:COL: error: message`."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.apply.rollout import Playbook
from provisioner.core.diagnostics import ProvisionError
from provisioner.playbook import load_playbook


def _load(tmp_path: Path, text: str) -> Playbook:
    p = tmp_path / "pb.yaml"
    p.write_text(text)
    return load_playbook(str(p))


@pytest.mark.parametrize(("text", "want"), [
    ("{}\n", {}),  # every key left out: the defaults
    ("serial: 3\n", {"serial": (3,)}),  # one size alone is a list of one
    ("serial: [2, \"25%\"]\nmax_fail: \"10%\"\n", {"serial": (2, "25%"), "max_fail": "10%"}),
    ("max_fail: 2\n", {"max_fail": 2}),
    ("health_gate: {enabled: false, timeout: 30}\n", {"health_gate": False, "health_timeout": 30}),
    ("health_gate: {timeout: 45}\n", {"health_timeout": 45}),  # enabled left out: the gate stays on
    ("health_gate: {}\n", {}),
    ("pause: 5\n", {"pause": 5.0}),
    ("on_failure: rollback\n", {"on_failure": "rollback"}),
    ("name: nightly\n", {"name": "nightly"}),
])
def test_each_key_of_a_playbook_and_the_defaults_of_those_left_out(tmp_path: Path, text: str,
                                                                   want: dict[str, object]) -> None:
    expected = {"serial": (1, "100%"), "max_fail": 0, "name": str(tmp_path / "pb.yaml"), "health_gate": True,
                "health_timeout": None, "pause": 0.0, "on_failure": "stop", **want}
    got = _load(tmp_path, text)
    assert got == Playbook(**expected)  # type: ignore[arg-type]
    assert type(got.pause) is float


@pytest.mark.parametrize(("text", "diagnostics"), [
    ("serial: [1]\nspeed: 3\n",
     ["2:1: error: (top level): unknown key 'speed'"]),
    ("serial: [1, \"150%\"]\n", ["1:13: error: serial.1: '150%' is not a percentage from 1% to 100%"]),
    ("max_fail: \"abc\"\n", ["1:11: error: max_fail: 'abc' is not a percentage from 1% to 100%"]),
    ("max_fail: -1\n",
     ['1:11: error: max_fail: must be at least 0, got -1 (a count or a percentage such as "50%")']),
    ("serial: 0\n", ['1:9: error: serial: must be at least 1, got 0 (a count or a percentage such as "50%")']),
    ("health_gate: {enabled: maybe}\n", ['1:24: error: health_gate.enabled: expected true or false, got "maybe"']),
    ("on_failure: retry\n", ['1:13: error: on_failure: "retry" is not one of "stop", "rollback"']),
    ("pause: -1\nmax_fail: -2\n",  # every error, in the order of the file
     ["1:8: error: pause: must be at least 0, got -1",
      '2:11: error: max_fail: must be at least 0, got -2 (a count or a percentage such as "50%")']),
    ("serial: 0\non_failure: retry\n",  # in the order of the file
     ['1:9: error: serial: must be at least 1, got 0 (a count or a percentage such as "50%")',
      '2:13: error: on_failure: "retry" is not one of "stop", "rollback"']),
    ("- 1\n- 2\n", ["1:1: error: a playbook is a mapping (serial:, max_fail:, ...)"]),
    ("serial: [1\n", ["2:1: error: YAML syntax: did not find expected ',' or ']'"]),
])
def test_a_bad_playbook_is_refused_with_each_error_located(tmp_path: Path, text: str, diagnostics: list[str]) -> None:
    path = tmp_path / "pb.yaml"
    with pytest.raises(ProvisionError) as err:
        _load(tmp_path, text)
    assert str(err.value) == f"invalid playbook {path}"
    assert [d.format() for d in err.value.diagnostics] == [f"{path}:{d}" for d in diagnostics]
    assert all(d.is_error for d in err.value.diagnostics)
    if "YAML" not in diagnostics[0] and "mapping" not in diagnostics[0]:
        assert {d.code for d in err.value.diagnostics} == {"playbook"}  # the rule's stable name, in --json too


def test_a_playbook_that_cannot_be_read_says_so(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match=r"^cannot read playbook .*/missing\.yaml: .*No such file") as err:
        load_playbook(str(tmp_path / "missing.yaml"))
    assert err.value.diagnostics == ()
