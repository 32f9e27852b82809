"""One function per CLI command: run the pipeline stages and report through output/; returns the exit code."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from importlib import resources
from typing import Any

from provisioner.cli import EXIT_CHANGES, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, emit_json, no_color
from provisioner.core.changes import ChangeKind, Plan
from provisioner.core.desired import DesiredHost
from provisioner.core.diagnostics import Diagnostic, Severity
from provisioner.inventory.model import Host, Inventory
from provisioner.inventory.select import LimitError, select
from provisioner.output.diagnostics import diagnostic_json, format_diagnostic, summary_line
from provisioner.output.style import Style, stderr_style
from provisioner.validate import Validated, validate_file


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _print_diags(v: Validated, style: Style) -> None:
    for d in v.diagnostics:
        _log(format_diagnostic(d, style))


def _load(args: argparse.Namespace, path: str) -> Validated:
    v = validate_file(path)
    if not args.json or v.diagnostics:
        _print_diags(v, stderr_style(no_color(args)))
    return v


# --- validate / render -------------------------------------------------------------------------------------

def cmd_validate(args: argparse.Namespace) -> int:
    v = validate_file(args.inventory)
    if args.json:
        emit_json({"inventory": args.inventory, "valid": v.ok,
                   "summary": {"errors": len(v.errors), "warnings": len(v.diagnostics) - len(v.errors)},
                   "diagnostics": [diagnostic_json(d) for d in v.diagnostics]})
    else:
        style = stderr_style(no_color(args))
        _print_diags(v, style)
        if v.ok:
            inv = v.inventory
            assert inv is not None
            n = sum(len(h.instances) for h in inv.hosts)
            _log(f"{args.inventory}: valid ({len(inv.hosts)} host(s), {n} instance(s), OpenClaw "
                 f"{inv.openclaw.version}); {summary_line(v.diagnostics)}")
        else:
            _log(f"{args.inventory}: invalid; {summary_line(v.diagnostics)}")
    return EXIT_OK if v.ok else EXIT_ERROR


def _secrets(args: argparse.Namespace) -> Any:
    from provisioner.render.files import controller_secrets, placeholder_secrets

    return placeholder_secrets if getattr(args, "placeholder_secrets", False) else controller_secrets()


def _render(inv: Inventory, hosts: list[Host], secrets: Any) -> dict[str, DesiredHost] | Diagnostic:
    from provisioner.render.files import SecretMissing, render_host

    try:
        return {h.name: render_host(inv, h, secrets) for h in hosts}
    except SecretMissing as exc:
        span = inv.span((*exc.instance.doc_path, "secrets", exc.name), key=True)
        return Diagnostic(Severity.ERROR, f"{exc}: set it in the controller's environment (or use a file:)", span,
                          "secret-missing")


def cmd_render(args: argparse.Namespace) -> int:
    v = _load(args, args.inventory)
    if not v.ok or v.inventory is None:
        return EXIT_ERROR
    inv = v.inventory
    try:
        hosts, _ = select(inv, args.limit)
    except LimitError as exc:
        _log(f"error: {exc}")
        return EXIT_ERROR
    desired = _render(inv, hosts, _secrets(args))
    if isinstance(desired, Diagnostic):
        _log(format_diagnostic(desired, stderr_style(no_color(args))))
        return EXIT_ERROR
    written = []
    for dh in desired.values():
        for d in dh.dirs:
            dest = os.path.join(args.out, dh.name, d.path.lstrip("/"))
            os.makedirs(dest, exist_ok=True)
            if not d.ensure_only:
                os.chmod(dest, d.mode)
        for f in dh.files:
            dest = os.path.join(args.out, dh.name, f.path.lstrip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            tmp = dest + ".tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(f.content)
            os.chmod(tmp, f.mode)
            os.replace(tmp, dest)
            written.append(dest)
    if args.json:
        emit_json({"out": args.out, "files": written})
    else:
        _log(f"rendered {len(written)} file(s) for {len(desired)} host(s) under {args.out}")
    return EXIT_OK


# --- plan / apply --------------------------------------------------------------------------------------------

class _Prepared:
    def __init__(self, inv: Inventory, hosts: list[Host], desired: dict[str, DesiredHost], partial: bool) -> None:
        self.inv = inv
        self.hosts = hosts
        self.desired = desired
        self.partial = partial


def _prepare(args: argparse.Namespace, path: str) -> _Prepared | None:
    v = _load(args, path)
    if not v.ok or v.inventory is None:
        return None
    inv = v.inventory
    try:
        hosts, partial = select(inv, args.limit)
    except LimitError as exc:
        _log(f"error: {exc}")
        return None
    desired = _render(inv, hosts, _secrets(args))
    if isinstance(desired, Diagnostic):
        _log(format_diagnostic(desired, stderr_style(no_color(args))))
        return None
    offline = getattr(args, "offline", None)
    for h in hosts:
        if offline or h.connection == "local":
            desired[h.name] = owned_by_caller(desired[h.name])
    return _Prepared(inv, hosts, desired, partial)


def owned_by_caller(dh: DesiredHost) -> DesiredHost:
    """A directory standing for a host cannot hold other users' files: expect them owned by whoever runs us."""
    import grp
    import pwd
    from dataclasses import replace

    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    return replace(dh, files=tuple(replace(f, owner=user, group=group) for f in dh.files),
                   dirs=tuple(replace(d, owner=user, group=group) for d in dh.dirs))


def _without_removals(plan: Plan) -> Plan:
    from dataclasses import replace

    from provisioner.core.changes import Action

    return replace(plan, hosts=tuple(
        replace(h, changes=tuple(c for c in h.changes
                                 if not (c.kind is ChangeKind.SERVICE and c.action is Action.STOP)))
        for h in plan.hosts))


def _make_plan(prep: _Prepared, fleet: Any, args: argparse.Namespace) -> Plan:
    """Facts from every host, then the plan; what a host cannot take (busy ports, config keys its OpenClaw
    version rejects) is reported as located errors and keeps that host out of the apply."""
    from dataclasses import replace

    from provisioner.apply.capabilities import port_diagnostics, version_diagnostics
    from provisioner.apply.fleet import make_plan

    observed: dict[str, Any] = {}
    plan = make_plan(fleet, prep.hosts, prep.desired, observed)
    if prep.partial:
        plan = _without_removals(plan)
    by_name = {h.name: h for h in prep.hosts}

    def check(h: Host) -> list[Diagnostic]:
        obs = observed.get(h.name)
        if obs is None:
            return []
        return port_diagnostics(prep.inv, h, obs) + version_diagnostics(prep.inv, h, obs, fleet.transport(h))

    found = fleet.each([by_name[n] for n in observed], check)
    style = stderr_style(no_color(args))
    hosts = []
    for hp in plan.hosts:
        diags = found.get(hp.host, [])
        if isinstance(diags, BaseException):
            hosts.append(replace(hp, error=f"capability check failed: {diags}"))
            continue
        for d in diags:
            _log(format_diagnostic(d, style))
        errors = [d for d in diags if d.is_error]
        hosts.append(replace(hp, error=f"{len(errors)} problem(s) on the host would break the apply (see above)")
                     if errors and not hp.error else hp)
    return replace(plan, hosts=tuple(hosts))


def cmd_plan(args: argparse.Namespace) -> int:
    from provisioner.apply.fleet import Fleet
    from provisioner.output.plan_view import render_plan
    from provisioner.planfile import dumps, plan_json

    prep = _prepare(args, args.inventory)
    if prep is None:
        return EXIT_ERROR
    if args.offline and not os.path.isdir(args.offline):
        _log(f"error: --offline {args.offline}: no such directory")
        return EXIT_ERROR
    with Fleet(prep.inv, offline_dir=args.offline) as fleet:
        plan = _make_plan(prep, fleet, args)
    if args.out:
        with open(args.out + ".tmp", "w", encoding="utf-8") as f:
            f.write(dumps(plan))
        os.chmod(args.out + ".tmp", 0o600)
        os.replace(args.out + ".tmp", args.out)
    if args.json:
        emit_json(plan_json(plan))
    else:
        sys.stdout.write(render_plan(plan, Style.for_stream(sys.stdout, no_color(args))))
        if args.out:
            _log(f"plan saved to {args.out}; apply it with: provision apply {args.out}")
    if plan.has_errors or plan.has_refusals:
        return EXIT_ERROR
    return EXIT_CHANGES if (args.detailed_exitcode and plan.has_changes) else EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    from provisioner.apply.fleet import Fleet
    from provisioner.output.plan_view import render_plan
    from provisioner.planfile import PlanFileError, loads, looks_like_plan, plan_json

    saved: Plan | None = None
    inventory_path = args.target
    try:
        with open(args.target, encoding="utf-8") as f:
            head = f.read()
    except OSError as exc:
        _log(f"error: {exc}")
        return EXIT_ERROR
    if looks_like_plan(head):
        try:
            saved = loads(head)
        except PlanFileError as exc:
            _log(f"error: {args.target}: {exc}")
            return EXIT_ERROR
        inventory_path = saved.inventory_path
    prep = _prepare(args, inventory_path)
    if prep is None:
        return EXIT_ERROR
    if saved is not None:
        problem = _check_saved(saved, prep)
        if problem:
            _log(f"error: refusing to apply {args.target}: {problem}")
            return EXIT_ERROR
    out = Style.for_stream(sys.stdout, no_color(args))
    playbook = _playbook(args)
    if playbook is None:
        return EXIT_ERROR
    with Fleet(prep.inv) as fleet:
        plan = saved or _make_plan(prep, fleet, args)
        if not args.json:
            sys.stdout.write(render_plan(plan, out))
        if plan.has_errors and saved is None:
            _log("error: some hosts could not be planned; nothing was applied")
            if args.json:
                emit_json({"plan": plan_json(plan), "results": []})
            return EXIT_ERROR
        if not plan.has_changes:
            if args.json:
                from provisioner.apply.executor import HostResult, HostStatus
                from provisioner.apply.rollout import RolloutResult
                from provisioner.output.results import results_json

                nothing = RolloutResult({h.host: HostResult(h.host, HostStatus.UNCHANGED, "no changes")
                                         for h in plan.hosts})
                emit_json({"plan": plan_json(plan), **results_json(nothing, f"inventory {prep.inv.sha256[:12]}")})
            else:
                _log("No changes. The hosts match the inventory.")
            return EXIT_OK
        if not args.yes and saved is None:
            if not sys.stdin.isatty():
                _log("error: refusing to apply without confirmation: no terminal to ask on; pass --yes")
                return EXIT_ERROR
            answer = input("Apply these changes? Only 'yes' is accepted: ").strip()
            if answer != "yes":
                _log("Apply cancelled.")
                return EXIT_ERROR
        # --- shared dedupe directory: proven before it is relied on across hosts (see dedupe/verify.py) ---
        shared = _dedupe_shared(prep)
        unmanaged = prep.inv.dedupe is not None and prep.inv.dedupe.mount is None
        if shared and unmanaged and not _dedupe_proof(args, prep, fleet, "before anything is touched"):
            return EXIT_ERROR
        results = _roll_out(args, prep, plan, fleet, playbook, saved=saved is not None)
        proof_ok = True
        if shared and prep.inv.dedupe and prep.inv.dedupe.mount is not None and results.ok:
            proof_ok = _dedupe_proof(args, prep, fleet, "now that the mounts are in place")
    from provisioner.output.results import render_results, results_json

    revision = f"inventory {prep.inv.sha256[:12]}"
    if args.json:
        emit_json({"plan": plan_json(plan), **results_json(results, revision)})
    else:
        sys.stdout.write(render_results(results, out, revision))
    if results.interrupted:
        _log("interrupted: the report above says where every host stands")
        return EXIT_INTERRUPTED
    return EXIT_OK if results.ok and proof_ok else EXIT_ERROR


def _dedupe_shared(prep: _Prepared) -> bool:
    from provisioner.dedupe.verify import dedupe_hosts

    return len(dedupe_hosts(prep.inv, prep.hosts)) > 1


def _dedupe_proof(args: argparse.Namespace, prep: _Prepared, fleet: Any, when: str) -> bool:
    """Run `dedupe verify` as part of apply; the report goes to stderr so --json stays one document."""
    from provisioner.dedupe.command import run_verification
    from provisioner.output.dedupe_view import render_verification

    dd = prep.inv.dedupe
    assert dd is not None
    _log(f"verifying that {dd.dir} is one shared store across the HA hosts, {when}")
    if not dd.configure_gateway:
        _log("note: dedupe.configure_gateway is false: the directory is provisioned and verified, but the gateways "
             "are not told to use it and will NOT coordinate")
    v = run_verification(prep, fleet)
    if v is None:
        return True
    _log(render_verification(v, stderr_style(no_color(args))).rstrip())
    if not v.ok:
        _log(f"error: {dd.dir} is not proven to be one shared store" + ("; nothing was applied"
                                                                            if dd.mount is None else ""))
    return v.ok


def _playbook(args: argparse.Namespace) -> Any:
    from provisioner.apply.rollout import Playbook
    from provisioner.core.diagnostics import ProvisionError
    from provisioner.playbook import load_playbook

    if not args.playbook:
        return Playbook()
    try:
        return load_playbook(args.playbook)
    except ProvisionError as exc:
        style = stderr_style(no_color(args))
        for d in exc.diagnostics:
            _log(format_diagnostic(d, style))
        _log(f"error: {exc}")
        return None


def _check_saved(saved: Plan, prep: _Prepared) -> str | None:
    """A saved plan is applied only if the inventory and the rendered files are exactly what it was made from, and
    its file fingerprints were made with this controller's digest key (provisioner/digests.py)."""
    from provisioner.digests import KEY_ENV, DigestKeyError, current_key, key_id
    from provisioner.plan import desired_fingerprint
    from provisioner.planfile import SavedPlan

    if saved.inventory_sha256 != prep.inv.sha256:
        return f"the inventory {saved.inventory_path} changed since the plan was made"
    made_with = saved.digest_key_id if isinstance(saved, SavedPlan) else None
    if made_with is None:
        # a plan file of an older version: its file fingerprints are plain sha256 digests, which nothing matches now
        if any((c.before or "").startswith("sha256:") or (c.after or "").startswith("sha256:")
               for hp in saved.hosts for c in hp.changes if c.kind is ChangeKind.FILE):
            return "this plan was made by an older version of the tool (unkeyed file fingerprints); run plan again"
    else:
        try:
            mine = key_id()
        except DigestKeyError as exc:
            return str(exc)
        if made_with != mine:
            why = "" if current_key().persistent else " (this controller could not keep a key of its own: see above)"
            return (f"this plan was made by a controller with another digest key{why}; run plan again here, or share "
                    f"the key with {KEY_ENV}")
    desired_fp = {(h, f.path): desired_fingerprint(f) for h, dh in prep.desired.items() for f in dh.files}
    for hp in saved.hosts:
        for c in hp.changes:
            if c.kind is ChangeKind.FILE and desired_fp.get((c.host, c.target)) != c.after:
                return (f"{c.host}:{c.target} would not be what the plan says (a secret or the tool changed "
                        "since); make a new plan")
    return None


def _roll_out(args: argparse.Namespace, prep: _Prepared, plan: Plan, fleet: Any, playbook: Any, *,
              saved: bool = False) -> Any:
    from provisioner.apply.executor import HostResult, HostStatus, apply_host, roll_back_host
    from provisioner.apply.rollout import roll_out
    from provisioner.output.progress import ApplyProgress

    by_host = {h.host: h for h in plan.hosts}
    hosts = {h.name: h for h in prep.hosts}
    changing = [h.name for h in prep.hosts if h.name in by_host and by_host[h.name].has_changes]
    progress = ApplyProgress(live=not args.json, quiet=args.json and not args.verbose)
    done: dict[str, HostResult] = {}
    artifact_lock = threading.Lock()
    artifacts: dict[str, Any] = {}

    def release_artifact() -> Any:
        """Fetched and packed once per run (and cached across runs), whatever the number of hosts."""
        from provisioner.install.release import artifact

        ins = prep.inv.openclaw.install
        assert ins is not None
        with artifact_lock:
            if "a" not in artifacts:
                progress("controller", f"caching OpenClaw {prep.inv.openclaw.version} for the hosts")
                artifacts["a"] = artifact(prep.inv.openclaw.version, ins.node_version)
            return artifacts["a"]

    def become(h: Host) -> bool:
        return h.ssh.become and h.ssh.user != "root"

    def each(batch: list[str], fn: Any) -> dict[str, HostResult]:
        from provisioner.remote.transport import TransportError

        raw = fleet.each([hosts[n] for n in batch], fn)
        out = {}
        for n, r in raw.items():
            if isinstance(r, TransportError):
                # the host may have taken some files (each one whole, old or new) and not restarted yet: the
                # next plan shows which, and restarts what was left pending
                r = HostResult(n, HostStatus.FAILED, f"connection lost during apply: {r.detail}; the host may be on "
                               "its previous or its new files, each file whole; run plan to see")
            elif not isinstance(r, HostResult):
                r = HostResult(n, HostStatus.FAILED, f"{type(r).__name__}: {r}")
            out[n] = r
        return out

    stop = threading.Event()

    def run_batch(batch: list[str]) -> dict[str, HostResult]:
        progress("batch", ", ".join(batch))

        def one(h: Host) -> HostResult:
            if stop.is_set():
                return HostResult(h.name, HostStatus.NOT_REACHED, "interrupted before this host was started")
            r = apply_host(fleet.transport(h), prep.desired[h.name], by_host[h.name], become=become(h),
                           progress=progress, health_gate=playbook.health_gate,
                           health_timeout=playbook.health_timeout, release_artifact=release_artifact,
                           recheck_all=saved)
            done[h.name] = r
            progress.done(h.name, r.ok, r.status.value)
            return r

        return each(batch, one)

    def roll_back(names: list[str]) -> dict[str, HostResult]:
        return each(names, lambda h: roll_back_host(fleet.transport(h), prep.desired[h.name], done[h.name],
                                                    become=become(h), progress=progress))

    def on_interrupt(signum: int, frame: Any) -> None:
        if stop.is_set():
            progress.close()
            os.write(2, b"\nsecond interrupt: stopping now. Hosts in flight keep each file whole (old or new) and "
                        b"their lock; the next apply takes the stale lock over and restarts what was left pending\n")
            os._exit(130)
        stop.set()
        progress("controller", "interrupted: finishing the hosts in flight, starting no others "
                               "(interrupt again to stop at once)")

    import signal

    previous = signal.signal(signal.SIGINT, on_interrupt) \
        if threading.current_thread() is threading.main_thread() else None
    try:
        result = roll_out(changing, playbook, run_batch, roll_back, interrupted=stop.is_set)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        progress.close()
    for h in prep.hosts:
        if h.name not in result.results:
            status = HostStatus.UNREACHABLE if by_host.get(h.name) and by_host[h.name].error else HostStatus.UNCHANGED
            result.results[h.name] = HostResult(h.name, status, by_host[h.name].error or "no changes")
    return result


# --- demo --------------------------------------------------------------------------------------------------

def cmd_demo(args: argparse.Namespace) -> int:
    """Copy the embedded local demo inventory to --dir and run the whole job against local stand-in hosts."""
    os.makedirs(args.dir, exist_ok=True)
    inv_path = os.path.join(args.dir, "inventory.yaml")
    if not os.path.exists(inv_path):
        src = resources.files("provisioner") / "examples" / "local-demo.yaml"
        with open(inv_path, "w", encoding="utf-8") as f:
            f.write(src.read_text(encoding="utf-8"))
    os.environ.setdefault("DEMO_RESCUE_TOKEN", "demo-token-not-a-real-secret")
    common = ["--no-color"] if no_color(args) else []
    from provisioner.cli import main

    steps = [
        ("validate", ["validate", inv_path, *common]),
        ("plan (first)", ["plan", inv_path, "--detailed-exitcode", *common]),
        ("apply", ["apply", inv_path, "--yes", *common]),
        ("plan (again: expect no changes)", ["plan", inv_path, "--detailed-exitcode", *common]),
    ]
    codes = []
    for title, argv in steps:
        print(f"\n=== provision {' '.join(argv)}    # {title}", flush=True)
        rc = main(argv)
        print(f"=== exit code {rc}", flush=True)
        codes.append(rc)
    ok = codes == [EXIT_OK, EXIT_CHANGES, EXIT_OK, EXIT_OK]
    print(f"\ndemo {'OK' if ok else 'FAILED'}: files are under {os.path.abspath(args.dir)}/hosts/; "
          f"try `provision plan {inv_path}` after editing the inventory.")
    return EXIT_OK if ok else EXIT_ERROR


def cmd_dedupe(args: argparse.Namespace) -> int:
    from provisioner.dedupe.command import cmd_dedupe_verify

    rc: int = cmd_dedupe_verify(args)
    return rc


def cmd_status(args: argparse.Namespace) -> int:
    from provisioner.apply.fleet import Fleet
    from provisioner.apply.health import InstanceHealth, host_health
    from provisioner.output.status_view import render_status, status_json

    args.placeholder_secrets = True  # status never needs secret values
    prep = _prepare(args, args.inventory)
    if prep is None:
        return EXIT_ERROR
    with Fleet(prep.inv) as fleet:
        raw = fleet.each(prep.hosts, lambda h: host_health(
            fleet.transport(h), prep.desired[h.name], become=h.ssh.become and h.ssh.user != "root", host=h,
            command=prep.inv.openclaw.run_command if args.openclaw_status and h.connection == "ssh" else ()))
    rows: list[InstanceHealth] = []
    errors: dict[str, str] = {}
    for h in prep.hosts:
        r = raw[h.name]
        if isinstance(r, BaseException):
            errors[h.name] = str(r)
        else:
            rows += r
    if args.json:
        emit_json(status_json(rows, errors))
    else:
        sys.stdout.write(render_status(rows, errors, Style.for_stream(sys.stdout, no_color(args))))
    return EXIT_OK if not errors and all(r.healthy for r in rows) else EXIT_ERROR


def cmd_unlock(args: argparse.Namespace) -> int:
    """Clear host locks left by a run that died; a lock whose run is alive (or cannot be checked from this
    controller) stays unless --force. Shows who held each one."""
    from provisioner.apply.fleet import Fleet
    from provisioner.apply.locks import Liveness, liveness, parse_holder
    from provisioner.remote.connect import run_script, transport_root
    from provisioner.remote.writes import clear_lock_script, read_lock_script

    args.placeholder_secrets = True
    prep = _prepare(args, args.inventory)
    if prep is None:
        return EXIT_ERROR
    force = getattr(args, "force", False)

    def one(h: Host) -> tuple[bool, str]:
        t = fleet.transport(h)
        root, become = transport_root(t), h.ssh.become and h.ssh.user != "root"
        res = run_script(t, read_lock_script(root), become=become)
        line = res.text().strip()
        if not res.ok or not line.startswith(("HELD", "FREE")):
            return False, f"cannot read the lock: {res.err_text()[:300]}"
        if line == "FREE":
            return True, "not locked"
        raw = line.removeprefix("HELD ").strip()
        holder = parse_holder(raw)
        state = liveness(holder)
        if state is Liveness.LIVE and not force:
            return False, f"held by a run that is still alive ({holder.describe()}); not cleared"
        if state is Liveness.UNKNOWN and not force:
            return False, (f"held by {holder.describe()}, which this controller cannot check; not cleared "
                           "(--force clears it)")
        res = run_script(t, clear_lock_script(raw, root), become=become, timeout=90)
        out = res.text().strip()
        if out == "BUSY":
            return False, "not cleared: a script of that run is still running on the host after 60 s"
        if out == "CLEARED":
            what = {Liveness.DEAD: "its run is dead", Liveness.LIVE: "forced; its run is still alive",
                    Liveness.UNKNOWN: "forced"}[state]
            return True, f"cleared the lock of {holder.describe()} ({what})"
        if out == "FREE":
            return True, "not locked (released meanwhile)"
        return False, f"not cleared: the lock changed hands meanwhile ({out.removeprefix('HELD ')})"

    with Fleet(prep.inv) as fleet:
        raw = fleet.each(prep.hosts, one)
    ok = True
    for name, r in raw.items():
        if isinstance(r, BaseException):
            ok = False
            _log(f"{name}: {getattr(r, 'detail', None) or r}")
        else:
            ok = ok and r[0]
            _log(f"{name}: {r[1]}")
    return EXIT_OK if ok else EXIT_ERROR
