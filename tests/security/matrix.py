"""The hostile-value matrix: hostile values, every field they are put in, the inventories that hold them (one pair
a line, so that an error's location names the pair), and what each gateway must then have been given on a host."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json5

from tests.lab.hosts import LabHost
from tests.security.support import (
    TAG,
    VERSION,
    WRAP_PATH,
    host_facts,
    lab_ssh,
    located_errors,
    marker,
    record_key,
    tail,
)
from tests.support.cli import Provision

SECRET_SOURCE = ("OCS_SECRET_SOURCE", f"env-secret-{TAG}")  # controller env var a `secrets: {X: {env: ...}}` reads


# ---- hostile values --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Hostile:
    name: str
    value: str


def hostile_values() -> list[Hostile]:
    m = marker
    base = [
        Hostile("space", "sp ace"),
        Hostile("single-quote", "it's"),
        Hostile("double-quote", 'say "hi"'),
        Hostile("semicolon", f"a;touch {m('semi')};b"),
        Hostile("command-substitution", f"$(touch {m('subst')})"),
        Hostile("backticks", f"`touch {m('tick')}`"),
        Hostile("unicode", "ünïcødé ☃ 日本 🦀"),
        Hostile("and-or", f"x && touch {m('andor')} || touch {m('andor')}"),
        Hostile("pipe", f"x|touch {m('pipe')} #"),
        Hostile("single-quote-breakout", f"'; touch {m('sqb')}; '"),
        Hostile("double-quote-breakout", '"; touch ' + m("dqb") + '; "'),
        Hostile("expansions", "%n %i %% ${HOME} $HOME $$ ~"),
        Hostile("backslashes", "back\\slash \\n \\x41 \\$(touch " + m("bs") + ")"),
        Hostile("leading-space", " lead"),
        Hostile("glob", "*?[ab]{c,d}"),
        Hostile("hash", "#not=a comment"),
        Hostile("option-like", "-rf"),
        Hostile("trailing-space", "trail "),
        Hostile("trailing-backslash", "end\\"),
    ]
    combined = Hostile("combined", (f"it's \"q\" ;touch {m('c1')}; $(touch {m('c2')}) `touch {m('c3')}` && | "
                                    "ünï☃日本🦀 %n %% ${HOME} $$ \\x41 \\ *?[a]{b,c} #h=v ~ -rf"))
    return [*base, combined,
            Hostile("absolute-payload", f"$(touch /tmp/{m('abs')})"),
            Hostile("newline", f"x\ntouch {m('nl')}\n#"),
            Hostile("tab", f"x\ttouch {m('tab')}")]


Pair = tuple[str, int]  # (field, index of the hostile value)


def y(s: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is a subset of it)."""
    return json.dumps(s, ensure_ascii=False)


@dataclass
class Doc:
    """YAML written line by line; remembers which (field, value) pair each line holds."""

    lines: list[str] = field(default_factory=list)
    where: dict[int, Pair] = field(default_factory=dict)

    def add(self, indent: int, text: str, pair: Pair | None = None) -> None:
        self.lines.append(" " * indent + text)
        if pair is not None:
            self.where[len(self.lines)] = pair

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


@dataclass
class Layout:
    """Where each field puts a hostile value. Directory fields (state_dir, workspace, service.home) only get
    values without '/': a '/' makes a nested path, and the tool creates the missing parents of a state dir as
    root with mode 0700, which the gateway cannot enter (a separate finding, not what is tested here)."""

    ctl: Path  # controller-side files (secret files, identity files, known_hosts) live under here
    values: list[Hostile]

    @staticmethod
    def state_dir(v: str) -> str:
        return "~/" + v

    @staticmethod
    def workspace(v: str) -> str:
        return "~/" + v + "/" + v

    @staticmethod
    def config_path(v: str) -> str:
        return "/srv/ocs-cfg/" + v

    @staticmethod
    def env_file(v: str) -> str:
        return "/srv/ocs-env/" + v

    @staticmethod
    def home(v: str) -> str:
        return "/home/" + v

    def secret_file(self, v: str) -> Path:
        return self.ctl / "secret" / v

    def identity_file(self, v: str) -> Path:
        return self.ctl / "id" / v

    def known_hosts(self, v: str) -> Path:
        return self.ctl / "kh" / v

    @staticmethod
    def secret_value(k: int) -> str:
        return f"file-secret-{TAG}-{k}"

    def create_controller_files(self, host: LabHost) -> None:
        for k, h in enumerate(self.values):
            for path, data, mode in ((self.secret_file(h.value), self.secret_value(k) + "\n", 0o600),
                                     (self.identity_file(h.value), host.key_path.read_text(), 0o600),
                                     (self.known_hosts(h.value), host.known_hosts_line, 0o644)):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(data)
                path.chmod(mode)


DIR_FIELDS = ("state_dir", "workspace", "service.home")

def unit_setting_edge(path: str) -> bool:
    """A path WorkingDirectory= or EnvironmentFile= would not read as written: systemd strips trailing whitespace
    and joins a line ending in a backslash with the next one."""
    return path != path.rstrip() or path.endswith("\\")


def env_file_edge(path: str) -> bool:
    """EnvironmentFile= also takes its path as a wildcard pattern (glob(3): `*`, `?`, `[`, and `\\` escapes)."""
    return unit_setting_edge(path) or any(c in path for c in "*?[\\")


def instance_fields(lay: Layout, v: str, *, health: bool) -> list[tuple[str, dict[str, Any]]]:
    """(field, the instance keys that put `v` there) for every instance-level field."""
    items: list[tuple[str, dict[str, Any]]] = [
        ("state_dir", {"state_dir": lay.state_dir(v)}),
        ("workspace", {"workspace": lay.workspace(v)}),
        ("config_path", {"config_path": lay.config_path(v)}),
        ("env_file", {"env_file": lay.env_file(v)}),
        ("env", {"env": {"OCS_HOSTILE": v}}),
        ("config", {"config": {"messages": {"responsePrefix": v}, "agents": {"defaults": {"params": {v: v}}}}}),
        ("secret-file", {"secrets": {"OCS_SECRET_FILE": {"file": str(lay.secret_file(v))}}}),
    ]
    if health:
        items.append(("health.path", {"health": {"path": "/" + v, "timeout": 30}}))
    return [(f, frag) for f, frag in items if not (f in DIR_FIELDS and "/" in v)]


def matrix_doc(lay: Layout, inc: Callable[[Pair], bool]) -> Doc:
    """Every field that ends up in a path, a unit file or a shell script on a host (or in a path on the
    controller), with every hostile value, each pair on its own line."""
    d = Doc()
    d.add(0, "version: 1")
    d.add(0, "openclaw:")
    d.add(2, f"version: {y(VERSION)}")
    d.add(2, "command:")
    d.add(4, f"- {y(WRAP_PATH)}")
    for k, h in enumerate(lay.values):
        if inc(("command-arg", k)):
            d.add(4, f"- {y(h.value)}", ("command-arg", k))
    d.add(0, "defaults:")
    d.add(2, "service: {manager: systemd, user: openclaw}")
    d.add(0, "hosts:")
    d.add(2, "gw:")
    d.add(4, 'address: "192.0.2.10"')
    d.add(4, "instances:")
    for k, h in enumerate(lay.values):
        d.add(6, f"c{k:02d}:")
        d.add(8, f"port: {20000 + 150 * k}")
        for fld, frag in instance_fields(lay, h.value, health=True):
            if inc((fld, k)):
                for key, val in frag.items():
                    d.add(8, f"{key}: {json.dumps(val, ensure_ascii=False)}", (fld, k))
    for k, h in enumerate(lay.values):
        if inc(("instance-name", k)):
            d.add(6, f"{y(h.value)}: {{port: {26000 + 150 * k}}}", ("instance-name", k))
        if inc(("profile", k)):
            d.add(6, f"p{k:02d}: {{port: {30000 + 150 * k}, profile: {y(h.value)}}}", ("profile", k))
        if inc(("unit", k)):
            d.add(6, f"u{k:02d}: {{port: {34000 + 150 * k}, unit: {y(h.value + '.service')}}}", ("unit", k))
        if inc(("env-name", k)):
            d.add(6, f"n{k:02d}: {{port: {38000 + 150 * k}, env: {{{y(h.value)}: x}}}}", ("env-name", k))
        if inc(("secret-name", k)):
            d.add(6, f"s{k:02d}: {{port: {42000 + 150 * k}, secrets: {{{y(h.value)}: {{env: {SECRET_SOURCE[0]}}}}}}}",
                  ("secret-name", k))
    for k, h in enumerate(lay.values):
        v = h.value
        d.add(2, f"k{k:02d}:")
        if inc(("address", k)):
            d.add(4, f"address: {y(v)}", ("address", k))
        else:
            d.add(4, f'address: "192.0.2.{11 + k}"')
        svc = [(f, t) for f, t in (("service.home", f"home: {y(lay.home(v))}"), ("service.user", f"user: {y(v)}"),
                                   ("service.group", f"group: {y(v)}"))
               if inc((f, k)) and not (f in DIR_FIELDS and "/" in v)]
        if svc:
            d.add(4, "service:")
            for f, t in svc:
                d.add(6, t, (f, k))
        ssh = [(f, t) for f, t in (("ssh.identity_file", f"identity_file: {y(str(lay.identity_file(v)))}"),
                                   ("ssh.known_hosts", f"known_hosts: {y(str(lay.known_hosts(v)))}")) if inc((f, k))]
        if ssh:
            d.add(4, "ssh:")
            for f, t in ssh:
                d.add(6, t, (f, k))
        d.add(4, "instances: {main: {port: 18789}}")
        if inc(("host-name", k)):
            d.add(2, f"{y(v)}:", ("host-name", k))
            d.add(4, f'address: "198.51.100.{11 + k}"')
            d.add(4, "instances: {main: {port: 18789}}")
    return d


def classify(cli: Provision, tmp_path: Path, build: Callable[[Callable[[Pair], bool]], Doc]
             ) -> tuple[dict[Pair, list[str]], set[Pair]]:
    """Validate, drop the pairs an error points at, validate again, until the rest is valid. Every error must be
    located (file:line:col) on the line of one hostile value."""
    rejected: dict[Pair, list[str]] = {}
    for attempt in range(6):
        doc = build(lambda p: p not in rejected)
        path = tmp_path / f"matrix-{attempt}.yaml"
        path.write_text(doc.text(), encoding="utf-8")
        r = cli("validate", str(path))
        errors = located_errors(r, str(path))
        if not errors:
            assert r.returncode == 0, tail(r)
            return rejected, set(doc.where.values())
        assert r.returncode == 1, tail(r)
        for line, col, msg in errors:
            assert line in doc.where, (f"error not at a hostile value: {path}:{line}:{col}: {msg}\n"
                                       f"  that line: {doc.lines[line - 1] if line <= len(doc.lines) else '?'}")
            rejected.setdefault(doc.where[line], []).append(msg)
    raise AssertionError("validate kept finding new errors")


def apply_doc(host: LabHost, lay: Layout, ok: Callable[[Pair], bool], ci: int) -> tuple[dict[str, Any], list[str]]:
    """One host, one instance per hostile value holding every field that value was accepted in; and what was left
    out for test_paths_systemd_reads_differently_are_refused_or_still_work."""
    moved: list[str] = []
    vals = lay.values
    combined = vals[ci].value
    ssh = lab_ssh(host)
    if ok(("ssh.identity_file", ci)):
        ssh["identity_file"] = str(lay.identity_file(combined))
    if ok(("ssh.known_hosts", ci)):
        ssh["known_hosts"] = str(lay.known_hosts(combined))
    service: dict[str, Any] = {"manager": "systemd", "user": "openclaw"}
    if ok(("service.home", ci)):
        service["home"] = lay.home(combined)
    instances: dict[str, Any] = {"main": {"port": 18789}}
    for k, h in enumerate(vals):
        inst: dict[str, Any] = {"port": 20000 + 150 * k}
        for fld, frag in instance_fields(lay, h.value, health=False):
            if ok((fld, k)):
                inst.update(frag)
        # what systemd reads differently is tried in test_paths_systemd_reads_differently_...: keep it out of here
        if unit_setting_edge(inst.get("state_dir", "")):
            moved.append(f"state_dir {inst.pop('state_dir')!r}")
        state_dir = expand(inst.get("state_dir", f"~/.openclaw-c{k:02d}"), service.get("home", "/home/openclaw"))
        env_file = inst.get("env_file", f"{state_dir}/gateway.env")
        if env_file_edge(env_file):
            moved.append(f"env file {env_file!r}")
            inst["env_file"] = f"/srv/ocs-env/plain-c{k:02d}"
        instances[f"c{k:02d}"] = inst
        if ok(("instance-name", k)):
            instances[h.value] = {"port": 26000 + 150 * k}
        if ok(("profile", k)):
            instances[f"p{k:02d}"] = {"port": 30000 + 150 * k, "profile": h.value}
        if ok(("unit", k)):
            instances[f"u{k:02d}"] = {"port": 34000 + 150 * k, "unit": h.value + ".service"}
        if ok(("env-name", k)):
            instances[f"n{k:02d}"] = {"port": 38000 + 150 * k, "env": {h.value: "x"}}
        if ok(("secret-name", k)):
            instances[f"s{k:02d}"] = {"port": 42000 + 150 * k, "secrets": {h.value: {"env": SECRET_SOURCE[0]}}}
    args = [h.value for k, h in enumerate(vals) if ok(("command-arg", k))]
    return {"version": 1, "openclaw": {"version": VERSION, "command": [WRAP_PATH, *args]},
            "defaults": {"ssh": ssh, "service": service, "instance": {"health": {"timeout": 60}}},
            "hosts": {"gw": {"address": host.address, "instances": instances}}}, moved


@dataclass
class Expect:
    """What one gateway instance must have been given on the host."""

    profile: str
    unit: str
    state_dir: str
    workspace: str
    config_path: str
    env_file: str
    env: dict[str, str]
    config_value: str | None


def expand(path: str, home: str) -> str:
    return home + path[1:] if path.startswith("~/") else path


def expectations(doc: dict[str, Any]) -> list[Expect]:
    home = doc["defaults"]["service"].get("home", "/home/openclaw")
    out = []
    for name, inst in doc["hosts"]["gw"]["instances"].items():
        profile = inst.get("profile", name)
        sd = expand(inst.get("state_dir", f"~/.openclaw-{profile}"), home)
        env = {"OPENCLAW_STATE_DIR": sd, "HOME": home, **inst.get("env", {})}
        for var, ref in inst.get("secrets", {}).items():
            env[var] = Path(ref["file"]).read_text().rstrip("\r\n") if "file" in ref else SECRET_SOURCE[1]
        cfg = inst.get("config_path", f"{sd}/openclaw.json")
        env["OPENCLAW_CONFIG_PATH"] = cfg
        out.append(Expect(profile, inst.get("unit", f"openclaw-gateway-{profile}.service"), sd,
                          expand(inst.get("workspace", f"{sd}/workspace"), home), cfg,
                          inst.get("env_file", f"{sd}/gateway.env"), env,
                          inst["config"]["messages"]["responsePrefix"] if "config" in inst else None))
    return out


def check_delivered(host: LabHost, exp: list[Expect], args: list[str]) -> list[str]:
    """Each path exists under its exact name, each value arrived byte for byte, where the gateway reads it."""
    paths = [p for e in exp for p in (e.state_dir, e.workspace, e.config_path, e.env_file,
                                      f"/etc/systemd/system/{e.unit}")]
    facts = host_facts(host, paths)
    missing = [p for p in paths if facts["stat"][p] is None]
    assert missing == [], f"not on the host under their exact names: {missing}"
    problems: list[str] = []
    for e in exp:
        for p, kind, mode in ((e.state_dir, "dir", 0o700), (e.workspace, "dir", 0o700), (e.config_path, "file", 0o600),
                              (e.env_file, "file", 0o600)):
            st = facts["stat"][p]
            if st != [kind, mode, "openclaw"]:
                problems.append(f"{e.profile}: {p!r} is {st}, wanted {[kind, mode, 'openclaw']}")
        rec = facts["records"].get(record_key(e.profile))
        if rec is None:
            problems.append(f"{e.profile}: the gateway never started")
            continue
        if rec["extra"] != args:
            problems.append(f"{e.profile}: argv {rec['extra']!r} != {args!r}")
        if rec["cwd"] != e.state_dir:
            problems.append(f"{e.profile}: working directory {rec['cwd']!r} != {e.state_dir!r}")
        for var, want in e.env.items():
            if rec["env"].get(var) != want:
                problems.append(f"{e.profile}: ${var} = {rec['env'].get(var)!r}, wanted {want!r}")
        if e.config_value is not None:
            cfg = json5.loads(host.read_file(e.config_path).decode("utf-8"))
            if cfg["messages"]["responsePrefix"] != e.config_value or cfg["agents"]["defaults"]["params"] != {
                    e.config_value: e.config_value} or cfg["agents"]["defaults"]["workspace"] != e.workspace:
                problems.append(f"{e.profile}: config values differ: {cfg['messages']} {cfg['agents']}")
    return problems



def host_level_doc(host: LabHost, lay: Layout, k: int, accepted: set[Pair], *, prefix: bool) -> dict[str, Any]:
    """One hostile value on its own in every host-level field it was accepted in (the SSH identity file and
    known_hosts, the service home) and, with `prefix`, in the release prefix: what the big apply can only give
    one value (the combined one)."""
    v = lay.values[k].value
    ssh = lab_ssh(host)
    if ("ssh.identity_file", k) in accepted:
        ssh["identity_file"] = str(lay.identity_file(v))
    if ("ssh.known_hosts", k) in accepted:
        ssh["known_hosts"] = str(lay.known_hosts(v))
    service: dict[str, Any] = {"manager": "systemd", "user": "openclaw"}
    if ("service.home", k) in accepted:
        service["home"] = lay.home(v)
    oc: dict[str, Any] = {"version": VERSION, "command": [WRAP_PATH]}
    if prefix:
        oc["install"] = {"source": "push", "prefix": "/opt/ocs " + v}
    return {"version": 1, "openclaw": oc, "defaults": {"ssh": ssh, "service": service},
            "hosts": {"gw": {"address": host.address, "instances": {"main": {"port": 18789}}}}}


def check_host_level(cli: Provision, tmp_path: Path, host: LabHost, lay: Layout, k: int,
                     accepted: set[Pair]) -> list[str]:
    """`plan` with value k alone in the host-level fields: it logs in with that identity file and known_hosts,
    plans the gateway's files under that home, and probes the release under that prefix. A prefix validate
    refuses is refused on the prefix's own line."""
    name = lay.values[k].name
    inv = write_json_yaml(tmp_path / f"host-level-{k:02d}.yaml", host_level_doc(host, lay, k, accepted, prefix=True))
    r = cli("validate", inv)
    with_prefix = r.returncode == 0
    if not with_prefix:
        errors = located_errors(r, inv)
        lines = Path(inv).read_text(encoding="utf-8").splitlines()
        if not errors or any(not lines[line - 1].strip().startswith('"prefix":') for line, _, _ in errors):
            return [f"{name}: validate refused something else than the prefix, or without a location:\n{tail(r, 800)}"]
        inv = write_json_yaml(tmp_path / f"host-level-{k:02d}-np.yaml",
                              host_level_doc(host, lay, k, accepted, prefix=False))
    r = cli("plan", inv, "--json")
    if r.returncode != 0:
        return [f"{name}: plan with it in the host-level fields failed:\n{tail(r, 800)}"]
    targets = [c["target"] for h in json.loads(r.stdout)["hosts"] for c in h["changes"]]
    problems = []
    v = lay.values[k].value
    if with_prefix and f"/opt/ocs {v}/{VERSION}" not in targets:
        problems.append(f"{name}: the release is not planned under its prefix: {targets}")
    if ("service.home", k) in accepted and f"{lay.home(v)}/.openclaw-main/openclaw.json" not in targets:
        problems.append(f"{name}: the config is not planned under the home {lay.home(v)!r}: {targets}")
    return problems


def write_json_yaml(path: Path, doc: dict[str, Any]) -> str:
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")  # JSON is YAML, a key a line
    return str(path)
