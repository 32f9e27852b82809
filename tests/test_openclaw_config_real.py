"""check_openclaw_config must agree with the real `openclaw config validate` on which configs are valid."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import json5
import pytest

from provisioner.rules.openclaw_config import check_openclaw_config

pytestmark = pytest.mark.openclaw

def gw(**extra: Any) -> dict[str, Any]:
    return {"gateway": {"mode": "local", "port": 18789, "bind": "loopback"}, **extra}


def gw_with(**gateway: Any) -> dict[str, Any]:
    return {"gateway": {"mode": "local", "port": 18789, "bind": "loopback", **gateway}}


# (id, config, valid?): each is written as JSON5 (with a comment) for the real program
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("minimal", gw(), True),
    ("auth-token", gw_with(auth={"mode": "token", "token": "s3cret"}), True),
    ("browser-profiles-cdpPort", gw(browser={"profiles": {
        "work": {"cdpPort": 18800}, "remote": {"cdpUrl": "http://10.0.0.5:9222"}}}), True),
    ("inboundDedupe", gw_with(inboundDedupe={"file": {"dir": "/var/lib/openclaw/inbound-claim"}}), False),
    ("canvasHost", gw(canvasHost={"port": 18793}), False),
    ("browser-controlPort", gw(browser={"controlPort": 18791}), False),
    ("port-70000", gw_with(port=70000), False),
    ("bind-everywhere", gw_with(bind="everywhere"), False),
    # beyond plain keys: a union, a key-name pattern, a zod refinement, a plugin schema's own $defs
    ("token-wrong-type", gw_with(auth={"mode": "token", "token": 5}), False),
    ("profile-name-uppercase", gw(browser={"profiles": {"Work": {"cdpPort": 18800}}}), False),
    ("profile-without-cdp", gw(browser={"profiles": {"work": {"headless": True}}}), False),
    ("plugin-defs-ref", gw(plugins={"entries": {"imap": {"config": {
        "accounts": {"a": {"password": {"source": "env"}}}}}}}), False),
]
SYNTAX_ERROR = '{gateway: {mode: "local", port: 18789,, }}'


def as_json5(config: dict[str, Any]) -> str:
    return "// written by the test\n" + json5.dumps(config, indent=2, quote_keys=False) + "\n"


@dataclass(frozen=True)
class RealResult:
    exit_code: int
    report: dict[str, Any]
    seconds: float


def _validate(install: Any, root: Path, name: str, text: str) -> RealResult:
    case = root / name
    (case / "home").mkdir(parents=True)
    (case / "state").mkdir()
    config = case / "openclaw.json"
    config.write_text(text, encoding="utf-8")
    start = time.monotonic()
    proc = install.run(["config", "validate", "--json"], install.env(case / "home", case / "state", config))
    seconds = time.monotonic() - start
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"{name}: `openclaw config validate --json` printed no JSON (exit {proc.returncode}):\n"
                    f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return RealResult(proc.returncode, report, seconds)


@pytest.fixture(scope="module")
def real_results(openclaw_install: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, RealResult]:
    # one `config validate` takes ~2 s of node start-up: run the cases side by side
    root = tmp_path_factory.mktemp("openclaw-validate")
    cases = [(name, as_json5(cfg)) for name, cfg, _ in CASES] + [("json5-syntax-error", SYNTAX_ERROR)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = {name: pool.submit(_validate, openclaw_install, root, name, text) for name, text in cases}
        return {name: f.result() for name, f in futures.items()}


def _real_paths(report: dict[str, Any]) -> list[tuple[str, ...]]:
    paths = []
    for issue in report.get("issues", []):
        p = issue["path"]
        paths.append(() if p in ("", "<root>") else tuple(p.split(".")))
    return paths


@pytest.mark.parametrize(("name", "config", "valid"), CASES, ids=[c[0] for c in CASES])
def test_agrees_with_real_openclaw(real_results: dict[str, RealResult], openclaw_install: Any,
                                   name: str, config: dict[str, Any], valid: bool) -> None:
    real = real_results[name]
    assert real.report.get("valid") is valid, f"real openclaw: {real.report}"
    assert real.exit_code == (0 if valid else 1), real.report
    ours = check_openclaw_config(openclaw_install.version, config)
    assert (not ours) is valid, f"real openclaw said valid={valid}; we said {ours}"
    # every place the real program complains about is one we complain about too (ours may be deeper:
    # it names the unknown key itself, the real one its parent)
    for real_path in _real_paths(real.report):
        assert any(tuple(str(p) for p in i.path)[: len(real_path)] == real_path for i in ours), (
            f"real openclaw flags {'.'.join(real_path) or '<root>'}; we flagged only {[i.path for i in ours]}"
        )


def test_json5_syntax_error_is_rejected_by_real_openclaw(real_results: dict[str, RealResult]) -> None:
    real = real_results["json5-syntax-error"]
    assert real.exit_code == 1 and real.report.get("valid") is False, real.report
    assert "JSON5" in json.dumps(real.report)


def test_one_validate_run_is_reasonably_fast(real_results: dict[str, RealResult]) -> None:
    # documents the cost that makes the in-process check worth having; generous bound for loaded CI machines
    assert min(r.seconds for r in real_results.values()) < 30
