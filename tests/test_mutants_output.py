"""The output layer, exactly: what `plan`, `apply`, `status`, `dedupe verify` and diagnostics print, in words and in
JSON, with and without colour. Found by mutation testing (`scripts/mutation output`): the CLI tests run these
views in a subprocess and only look for a few words, so a changed word, count or colour went unnoticed.

The README claims checked here: diagnostics read `PATH:LINE:COL: error|warning: message`; after an apply "the summary
says which revision every host runs"; `plan` shows each change with its reason and diff, `! refuse` for what the
tool will not touch, and who holds a lock; `status` is a table of unit state, /healthz, /readyz and
`openclaw gateway status`; colour only on a terminal, never with `--no-color` or NO_COLOR."""

from __future__ import annotations

import io
import re
import sys

import pytest

from provisioner.apply.health import InstanceHealth
from provisioner.apply.locks import refusal
from provisioner.apply.results import HostResult, HostStatus
from provisioner.apply.rollout import RolloutResult
from provisioner.core.changes import Action, Change, ChangeKind, HostPlan, Plan
from provisioner.core.diagnostics import Diagnostic, Severity, SourceSpan
from provisioner.dedupe.verify import Check, Verification
from provisioner.output import diagnostics as diag_view
from provisioner.output.dedupe_view import render_verification, verification_json
from provisioner.output.plan_view import render_plan, summary
from provisioner.output.progress import ApplyProgress
from provisioner.output.results import render_results, results_json, revision_of
from provisioner.output.status_view import render_status, status_json
from provisioner.output.style import Style, stderr_style

PLAIN = Style(False)
COLOUR = Style(True)


# --- colour ---------------------------------------------------------------------------------------------------

class _Tty(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize(("tty", "no_color", "env", "enabled"), [
    (True, False, False, True),
    (False, False, False, False),  # not a terminal
    (True, True, False, False),  # --no-color
    (True, False, True, False),  # NO_COLOR
])
def test_colour_only_on_a_terminal_and_never_when_refused(tty: bool, no_color: bool, env: bool, enabled: bool,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    if env:
        monkeypatch.setenv("NO_COLOR", "")  # NO_COLOR counts when set at all, even empty
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    assert Style.for_stream(_Tty(tty), no_color).enabled is enabled
    monkeypatch.setattr(sys, "stderr", _Tty(tty))
    assert stderr_style(no_color).enabled is enabled
    if enabled:  # colour is on by default
        assert Style.for_stream(_Tty(tty)).enabled is True and stderr_style().enabled is True
    assert Style.for_stream(object(), False).enabled is False  # type: ignore[arg-type]  # no isatty at all


@pytest.mark.parametrize(("paint", "code"), [("red", 31), ("green", 32), ("yellow", 33), ("cyan", 36), ("bold", 1),
                                             ("dim", 2)])
def test_each_colour_is_its_ansi_code_and_a_reset(paint: str, code: int) -> None:
    assert getattr(COLOUR, paint)("x") == f"\033[{code}mx\033[0m"
    assert getattr(PLAIN, paint)("x") == "x"


# --- diagnostics ------------------------------------------------------------------------------------------------

def test_a_diagnostic_reads_path_line_col_severity_message() -> None:
    err = Diagnostic(Severity.ERROR, "port 18789 used twice", SourceSpan("inv.yaml", 12, 7), code="port-overlap",
                     related=(SourceSpan("inv.yaml", 9, 7),))
    warn = Diagnostic(Severity.WARNING, "base ports closer than 120", None)
    assert diag_view.format_diagnostic(err, PLAIN) == "inv.yaml:12:7: error: port 18789 used twice"
    assert diag_view.format_diagnostic(warn, PLAIN) == "<inventory>: warning: base ports closer than 120"
    assert diag_view.format_diagnostic(err, COLOUR) == ("\033[1minv.yaml:12:7\033[0m: \033[31merror\033[0m: "
                                                        "port 18789 used twice")
    assert diag_view.format_diagnostic(warn, COLOUR).startswith("\033[1m<inventory>\033[0m: \033[33mwarning\033[0m")
    assert diag_view.diagnostic_json(err) == {
        "severity": "error", "code": "port-overlap", "message": "port 18789 used twice",
        "location": {"file": "inv.yaml", "line": 12, "column": 7},
        "related": [{"file": "inv.yaml", "line": 9, "column": 7}]}
    assert diag_view.diagnostic_json(warn)["location"] is None


@pytest.mark.parametrize(("errors", "warnings", "line"), [
    (0, 0, "0 errors, 0 warnings"), (1, 0, "1 error, 0 warnings"), (0, 1, "0 errors, 1 warning"),
    (2, 3, "2 errors, 3 warnings"),
])
def test_the_diagnostics_summary_counts_errors_and_warnings(errors: int, warnings: int, line: str) -> None:
    diags = ([Diagnostic(Severity.ERROR, "e", None)] * errors + [Diagnostic(Severity.WARNING, "w", None)] * warnings)
    assert diag_view.summary_line(diags) == line


# --- plan -------------------------------------------------------------------------------------------------------

def _change(action: Action, target: str, instance: str | None = "main", diff: str = "",
            kind: ChangeKind = ChangeKind.FILE) -> Change:
    return Change("a", instance, target, action, "differs", diff=diff, kind=kind)


PLAN = Plan("inv.yaml", "0" * 64, (
    HostPlan("a", (
        _change(Action.UPDATE, "/etc/x.json", diff="--- old\n+++ new\n@@ -1 +1 @@\n-1\n+2\n same"),
        _change(Action.RESTART, "openclaw-gateway-main.service", kind=ChangeKind.SERVICE),
        _change(Action.NOOP, "/etc/same"),
        _change(Action.CREATE, "/etc/new", instance=None),
    )),
    HostPlan("b", (_change(Action.NOOP, "/etc/same"),), locked_by="ocp-lock pid=7 host=ctl"),
    HostPlan("c", (), error="ssh: connection refused"),
    HostPlan("d", (_change(Action.REFUSE, "/home/u/.openclaw-main/openclaw.json"),)),
))


def test_the_plan_shows_each_change_its_reason_its_diff_and_the_hosts_that_cannot_be_planned() -> None:
    out = render_plan(PLAN, PLAIN)
    assert out.splitlines() == [
        "host a: 3 changes",
        "  ~ update      file    [main] /etc/x.json  (differs)",
        "    --- old", "    +++ new", "    @@ -1 +1 @@", "    -1", "    +2", "     same",
        "  ↻ restart     service [main] openclaw-gateway-main.service  (differs)",
        "  + create      file    /etc/new  (differs)",
        "host b: no changes",
        "  ! " + refusal("ocp-lock pid=7 host=ctl"),  # who holds the lock, in apply.locks' words
        "host c: cannot plan: ssh: connection refused",
        "host d: 1 change",
        "  ! refuse      file    [main] /home/u/.openclaw-main/openclaw.json  (differs)",
        "Plan: 1 to update, 1 to restart, 1 to create on 2 of 4 host(s); 1 host(s) could not be planned; 1 host(s) "
        "refused: 1 path(s) hold something the tool will not touch, so apply leaves those hosts alone.",
    ]
    assert "/etc/same" not in out  # no-ops are not shown
    assert render_plan(PLAN, PLAIN, show_diffs=False).count("@@") == 0


def test_the_plan_in_colour_marks_diff_lines_refusals_and_errors() -> None:
    out = render_plan(PLAN, COLOUR)
    for painted in ("    \033[1m--- old\033[0m", "\033[1m+++ new\033[0m", "\033[32m+2\033[0m", "\033[31m-1\033[0m",
                    "\033[36m@@ -1 +1 @@\033[0m", "\033[1mhost b: \033[0m\033[2mno changes\033[0m",
                    "\033[31mcannot plan: ssh: connection refused\033[0m", "\033[33m! ",
                    "\033[31m  ! refuse      file    [main] /home/u/.openclaw-main/openclaw.json  (differs)\033[0m"):
        assert painted in out, painted
    assert "\n     same" in out  # a context line stays plain
    assert "\n  ~ update      file    [main] /etc/x.json  (differs)\n" in out  # only refusals are red


def test_a_plan_with_nothing_to_do_says_so() -> None:
    plan = Plan("inv.yaml", "0" * 64, (HostPlan("a", (_change(Action.NOOP, "/etc/same"),)),))
    assert render_plan(plan, PLAIN) == "host a: no changes\nPlan: no changes on 0 of 1 host(s).\n"
    assert summary(Plan("i", "0", ())) == "Plan: no changes on 0 of 0 host(s)."


# --- apply results ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "rolled_back", "words"), [
    (HostStatus.CHANGED, False, "new (r2)"),
    (HostStatus.UNCHANGED, False, "new (r2)"),
    (HostStatus.FAILED, True, "previous (rolled back)"),
    (HostStatus.FAILED, False, "unknown: check the host"),
    (HostStatus.ROLLED_BACK, False, "previous (rolled back with its batch)"),
    (HostStatus.NOT_REACHED, False, "previous (not reached)"),
    (HostStatus.REFUSED, False, "previous (refused)"),
    (HostStatus.UNREACHABLE, False, "unknown (unreachable)"),
])
def test_the_summary_says_which_revision_every_host_runs(status: HostStatus, rolled_back: bool, words: str) -> None:
    assert revision_of(HostResult("a", status, rolled_back=rolled_back), "r2") == words


def _rollout() -> RolloutResult:
    change = Change("a", "main", "/etc/x", Action.UPDATE, "differs")
    return RolloutResult(
        results={
            "b": HostResult("b", HostStatus.FAILED, "not ready: 503", applied=[change], rolled_back=True,
                            health={"main": "not ready"}),
            "a": HostResult("a", HostStatus.CHANGED, "note", applied=[change, change], restarted=["main", "ops"],
                            transferred=1_500_000, health={"ops": "ready after 2.0 s", "main": "ready after 1.0 s"}),
            "c": HostResult("c", HostStatus.NOT_REACHED, "rollout stopped after batch 2"),
            "z": HostResult("z", HostStatus.UNCHANGED),
            "y": HostResult("y", HostStatus.NOT_REACHED, "rollout stopped after batch 2"),
        },
        stopped_after_batch=2, batches=[["a"], ["b"], ["y", "c"]])


def test_the_apply_report_lists_hosts_in_rollout_order_with_what_was_done() -> None:
    out = render_results(_rollout(), PLAIN, "r2")
    assert out.splitlines() == [
        f"  ✓ {'a':<20} {'changed':<11} revision: {'new (r2)':<36} 2 change(s) applied; restarted main, ops; "
        "pushed 2 MB; note",
        "      main: ready after 1.0 s",
        "      ops: ready after 2.0 s",
        f"  ✗ {'b':<20} {'failed':<11} revision: {'previous (rolled back)':<36} not ready: 503",
        "      main: not ready",
        f"  · {'y':<20} {'not-reached':<11} revision: {'previous (not reached)':<36} rollout stopped after batch 2",
        f"  · {'c':<20} {'not-reached':<11} revision: {'previous (not reached)':<36} rollout stopped after batch 2",
        f"  = {'z':<20} {'unchanged':<11} revision: {'new (r2)':<36} ",  # in no batch: last
        "Apply FAILED (rollout stopped after batch 2): 1 changed, 1 failed, 2 not-reached, 1 unchanged.",
    ]
    coloured = render_results(_rollout(), COLOUR, "r2")
    assert "\033[32mchanged    \033[0m" in coloured and "\033[31mfailed     \033[0m" in coloured


def test_the_apply_report_head_says_complete_failed_or_interrupted() -> None:
    ok = RolloutResult(results={"a": HostResult("a", HostStatus.CHANGED, applied=[])}, batches=[["a"]])
    assert render_results(ok, PLAIN, "r").endswith("\nApply complete: 1 changed.\n")
    ok.interrupted = True
    assert render_results(ok, PLAIN, "r").endswith("\nApply INTERRUPTED: 1 changed.\n")
    bare = render_results(ok, PLAIN, "r").splitlines()[0]
    assert bare.endswith(f"revision: {'new (r)':<36} 0 change(s) applied")  # nothing restarted or pushed


def test_the_apply_json_has_every_host_and_its_revision() -> None:
    doc = results_json(_rollout(), "r2")
    assert {k: doc[k] for k in ("ok", "revision", "batches", "stopped_after_batch", "interrupted")} == {
        "ok": False, "revision": "r2", "batches": [["a"], ["b"], ["y", "c"]], "stopped_after_batch": 2,
        "interrupted": False}
    assert [h["host"] for h in doc["hosts"]] == ["a", "b", "c", "y", "z"]
    assert doc["hosts"][0] == {"host": "a", "status": "changed", "revision": "new (r2)", "message": "note",
                               "changes_applied": 2, "restarted": ["main", "ops"], "rolled_back": False,
                               "transferred_bytes": 1_500_000,
                               "health": {"ops": "ready after 2.0 s", "main": "ready after 1.0 s"},
                               "failing": {}, "restarts": {}}
    assert doc["hosts"][1]["changes_applied"] == 0 and doc["hosts"][1]["rolled_back"] is True


# --- status -----------------------------------------------------------------------------------------------------

ROWS = [InstanceHealth("gw-a", "main", "openclaw-gateway-main.service", 18789, "active", "200", "200", "rpc ok", True,
                       config_readonly="yes"),
        InstanceHealth("gw-a", "rescue", "openclaw-gateway-rescue.service", 19789, "failed", "503", "503",
                       "rpc failed: refused", False, config_readonly="no", failing=("telegram",),
                       channels="telegram failed: fetch failed", channels_failing=("telegram",))]


def test_status_is_a_table_of_unit_state_healthz_readyz_and_openclaw_status() -> None:
    out = render_status(ROWS, {"gw-b": "ssh: timed out"}, PLAIN)
    assert out.splitlines() == [
        "HOST  INSTANCE  PORT   UNIT    HEALTHZ  READYZ                   CHANNELS                       CONFIG RO  "
        "OPENCLAW GATEWAY STATUS",
        "gw-a  main      18789  active  200      200                                                     yes        "
        "rpc ok                   healthy",
        "gw-a  rescue    19789  failed  503      503 (failing: telegram)  telegram failed: fetch failed  no         "
        "rpc failed: refused      UNHEALTHY",
        "gw-b: unreachable: ssh: timed out",
        "1 of 2 instance(s) healthy; 1 host(s) unreachable",
    ]
    coloured = render_status(ROWS, {"gw-b": "x"}, COLOUR).splitlines()
    assert coloured[0].startswith("\033[1mHOST") and not coloured[1].startswith("\033")
    assert coloured[2].startswith("\033[31mgw-a") and coloured[3] == "\033[31mgw-b: unreachable: x\033[0m"
    assert render_status(ROWS[:1], {}, PLAIN).splitlines()[-1] == "1 of 1 instance(s) healthy"


def test_status_json_is_healthy_only_when_every_instance_is_and_no_host_is_unreachable() -> None:
    doc = status_json(ROWS, {})
    assert doc["healthy"] is False and doc["unreachable"] == {}
    assert doc["instances"][0] == {"host": "gw-a", "instance": "main", "unit": "openclaw-gateway-main.service",
                                   "port": 18789, "unit_state": "active", "healthz": "200", "readyz": "200",
                                   "readyz_failing": [], "channels": "", "channels_failing": [],
                                   "openclaw_status": "rpc ok", "config_readonly": "yes", "healthy": True,
                                   "doctor": None}
    assert (doc["instances"][1]["readyz_failing"], doc["instances"][1]["channels_failing"]) == (["telegram"],
                                                                                               ["telegram"])
    assert status_json(ROWS[:1], {})["healthy"] is True
    assert status_json(ROWS[:1], {"gw-b": "x"})["healthy"] is False


# --- dedupe verify ----------------------------------------------------------------------------------------------

def test_dedupe_verify_marks_pass_warn_fail_and_concludes() -> None:
    v = Verification("/srv/dedupe", ["a", "b"], [Check("same filesystem", True, "one device"),
                                                  Check("latency", True, "slow", warning=True)])
    assert render_verification(v, PLAIN) == (
        "dedupe directory /srv/dedupe on 2 host(s): a, b\n  PASS  same filesystem: one device\n"
        "  WARN  latency: slow\nThe directory is one shared store.\n")
    v.checks.append(Check("round trip", False, "b cannot see a's file", hosts=["b"]))
    out = render_verification(v, COLOUR)
    assert "\033[32mPASS\033[0m" in out and "\033[33mWARN\033[0m" in out and "\033[31mFAIL\033[0m  round trip" in out
    assert out.endswith("\033[31mThe directory is NOT proven to be one shared store.\033[0m\n")
    assert verification_json(v) == {"dir": "/srv/dedupe", "hosts": ["a", "b"], "ok": False, "checks": [
        {"check": "same filesystem", "ok": True, "warning": False, "detail": "one device", "hosts": []},
        {"check": "latency", "ok": True, "warning": True, "detail": "slow", "hosts": []},
        {"check": "round trip", "ok": False, "warning": False, "detail": "b cannot see a's file", "hosts": ["b"]}]}


# --- progress ---------------------------------------------------------------------------------------------------

def test_progress_off_a_terminal_is_one_plain_line_per_report(capsys: pytest.CaptureFixture[str]) -> None:
    p = ApplyProgress(live=True)  # live asked for, but stderr is not a terminal here: plain lines
    p("gw-a", "writing 3 files")
    p.done("gw-a", True, "changed")
    p.close()
    ApplyProgress(live=False, quiet=True)("gw-b", "silent")
    assert capsys.readouterr().err == "  gw-a: writing 3 files\n"


def test_progress_on_a_terminal_is_a_live_line_per_host_ending_in_its_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = _Tty(True)
    monkeypatch.setattr(sys, "stderr", screen)
    p = ApplyProgress(live=True)
    p("gw-a", "writing 3 files")
    p("gw-b", "probing")
    p("gw-e", "probing")
    p("gw-f", "connecting")  # reported once, still in flight at the end
    p("gw-a", "restarting main")
    p("gw-e", "waiting for /readyz")  # still in flight when the display closes (a Ctrl-C): its last report stays
    p.done("gw-a", True, "changed")
    p.done("gw-b", False, "failed: boom")
    p.done("gw-c", True, "unchanged")  # a host that reported nothing before
    p.close()
    p.close()  # closing twice is harmless
    p("gw-d", "after the display closed")  # plain lines from then on
    out = screen.getvalue()
    final = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out[out.rindex("\r\x1b[2K"):]).strip("\r\n").splitlines()
    # spinner (blank once done, S: any frame while in flight), mark, host, its last words, then the time taken (T)
    assert [re.sub(r" +\d+:\d\d:\d\d$", " T", re.sub("^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]", "S", line)) for line in final] == [
        "  ✓ gw-a: changed T", "  ✗ gw-b: failed: boom T", "S gw-e: waiting for /readyz T", "S gw-f: connecting T",
        "  ✓ gw-c: unchanged T",
        "  gw-d: after the display closed"]
    assert "\x1b[32m✓\x1b[0m \x1b[1mgw-a\x1b[0m: changed" in out and "\x1b[31m✗\x1b[0m \x1b[1mgw-b\x1b[0m" in out
    assert ApplyProgress(live=True, quiet=True)._progress is None  # --quiet: no display at all
