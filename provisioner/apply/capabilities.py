"""What a host can take, found before anything is touched: its OpenClaw version's config schema, its busy ports.

When a host runs another OpenClaw version than the inventory names, the rendered configs are checked
against that host's own `openclaw config schema` (fetched once per version and cached on the controller).
A port of an instance's span that something else already listens on is an error located at the port.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from provisioner.cache import cache_dir, read_json, write_json
from provisioner.core.diagnostics import Diagnostic, Severity
from provisioner.core.observed import ObservedHost
from provisioner.inventory.model import Host, Inventory
from provisioner.remote.connect import run_script, transport_root
from provisioner.remote.scripts.openclaw_cli import NOBODY, config_schema_script
from provisioner.remote.scripts.trust import user_output
from provisioner.remote.transport import Transport
from provisioner.rules.context import Ctx
from provisioner.rules.ports import port_span

_VERSION = re.compile(r"^[0-9A-Za-z.+-]{1,64}$")


def host_schema(t: Transport, command: Sequence[str], version: str, user: str, group: str, *,
                become: bool = False) -> dict[str, Any]:
    """The config schema of the OpenClaw version a host runs: from the controller's cache, else from the host,
    where the CLI runs as `user`:`group` (the host's service user). Only what that user side printed is parsed."""
    if not _VERSION.match(version):
        raise ValueError(f"unexpected OpenClaw version string {version!r}")
    cache = cache_dir("schemas") / f"config.schema.{version}.json"
    cached = read_json(cache)
    if isinstance(cached, dict):
        return cached
    res = run_script(t, config_schema_script(command, user, group, transport_root(t)), become=become, timeout=300)
    if not res.ok:
        raise RuntimeError(f"`openclaw config schema` failed on {t.host} (exit {res.rc}): {res.err_text()[:300]}")
    text = user_output(res.text())
    try:
        data = json.loads(text[text.index("{"):])
    except ValueError as exc:
        raise RuntimeError(f"`openclaw config schema` on {t.host} printed no JSON schema: {exc}") from exc
    if not isinstance(data, dict):
        raise RuntimeError(f"`openclaw config schema` on {t.host} printed no JSON object")
    write_json(cache, data)
    return data


def version_diagnostics(inv: Inventory, host: Host, observed: ObservedHost, t: Transport) -> list[Diagnostic]:
    """Check this host's rendered configs against what its own OpenClaw version accepts."""
    have = observed.openclaw_version
    want = inv.openclaw.version
    if not have or have == want:
        return []
    # only now: these import jsonschema (~40 ms), which a plan whose hosts run the inventory's version never needs
    from provisioner.rules.openclaw_schemas import has_schema
    from provisioner.validate import check_openclaw_configs

    ctx = Ctx(inv)
    span = ctx.at(("openclaw", "version"), key=False) if inv.openclaw.version_explicit else ctx.at(host.doc_path)
    note = Diagnostic(Severity.WARNING, f"host {host.name} runs OpenClaw {have}, not {want} as the inventory says; "
                      f"its configs are checked against what {have} accepts", span, "openclaw-version")
    become = host.ssh.become and host.ssh.user != "root"
    try:
        # as nobody, not the service user: the schema is cached on the controller for every host of that version,
        # so a hostile service user (who could plant a plugin in the CLI's path) must not be the one who prints it
        schema = None if has_schema(have) else host_schema(t, inv.openclaw.run_command, have, *NOBODY, become=become)
    except (RuntimeError, ValueError) as exc:
        return [note, Diagnostic(Severity.ERROR, f"cannot read the config schema of OpenClaw {have} on {host.name}: "
                                 f"{exc}", span, "openclaw-version")]
    return [note, *check_openclaw_configs(inv, schema=schema, version=have, hosts={host.name})]


def port_diagnostics(inv: Inventory, host: Host, observed: ObservedHost) -> list[Diagnostic]:
    """A port of an instance's span held by a process that is not one of the tool's own gateways."""
    ours = set(observed.managed_units) | {i.unit for i in host.instances}
    ctx = Ctx(inv)
    out = []
    for inst in host.instances:
        span = port_span(inst)
        if span is None:
            continue
        ports = span.ports()
        for lst in observed.listeners:
            if lst.port in ports and lst.unit not in ours:
                who = lst.command if lst.command != "-" else "another program"
                detail = f"{who}" + (f" (pid {lst.pid}" + (f", {lst.unit})" if lst.unit else ")") if lst.pid else "")
                what = "its gateway port" if lst.port == inst.port else f"a port of its range {span.describe()}"
                out.append(Diagnostic(Severity.ERROR, f"{inst.address}: port {lst.port}, {what}, is already in use "
                                      f"on {host.name} by {detail}; the gateway would fail to start (EADDRINUSE)",
                                      ctx.field(inst, "port"), "port-in-use"))
                break
    return out
