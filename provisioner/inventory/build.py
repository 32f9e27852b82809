"""Build the resolved Inventory from schema-valid data: layer defaults -> groups -> host -> instance, expand paths."""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any

from provisioner.core.policies import HostKeyPolicy, Manager
from provisioner.inventory.model import (
    DEFAULT_STOP_TIMEOUT,
    DedupeMount,
    DedupeSettings,
    DocumentEntry,
    Host,
    InstallSettings,
    Instance,
    Inventory,
    OpenClawSettings,
    PluginSpec,
    SecretRef,
    ServiceSettings,
    SSHSettings,
)
from provisioner.inventory.yamlsource import DocPath, SpanTable

Provenance = dict[tuple[str, ...], DocPath]

DEFAULT_INSTANCE: dict[str, Any] = {
    "bind": "loopback",
    "enabled": True,
    "config": {},
    "env": {},
    "secrets": {},
    "health": {"path": "/readyz", "timeout": 120.0},
}


def layer(layers: list[tuple[dict[str, Any], DocPath]]) -> tuple[dict[str, Any], Provenance]:
    """Deep-merge mappings, later layers winning; remember which document path supplied each leaf."""
    merged: dict[str, Any] = {}
    prov: Provenance = {}

    def merge_into(dst: dict[str, Any], src: dict[str, Any], rel: tuple[str, ...], at: DocPath) -> None:
        for k, v in src.items():
            here = (*rel, k)
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                prov[here] = (*at, k)
                merge_into(dst[k], v, here, (*at, k))
            else:
                dst[k] = _copy(v)
                _mark(v, here, (*at, k))

    def _mark(v: Any, rel: tuple[str, ...], at: DocPath) -> None:
        prov[rel] = at
        if isinstance(v, dict):
            for k, sub in v.items():
                _mark(sub, (*rel, k), (*at, k))

    for data, at in layers:
        if data:
            merge_into(merged, data, (), at)
    return merged, prov


def _copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


_SLASHES = re.compile(r"/+")


def normalise_path(path: str, home: str) -> str:
    """An absolute, lexically normalised path: `~`, `~user`, `//`, trailing `/` and `..` cannot hide a clash."""
    if path.startswith("~"):
        head, _, rest = path[1:].partition("/")
        base = home if head == "" else ("/root" if head == "root" else f"/home/{head}")
        path = f"{base}/{rest}"
    # posixpath.normpath keeps a leading "//" (POSIX leaves it implementation-defined); Linux does not
    return posixpath.normpath(_SLASHES.sub("/", path))


def profile_suffix(profile: str) -> str:
    return "" if profile.lower() == "default" else f"-{profile}"


def build_inventory(data: dict[str, Any], spans: SpanTable, file: str, sha256: str) -> Inventory:
    base_dir = os.path.dirname(os.path.abspath(file))
    defaults = data.get("defaults") or {}
    groups_raw: dict[str, Any] = data.get("groups") or {}
    group_members = {g: tuple(v.get("hosts") or ()) for g, v in groups_raw.items()}

    oc = data.get("openclaw") or {}
    install = oc.get("install")
    if install is not None and str(install.get("prefix", "")).startswith("/"):
        # every release path and the command are joined onto it: "/opt/openclaw/" must not give "//"
        install = {**install, "prefix": normalise_path(install["prefix"], "/")}
    openclaw = OpenClawSettings(
        version=str(oc.get("version", OpenClawSettings.version)),
        command=tuple(oc.get("command") or ("openclaw",)),
        install=InstallSettings(**install) if install is not None else None,
        version_explicit="version" in oc,
    )
    dd = data.get("dedupe")
    dedupe = None
    if dd:
        m = dd.get("mount")
        dedupe = DedupeSettings(
            dir=normalise_path(dd["dir"], "/"),
            configure_gateway=dd.get("configure_gateway", True),
            mount=DedupeMount(m["type"], m["source"], tuple(m.get("options") or ()), m.get("identity_file"))
            if m
            else None,
        )

    hosts = []
    for hname, hraw in (data.get("hosts") or {}).items():
        hpath: DocPath = ("hosts", hname)
        member_of = tuple(g for g, members in group_members.items() if hname in members)
        layers_of: list[tuple[dict[str, Any], DocPath]] = [(defaults, ("defaults",))] + [
            ((groups_raw[g].get("vars") or {}), ("groups", g, "vars")) for g in member_of
        ]
        layers_of.append((hraw, hpath))

        ssh_raw, _ = layer([(lay.get("ssh") or {}, (*at, "ssh")) for lay, at in layers_of])
        ssh = SSHSettings(**{**ssh_raw, "proxy_jump": jump_hops(ssh_raw.get("proxy_jump")),
                             "explicit": frozenset(ssh_raw)})
        ssh = SSHSettings(
            **{
                **ssh.__dict__,
                "identity_file": _local_path(ssh.identity_file, base_dir),
                "known_hosts": _local_path(ssh.known_hosts, base_dir),
                "config_file": _local_path(ssh.config_file, base_dir),
                "host_key_policy": HostKeyPolicy(ssh.host_key_policy),
            }
        )
        svc_raw, _ = layer([(lay.get("service") or {}, (*at, "service")) for lay, at in layers_of])
        user = svc_raw.get("user", "openclaw")
        service = ServiceSettings(
            manager=Manager(svc_raw.get("manager", "systemd")),
            user=user,
            group=svc_raw.get("group", user),
            home=normalise_path(svc_raw.get("home") or ("/root" if user == "root" else f"/home/{user}"), "/"),
        )
        inst_layers = [(DEFAULT_INSTANCE, ())] + [
            (lay.get("instance") or {}, (*at, "instance")) for lay, at in layers_of
        ]
        instances = []
        for iname, iraw in (hraw.get("instances") or {}).items():
            ipath: DocPath = (*hpath, "instances", iname)
            merged, prov = layer([*inst_layers, (iraw or {}, ipath)])
            instances.append(_instance(hname, iname, merged, prov, ipath, service, dedupe is not None, base_dir))
        root = hraw.get("root")
        hosts.append(
            Host(
                name=hname,
                address=hraw.get("address"),
                connection=hraw.get("connection", "ssh"),
                root=_local_path(root, base_dir) if root else None,
                ssh=ssh,
                service=service,
                instances=tuple(instances),
                groups=member_of,
                doc_path=hpath,
            )
        )
    return Inventory(
        path=file,
        sha256=sha256,
        openclaw=openclaw,
        dedupe=dedupe,
        hosts=tuple(hosts),
        groups=group_members,
        spans=spans,
        raw=data,
        forks=data.get("forks"),
    )


def jump_hops(value: Any) -> tuple[str, ...]:
    """proxy_jump as hops, first first: "b1,b2" and [b1, b2] alike; "none" (OpenSSH's word) is no bastion."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    hops = tuple(i.strip() for i in items)
    return () if hops == ("none",) else hops


def _local_path(p: str | None, base_dir: str) -> str | None:
    if p is None:
        return None
    p = os.path.expanduser(p)
    return p if os.path.isabs(p) else os.path.normpath(os.path.join(base_dir, p))


def _instance(
    host: str,
    name: str,
    m: dict[str, Any],
    prov: Provenance,
    ipath: DocPath,
    service: ServiceSettings,
    dedupe_defined: bool,
    base_dir: str = ".",
) -> Instance:
    profile = str(m.get("profile", name))
    home = service.home
    state_dir = normalise_path(m.get("state_dir") or f"~/.openclaw{profile_suffix(profile)}", home)
    config_path = normalise_path(m.get("config_path") or f"{state_dir}/openclaw.json", home)
    workspace = normalise_path(m.get("workspace") or f"{state_dir}/workspace", home)
    env_file = normalise_path(m.get("env_file") or f"{state_dir}/gateway.env", home)
    health = m.get("health") or {}
    return Instance(
        host=host,
        name=name,
        profile=profile,
        port=m.get("port"),
        bind=m["bind"],
        state_dir=state_dir,
        config_path=config_path,
        workspace=workspace,
        env_file=env_file,
        unit=m.get("unit") or f"openclaw-gateway{profile_suffix(profile)}.service",
        enabled=bool(m.get("enabled", True)),
        config=m.get("config") or {},
        env={k: _env_str(v) for k, v in (m.get("env") or {}).items()},
        secrets={k: SecretRef(**v) for k, v in (m.get("secrets") or {}).items()},
        health_path=health.get("path", "/readyz"),
        health_timeout=float(health.get("timeout", 120.0)),
        health_channels=str(health.get("channels", "probe")),
        health_settle=float(health["settle"]) if "settle" in health else None,
        stop_timeout=int(m.get("stop_timeout", DEFAULT_STOP_TIMEOUT)),
        dedupe=bool(m.get("dedupe", dedupe_defined)),
        documents=_documents(m.get("documents") or {}, base_dir),
        plugins=_plugins(m.get("plugins") or {}),
        service=service,
        doc_path=ipath,
        provenance=prov,
    )


def _documents(raw: dict[str, Any], base_dir: str) -> tuple[DocumentEntry, ...]:
    """The merged `documents:` mapping as entries; null drops what a lower layer set. A string is a source."""
    out = []
    for target, v in sorted(raw.items()):
        if v is None:
            continue
        spec = {"source": v} if isinstance(v, str) else v
        out.append(DocumentEntry(target, _local_path(spec["source"], base_dir) or "", spec.get("mode", "enforce"),
                                 int(spec.get("file_mode", "0644"), 8)))
    return tuple(out)


def default_plugin_id(package: str) -> str:
    """`@openclaw/slack` -> `slack`, `@openclaw/brave-plugin` -> `brave`: the id official plugins use."""
    name = package.rsplit("/", 1)[-1]
    return name.removeprefix("openclaw-").removesuffix("-plugin")


def _plugins(raw: dict[str, Any]) -> tuple[PluginSpec, ...]:
    """The merged `plugins:` mapping (package -> version, or {version, id, config}); null drops one."""
    out = []
    for package, v in sorted(raw.items()):
        if v is None:
            continue
        spec: dict[str, Any] = {"version": v} if isinstance(v, str) else v
        out.append(PluginSpec(package, str(spec["version"]), spec.get("id") or default_plugin_id(package),
                              spec.get("config")))
    return tuple(out)


def _env_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
