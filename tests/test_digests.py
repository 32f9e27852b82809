"""Keyed file fingerprints: no plan output, plan file or JSON carries a digest anyone could recompute."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from provisioner import digests
from provisioner.apply.planning import saved_plan_problem
from provisioner.core.changes import Action, Plan
from provisioner.core.desired import DesiredFile, DesiredHost, DesiredService, FileKind
from provisioner.core.observed import EntryKind, ObservedFile, ObservedHost
from provisioner.core.policies import Manager
from provisioner.output.plan_view import render_plan
from provisioner.output.style import Style
from provisioner.plan import desired_fingerprint, observed_fingerprint, plan_host
from provisioner.planfile import SavedPlan, dumps, loads, plan_json

SECRET = "hunter2-weak-token"
HOME = "/home/openclaw/.openclaw-main"


@pytest.fixture(autouse=True)
def cache(own_controller: Path) -> Path:
    """Every test starts with a controller of its own: an empty cache dir, no shared key file."""
    return own_controller


def switch_controller(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    digests.forget_key()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def env_file(secret: str = SECRET) -> DesiredFile:
    body = f"# managed by openclaw-provisioner\nOPENCLAW_GATEWAY_TOKEN={secret}\nNODE_ENV=production\n"
    return DesiredFile("h", "main", f"{HOME}/gateway.env", body.encode(), 0o600, "openclaw", "openclaw",
                       FileKind.ENV, secret_values=(secret,), reveal_keys=("NODE_ENV",))


def config_file() -> DesiredFile:
    return DesiredFile("h", "main", f"{HOME}/openclaw.json", b'{"gateway": {"port": 18789}}\n', 0o600, "openclaw",
                       "openclaw", FileKind.CONFIG)


def unit_file() -> DesiredFile:
    return DesiredFile("h", "main", "/etc/systemd/system/openclaw-gateway-main.service",
                       b"[Service]\nExecStart=/opt/openclaw/bin/openclaw gateway\n", 0o644, "root", "root",
                       FileKind.UNIT)


def observed(f: DesiredFile, content: bytes | None = None, *, fetched: bool = True) -> ObservedFile:
    """The file as a probe reports it: the host's sha256 of `content` (default: the desired bytes)."""
    data = f.content if content is None else content
    return ObservedFile(f.path, True, sha(data), f.mode, f.owner, f.group, data if fetched else None,
                        kind=EntryKind.FILE)


def desired_host(*files: DesiredFile) -> DesiredHost:
    svc = DesiredService("h", "main", "openclaw-gateway-main.service", Manager.SYSTEMD, "openclaw", 18789,
                         tuple(f.path for f in files))
    return DesiredHost("h", "openclaw", "/home/openclaw", files, (), (svc,))


# --- the key -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_key_file_is_made_0600_on_first_use_and_reused(cache: Path, umask: int) -> None:
    path = digests.key_path()
    assert path == cache / "openclaw-provisioner" / "keys" / "digest.key" and not path.exists()
    old = os.umask(umask)  # 0o000: a plain create would make it 0666
    try:
        first = digests.keyed("ab" * 32)
    finally:
        os.umask(old)
    st = path.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == digests.KEY_BYTES
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == ["digest.key"]  # no temp file left behind
    key = path.read_bytes()
    digests.forget_key()
    assert digests.keyed("ab" * 32) == first and path.read_bytes() == key
    assert digests.current_key().persistent and digests.current_key().source == str(path)


def test_a_key_made_by_another_process_first_is_the_one_used(cache: Path) -> None:
    path = digests.key_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"k" * 32)
    path.chmod(0o600)
    assert digests.current_key().secret == b"k" * 32
    assert path.read_bytes() == b"k" * 32


def test_fingerprint_is_keyed_the_same_within_a_key_and_differs_across_keys(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = env_file()
    fp = desired_fingerprint(f)
    assert fp.startswith(digests.PREFIX) and fp.endswith(" mode:0600 owner:openclaw:openclaw")
    assert sha(f.content) not in fp
    # what apply re-checks: the host's file, probed later, fingerprints like the desired one
    assert observed_fingerprint(observed(f)) == fp == desired_fingerprint(f)
    assert desired_fingerprint(env_file(SECRET + "x")) != fp
    switch_controller(monkeypatch, tmp_path / "cache-b")
    assert desired_fingerprint(f) != fp
    assert observed_fingerprint(observed(f)) == desired_fingerprint(f)
    switch_controller(monkeypatch, cache)
    assert desired_fingerprint(f) == fp


def test_a_shared_key_file_gives_two_controllers_the_same_fingerprints(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "ci-key"
    shared.write_text("0f" * 32 + "\n")  # openssl rand -hex 32 > ci-key
    shared.chmod(0o600)
    monkeypatch.setenv(digests.KEY_ENV, str(shared))
    digests.forget_key()
    fp, kid = desired_fingerprint(env_file()), digests.key_id()
    assert digests.current_key().secret == bytes.fromhex("0f" * 32)
    switch_controller(monkeypatch, tmp_path / "other-runner")
    assert (desired_fingerprint(env_file()), digests.key_id()) == (fp, kid)
    assert not (tmp_path / "cache-a").exists() and not (tmp_path / "other-runner").exists()


def test_a_missing_shared_key_file_is_made_and_an_unusable_one_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = tmp_path / "keys" / "shared.key"
    monkeypatch.setenv(digests.KEY_ENV, str(made))
    digests.forget_key()
    digests.key_id()
    assert stat.S_IMODE(made.stat().st_mode) == 0o600 and len(made.read_bytes()) == digests.KEY_BYTES
    short = tmp_path / "short.key"
    short.write_bytes(b"guessable")
    monkeypatch.setenv(digests.KEY_ENV, str(short))
    digests.forget_key()
    with pytest.raises(digests.DigestKeyError, match="OCP_DIGEST_KEY_FILE=.*short.key: holds 9 bytes"):
        digests.keyed("00" * 32)


def test_an_unwritable_cache_falls_back_to_a_key_of_this_process_and_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    switch_controller(monkeypatch, blocker)  # the cache dir cannot be made below a file, even by root
    key = digests.current_key()
    assert not key.persistent and key.source == "" and len(key.secret) == digests.KEY_BYTES
    assert digests.keyed("ab" * 32) == digests.keyed("ab" * 32)  # one key for the whole process
    err = capsys.readouterr().err
    assert "using a key of this process only" in err and "plan --out" in err and digests.KEY_ENV in err
    assert key.secret.hex() not in repr(key)


# --- what plans show ------------------------------------------------------------------------------------


def test_no_output_carries_a_plain_digest_of_any_file(cache: Path) -> None:
    env, cfg, unit = env_file(), config_file(), unit_file()
    old_env = env.content.replace(SECRET.encode(), b"the-previous-token")
    big_cfg = b'{"gateway": {"port": 18800}, "pad": "' + b"x" * 300_000 + b'"}\n'
    obs = ObservedHost("h", files={
        env.path: observed(env, old_env),  # a secret rotation: masked diff
        cfg.path: observed(cfg, big_cfg, fetched=False),  # too large to diff
        unit.path: ObservedFile(unit.path, True, sha(unit.content), 0o600, "root", "root",  # only its mode
                                kind=EntryKind.FILE),
    })
    plan = Plan("inv.yaml", "0" * 64, (plan_host(desired_host(env, cfg, unit), obs, manage_services=False),))
    changes = {c.target: c for c in plan.hosts[0].changes}
    assert {c.action for c in changes.values()} == {Action.UPDATE}, changes  # the test sees three real changes
    assert "too large to diff" in changes[cfg.path].diff and "OPENCLAW_GATEWAY_TOKEN=<redacted>" in \
        changes[env.path].diff
    for c in changes.values():
        assert c.before and c.after and c.before.startswith(digests.PREFIX) and c.after.startswith(digests.PREFIX)
    outputs = {"plan file": dumps(plan), "--json": json.dumps(plan_json(plan)),
               "human": render_plan(plan, Style(False))}
    digests_of_files = {sha(b) for b in (env.content, old_env, cfg.content, big_cfg, unit.content)}
    for name, text in outputs.items():
        assert SECRET not in text, name
        for d in digests_of_files:
            assert d not in text, f"{name} holds the plain sha256 {d}"
            assert d.upper() not in text, name
    assert json.loads(outputs["plan file"])["digest_key_id"] == digests.key_id()


def test_drift_still_sees_a_host_that_changed_after_the_plan(cache: Path) -> None:
    from provisioner.apply.executor import drift

    env = env_file()
    obs = ObservedHost("h", files={env.path: observed(env, b"OPENCLAW_GATEWAY_TOKEN=old\n")})
    hp = plan_host(desired_host(env), obs, manage_services=False)
    assert drift(hp, obs) == []
    edited = ObservedHost("h", files={env.path: observed(env, b"OPENCLAW_GATEWAY_TOKEN=edited\n")})
    assert drift(hp, edited) == [env.path]


# --- saved plans across controllers ----------------------------------------------------------------------


def _saved_and_prep(env: DesiredFile) -> tuple[str, SimpleNamespace]:
    obs = ObservedHost("h", files={env.path: observed(env, b"OPENCLAW_GATEWAY_TOKEN=old\n")})
    plan = Plan("inv.yaml", "1" * 64, (plan_host(desired_host(env), obs, manage_services=False),))
    assert plan.has_changes
    prep = SimpleNamespace(inv=SimpleNamespace(sha256="1" * 64), desired={"h": desired_host(env)})
    return dumps(plan), prep


def test_a_saved_plan_from_a_controller_with_another_key_is_refused_for_that_reason(
        cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, prep = _saved_and_prep(env_file())
    assert saved_plan_problem(loads(text), prep) is None  # type: ignore[arg-type]
    switch_controller(monkeypatch, tmp_path / "cache-b")
    problem = saved_plan_problem(loads(text), prep)  # type: ignore[arg-type]
    assert problem is not None
    assert "made by a controller with another digest key" in problem and digests.KEY_ENV in problem
    switch_controller(monkeypatch, cache)
    assert saved_plan_problem(loads(text), prep) is None  # type: ignore[arg-type]


def test_a_plan_file_of_an_older_version_loads_and_is_refused_in_plain_words(cache: Path) -> None:
    env = env_file()
    text, prep = _saved_and_prep(env)
    doc = json.loads(text)
    del doc["digest_key_id"]
    for h in doc["hosts"]:
        for c in h["changes"]:
            c["before"], c["after"] = (f"sha256:{sha(env.content)} mode:0600 owner:openclaw:openclaw",) * 2
    saved = loads(json.dumps(doc))
    assert isinstance(saved, SavedPlan) and saved.digest_key_id is None and saved.has_changes
    problem = saved_plan_problem(saved, prep)  # type: ignore[arg-type]
    assert problem is not None and "older version" in problem
