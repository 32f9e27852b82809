"""A command's session: the inventory validated, the hosts --limit selects, and their files rendered.

Every command that works on hosts starts from one. Nothing here prints: `open_session` returns the
inventory's diagnostics and what stopped it, and the CLI prints them.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from provisioner.core.desired import DesiredHost
from provisioner.core.diagnostics import Diagnostic, Severity, SourceSpan
from provisioner.inventory.model import Host, Inventory
from provisioner.inventory.select import LimitError, select
from provisioner.remote.sshconfig import SSHConfigError, with_ssh_config
from provisioner.render.documents import DocumentError
from provisioner.render.files import SecretLookup, SecretMissing, controller_secrets, placeholder_secrets, render_host
from provisioner.validate import validate_file


@dataclass
class Session:
    inv: Inventory
    hosts: list[Host]  # the hosts --limit selects, each with only its selected instances
    desired: dict[str, DesiredHost]  # host name -> its rendered files, dirs and services
    partial: bool  # some instances were left out by --limit: removals cannot be planned


@dataclass
class Opened:
    """What opening a session came to: the session, or the reason there is none."""

    session: Session | None
    diagnostics: list[Diagnostic] = field(default_factory=list)  # the inventory's, then a missing secret's
    problem: str | None = None  # a problem with no place in the inventory (a --limit that matches nothing)


def open_session(path: str, limit: Sequence[str], *, placeholder: bool = False, offline: bool = False,
                 stand_ins: bool = True, strict: bool = False) -> Opened:
    """Validate the inventory at `path`, select the hosts and render their files.

    placeholder: secrets are rendered as where they would come from, not read (commands that never write them).
    offline / stand_ins: when files are compared against directories standing for hosts (`plan --offline`,
    `connection: local` hosts), they are expected owned by whoever runs the tool; `render` (stand_ins=False)
    keeps the inventory's owners. strict: a literal secret in the OpenClaw config is an error.
    """
    v = validate_file(path, strict=strict)
    diags = list(v.diagnostics)
    if not v.ok or v.inventory is None:
        return Opened(None, diags)
    inv = v.inventory
    if not offline:
        try:
            inv = with_ssh_config(inv)
        except SSHConfigError as exc:
            return Opened(None, [*diags, Diagnostic(Severity.ERROR, str(exc), _config_file_span(inv), "ssh-config")])
    try:
        hosts, partial = select(inv, list(limit))
    except LimitError as exc:
        return Opened(None, diags, str(exc))
    desired = render_hosts(inv, hosts, secret_lookup(placeholder))
    if isinstance(desired, Diagnostic):
        return Opened(None, [*diags, desired])
    if stand_ins:
        for h in hosts:
            if offline or h.connection == "local":
                desired[h.name] = owned_by_caller(desired[h.name])
    return Opened(Session(inv, hosts, desired, partial), diags)


def _config_file_span(inv: Inventory) -> SourceSpan | None:
    """Where the inventory names an ssh config_file (the first place, if several)."""
    for path in inv.spans.values:
        if path[-2:] == ("ssh", "config_file"):
            return inv.spans.values[path]
    return None


def secret_lookup(placeholder: bool) -> SecretLookup:
    """Where secret values come from: the controller's environment and files, or placeholders saying so."""
    return placeholder_secrets if placeholder else controller_secrets()


def render_hosts(inv: Inventory, hosts: list[Host], secrets: SecretLookup) -> dict[str, DesiredHost] | Diagnostic:
    """Every host's files, or the located error of the first secret that is not available."""
    try:
        return {h.name: render_host(inv, h, secrets) for h in hosts}
    except SecretMissing as exc:
        span = inv.span((*exc.instance.doc_path, "secrets", exc.name), key=True)
        return Diagnostic(Severity.ERROR, str(exc), span, "secret-missing")
    except DocumentError as exc:  # a source changed since validation (rules/documents.py checked it)
        return Diagnostic(Severity.ERROR, str(exc), inv.span(exc.instance.source_of("documents", exc.entry.target),
                                                             key=True), "document")
    except OSError as exc:
        return Diagnostic(Severity.ERROR, f"reading a document failed: {exc}", None, "document")


def owned_by_caller(dh: DesiredHost) -> DesiredHost:
    """A directory standing for a host cannot hold other users' files: expect them owned by whoever runs us."""
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    return replace(dh, files=tuple(replace(f, owner=user, group=group) for f in dh.files),
                   dirs=tuple(replace(d, owner=user, group=group) for d in dh.dirs))
