"""Render every host's desired files: OpenClaw config (JSON5), env file and systemd unit per instance."""

from __future__ import annotations

import copy
import os
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any

import json5

from provisioner.core.desired import (
    DesiredDir,
    DesiredFile,
    DesiredHost,
    DesiredRelease,
    DesiredService,
    DesiredToken,
    FileKind,
    Manager,
)
from provisioner.inventory.model import Host, Instance, Inventory, SecretRef
from provisioner.remote.scripts.gateway_exec import GATEWAY_EXEC, gateway_exec_argv, gateway_exec_script
from provisioner.render.documents import desired_documents
from provisioner.render.plugins import desired_plugins
from provisioner.render.plugins import wire as wire_plugins
from provisioner.rules.secret_fields import credential_env, fields_for, masked_forms

CONFIG_HEADER = (
    "// Managed by openclaw-provisioner: do not edit by hand, `provision apply` overwrites this file.\n"
    "// Instance {host}/{name} (profile {profile}), OpenClaw {version}.\n"
)

SecretLookup = Callable[[SecretRef], str | None]


class SecretUnavailable(Exception):
    """Why a secret's source gives no value: a lookup raises it with the cause in words."""


class SecretMissing(Exception):
    def __init__(self, inst: Instance, name: str, ref: SecretRef, why: str = "") -> None:
        why = why or (f"environment variable {ref.env} is not set in the controller's environment" if ref.env
                      else f"{ref.describe()} is not available")
        super().__init__(f"{inst.address}: secret {name} comes from {ref.describe()}, but {why}")
        self.instance = inst
        self.name = name
        self.ref = ref


def controller_secrets(environ: Mapping[str, str] | None = None) -> SecretLookup:
    """Resolve secrets from the controller's environment or files (never from the inventory text)."""
    env = os.environ if environ is None else environ

    def lookup(ref: SecretRef) -> str | None:
        if ref.env:
            return env.get(ref.env)
        if ref.file:
            return _read_secret_file(os.path.expanduser(ref.file))
        return None

    return lookup


def _read_secret_file(path: str) -> str:
    """The file's text without its final newline; SecretUnavailable naming the real cause otherwise."""
    try:
        with open(path, encoding="utf-8") as f:
            value = f.read().rstrip("\r\n")
    except FileNotFoundError:
        raise SecretUnavailable(f"the file {path} does not exist") from None
    except IsADirectoryError:
        raise SecretUnavailable(f"{path} is a directory, not a file") from None
    except PermissionError:
        raise SecretUnavailable(f"the file {path} cannot be read by uid {os.getuid()} (permission denied)") from None
    except UnicodeDecodeError:
        raise SecretUnavailable(f"the file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise SecretUnavailable(f"the file {path} cannot be read: {exc.strerror or exc}") from None
    if not value:
        raise SecretUnavailable(f"the file {path} is empty")
    return value


def placeholder_secrets(ref: SecretRef) -> str:
    """For validate and offline checks: a stand-in that says where the value would come from."""
    return f"<secret from {ref.describe()}>"


# --- systemd and env-file quoting -------------------------------------------------------------------

def unit_path(value: str) -> str:
    # `%` starts a systemd specifier in almost every setting
    return value.replace("%", "%%")


def unit_env(assignment: str) -> str:
    """One Environment= assignment, quoted so that spaces, quotes and specifiers stay literal."""
    escaped = assignment.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def exec_arg(arg: str) -> str:
    """One ExecStart argument: systemd splits on spaces, expands $VAR and %-specifiers unless escaped."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    if escaped == arg and arg and not any(c in arg for c in " \t';"):
        return arg
    return f'"{escaped}"'


def env_quote(value: str) -> str:
    """A value for systemd's EnvironmentFile (also safe for `. file` in sh): double quotes, escapes inside."""
    out = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
    return f'"{out}"'


def _jinja_cache() -> Any:
    """Compiled templates kept in the controller's cache (compiling them costs every run ~20 ms); None if the
    cache cannot be used, which only costs that time again."""
    import jinja2

    from provisioner.cache import cache_dir

    d = cache_dir("jinja")
    try:
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(str(d))


@lru_cache(maxsize=1)
def _jinja() -> Any:
    import jinja2  # only rendering needs it; validate and plan of an unchanged fleet start faster without

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("provisioner.render", "templates"),
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        bytecode_cache=_jinja_cache(),
    )
    env.filters.update(unit_path=unit_path, unit_env=unit_env, env_quote=env_quote)
    return env


# --- per instance ------------------------------------------------------------------------------------

def gateway_config(inv: Inventory, inst: Instance) -> dict[str, Any]:
    """The instance's OpenClaw config: merged `config`, then the keys the tool owns."""
    cfg: dict[str, Any] = copy.deepcopy(inst.config)
    gw = cfg.setdefault("gateway", {})
    gw["mode"] = "local"
    if inst.port is not None:
        gw["port"] = inst.port
    gw["bind"] = inst.bind
    # auth by default: token auth unless the inventory chose a mode (rules/owned_keys.py: `none` is an explicit,
    # loopback-only opt-out); the token comes from OPENCLAW_GATEWAY_TOKEN (secrets, or made on the host)
    auth = gw.setdefault("auth", {})
    if isinstance(auth, dict):
        auth.setdefault("mode", "token")
    cfg.setdefault("agents", {}).setdefault("defaults", {})["workspace"] = inst.workspace
    wire_plugins(cfg, inst)
    if inv.dedupe and inst.dedupe and inv.dedupe.configure_gateway:
        gw["inboundDedupe"] = {"file": {"dir": inv.dedupe.dir}}
    return cfg


def enabled_channels(cfg: dict[str, Any]) -> tuple[str, ...]:
    """The channels a rendered config turns on: `channels.<id>` mappings not set `enabled: false` (`defaults` and
    `modelByChannel` are settings for all channels, not channels)."""
    chans = cfg.get("channels")
    if not isinstance(chans, dict):
        return ()
    return tuple(sorted(k for k, v in chans.items() if k not in ("defaults", "modelByChannel")
                        and isinstance(v, dict) and v.get("enabled", True) is not False))


def render_config(inv: Inventory, inst: Instance, cfg: dict[str, Any]) -> bytes:
    header = CONFIG_HEADER.format(host=inst.host, name=inst.name, profile=inst.profile, version=inv.openclaw.version)
    body = json5.dumps(cfg, indent=2, sort_keys=True, quote_keys=True, trailing_commas=False, ensure_ascii=False)
    return (header + body + "\n").encode("utf-8")


def render_env(inst: Instance, secrets: SecretLookup | Callable[[SecretRef], str]) -> tuple[bytes, tuple[str, ...]]:
    entries: list[tuple[str, str]] = sorted(inst.env.items())
    values: list[str] = []
    for name, ref in sorted(inst.secrets.items()):
        try:
            value = secrets(ref)
        except SecretUnavailable as exc:
            raise SecretMissing(inst, name, ref, str(exc)) from None
        if value is None:
            raise SecretMissing(inst, name, ref)
        entries.append((name, value))
        values.append(value)
    text = _jinja().get_template("gateway.env.j2").render(
        inst=inst, entries=entries, readonly=inst.service.manager is Manager.NONE, token_file=inst.token_file)
    return text.encode("utf-8"), tuple(values)


def unit_file_path(inst: Instance) -> str:
    if inst.service.manager is Manager.SYSTEMD_USER:
        return posixpath.join(inst.service.home, ".config/systemd/user", inst.unit)
    return posixpath.join("/etc/systemd/system", inst.unit)


def dedupe_mount(inv: Inventory, host: Host) -> tuple[DesiredFile, DesiredService] | None:
    """The mount unit of the shared claim directory, on hosts where an instance uses it and the tool mounts it."""
    from provisioner.dedupe.mountunit import render_mount_unit, unit_name

    dd = inv.dedupe
    if (dd is None or dd.mount is None or host.service.manager is not Manager.SYSTEMD
            or not any(i.dedupe for i in host.instances)):
        return None
    unit = unit_name(dd.dir)
    path = f"/etc/systemd/system/{unit}"
    f = DesiredFile(host.name, None, path, render_mount_unit(dd), 0o644, "root", "root", FileKind.UNIT)
    # port 0: nothing to ask for readiness; systemd itself fails the start when the mount fails
    return f, DesiredService(host.name, "dedupe-mount", unit, Manager.SYSTEMD, "root", 0, (path,), "",
                             60.0)


def render_unit(inv: Inventory, inst: Instance) -> bytes:
    argv = list(inv.openclaw.run_command)
    if inst.profile.lower() != "default":
        # upstream #15970: a unit whose command line lacks the profile can fight another over one lock
        argv += ["--profile", inst.profile]
    argv += ["gateway", "--port", str(inst.port)]
    # the token made on the host first: gateway.env may override it
    env_files = (*((inst.token_file,) if inst.token_file else ()), inst.env_file)
    argv = gateway_exec_argv(env_files, argv)
    text = _jinja().get_template("gateway.service.j2").render(
        inst=inst,
        version=inv.openclaw.version,
        user_unit=inst.service.manager is Manager.SYSTEMD_USER,
        exec_start=" ".join(exec_arg(a) for a in argv),
        mounts_for=unit_path(inv.dedupe.dir) if inv.dedupe and inv.dedupe.mount and inst.dedupe else "",
        env_files_doc=", then ".join(posixpath.basename(f) for f in env_files),
    )
    return text.encode("utf-8")


def render_host(
    inv: Inventory, host: Host, secrets: SecretLookup | Callable[[SecretRef], str] = placeholder_secrets
) -> DesiredHost:
    files: list[DesiredFile] = []
    dirs: dict[str, DesiredDir] = {}
    services: list[DesiredService] = []
    tokens: list[DesiredToken] = []
    svc = host.service
    mount = dedupe_mount(inv, host)
    if mount is not None:
        # first in the list, so the claim directory is mounted before the gateways that use it restart
        files.append(mount[0])
        services.append(mount[1])
    if svc.manager is not Manager.NONE and host.instances:
        # what every gateway unit starts (it reads the env files as the user): a change restarts them all
        files.append(DesiredFile(host.name, None, GATEWAY_EXEC, gateway_exec_script(), 0o755, "root", "root",
                                 FileKind.OTHER))
    for inst in host.instances:
        def own_dir(path: str, mode: int = 0o700, inst: Instance = inst) -> None:
            dirs.setdefault(path, DesiredDir(host.name, inst.name, path, mode, svc.user, svc.group))

        own_dir(inst.state_dir)
        own_dir(inst.workspace)
        for parent in (posixpath.dirname(inst.config_path), posixpath.dirname(inst.env_file)):
            if not _inside(parent, inst.state_dir):
                dirs.setdefault(parent, DesiredDir(host.name, inst.name, parent, 0o755, "root", "root", True))
        cfg = gateway_config(inv, inst)
        # credentials: literals in fields whose schema takes a SecretRef, and env: entries such fields read, are
        # masked wherever the files are shown (rules/secret_fields.py)
        creds = fields_for(inv.openclaw.version)
        files.append(
            DesiredFile(host.name, inst.name, inst.config_path, render_config(inv, inst, cfg), 0o600,
                        svc.user, svc.group, FileKind.CONFIG, secret_values=masked_forms(cfg, creds),
                        mask_fields=creds)
        )
        env_bytes, secret_values = render_env(inst, secrets)
        if inst.token_file:
            tokens.append(DesiredToken(host.name, inst.name, inst.token_file, svc.user, svc.group))
        files.append(
            DesiredFile(host.name, inst.name, inst.env_file, env_bytes, 0o600, svc.user, svc.group, FileKind.ENV,
                        secret_values=secret_values, reveal_keys=(
                            *sorted(set(inst.env) - credential_env(inst.config, creds)), "OPENCLAW_CONFIG_READONLY"))
        )
        doc_files, doc_dirs = desired_documents(host.name, inst)
        files += doc_files
        dirs.update({d.path: d for d in doc_dirs if d.path not in dirs})
        if svc.manager is Manager.NONE:
            continue
        unit_path_ = unit_file_path(inst)
        if svc.manager is Manager.SYSTEMD_USER:
            own_dir(posixpath.dirname(unit_path_), 0o755)
            unit_owner = (svc.user, svc.group)
        else:
            unit_owner = ("root", "root")
        files.append(
            DesiredFile(host.name, inst.name, unit_path_, render_unit(inv, inst), 0o644, *unit_owner, FileKind.UNIT)
        )
        services.append(
            DesiredService(host.name, inst.name, inst.unit, svc.manager, svc.user, inst.port or 0,
                           (inst.config_path, inst.env_file, unit_path_, GATEWAY_EXEC), inst.health_path,
                           inst.health_timeout,
                           inst.enabled, inst.stop_timeout, enabled_channels(cfg), inst.health_channels,
                           inst.health_settle, inst.state_dir, svc.group)
        )
    release = None
    if inv.openclaw.install is not None and svc.manager is not Manager.NONE:
        ins = inv.openclaw.install
        release = DesiredRelease(ins.prefix.rstrip("/"), inv.openclaw.version, ins.node_version, ins.source, ins.keep,
                                 ins.allow_downgrade, ins.registry)
    files, dir_list = _mark_user_tree(svc.user, svc.group, svc.home, files, list(dirs.values()))
    return DesiredHost(host.name, svc.user, svc.home, tuple(files), tuple(sorted(dir_list, key=lambda d: d.path)),
                       tuple(services), release, tuple(tokens), desired_plugins(host.name, host.instances))


def _mark_user_tree(user: str, group: str, home: str, files: list[DesiredFile], dirs: list[DesiredDir]
                    ) -> tuple[list[DesiredFile], list[DesiredDir]]:
    """Which targets lie in the service user's tree (see provisioner/remote/scripts/trust.py): those whose parent is
    inside its home or inside a directory the tool gives to that user. They are written as the user, so they
    must be the user's own; a root-owned parent the tool would create inside that tree becomes the user's."""
    roots = [home] + [d.path for d in dirs if d.owner == user]

    def in_tree(path: str) -> bool:
        parent = posixpath.dirname(path.rstrip("/"))
        return any(_inside(parent, r) for r in roots)

    out_dirs = []
    for d in dirs:
        if in_tree(d.path):
            d = replace(d, as_user=True, owner=user, group=group)
        out_dirs.append(d)
    out_files = [replace(f, as_user=True) if in_tree(f.path) and f.owner == user else f for f in files]
    return out_files, out_dirs


def _inside(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def render_inventory(
    inv: Inventory, secrets: SecretLookup | Callable[[SecretRef], str] = placeholder_secrets
) -> dict[str, DesiredHost]:
    return {h.name: render_host(inv, h, secrets) for h in inv.hosts}
