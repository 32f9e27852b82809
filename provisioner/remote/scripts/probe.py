"""One batched fact probe per host: a POSIX sh script in, line records out, parsed into an ObservedHost.

Every path travels inside a quoted shell word built by `q`; records refer to paths by index so that no
path ever needs escaping on the way back.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from provisioner.core.observed import EntryKind, Listener, ObservedFile, ObservedHost, ObservedService
from provisioner.remote.command import q
from provisioner.remote.scripts.plugins import parse_plugin_line, plugins_probe_lines
from provisioner.remote.scripts.shell import sh_script
from provisioner.remote.scripts.trust import HELPERS, as_user, root_output, user_output

CONTENT_LIMIT = 1 << 20  # files up to 1 MiB come back whole, for diffs; bigger ones by hash only
STATE_DIR = "/var/lib/openclaw-provisioner"
LOCK_PATH = f"{STATE_DIR}/lock"
PREV_DIR = f"{STATE_DIR}/prev"
PENDING_DIR = f"{STATE_DIR}/pending"  # one empty file per unit whose new files are not yet running
# what the last apply wrote, a line per file: "<digest key id> <keyed digest> <path>" (writes.record_lines)
APPLIED_PATH = f"{STATE_DIR}/applied"
VERSION_CACHE = f"{STATE_DIR}/openclaw-version"
# the holder line of the lock, as a shell expression (capped, newline dropped): what HELD and L records carry
LOCK_TEXT = f"$(head -c 400 \"$R\"{q(LOCK_PATH)} | tr -d '\\n')"
UNIT_MARKER = "X-OpenclawProvisioner-Instance="


@dataclass(frozen=True)
class ProbeRequest:
    files: Sequence[str] = ()
    dirs: Sequence[str] = ()
    users: Sequence[str] = ()
    units: Sequence[str] = ()  # system units whose state we want
    unit_dirs: Sequence[str] = ("/etc/systemd/system",)  # searched for units carrying our marker
    systemd: bool = True
    version_command: Sequence[str] = field(default_factory=tuple)
    listeners: bool = False
    release_prefix: str | None = None  # where pinned releases live (openclaw.install.prefix)
    # the service user (user, group) and the paths of `files`/`dirs` inside its tree: probed as that user only
    user: tuple[str, str] | None = None
    user_paths: frozenset[str] = frozenset()
    plugin_dirs: Sequence[str] = ()  # pinned plugins' directories: `G <index> <stamp>` for each in place


def _version_lines(command: Sequence[str], root: str, user: tuple[str, str] | None) -> list[str]:
    """Report the OpenClaw version; `--version` starts node (about a second), so its answer is cached on the
    host, keyed by the resolved program's inode, mtime and size, and asked again only when that changes. The
    program is run as the service user (or nobody, before that user exists), never as root: it may be an
    install the service user can write to."""
    exe = q(command[0])
    full = " ".join(q(a) for a in command)
    who, group = user or ("nobody", "nogroup")
    # every OpenClaw call the tool makes runs with the managed-config switch (README, "Read-only config and auth")
    ask = as_user(who, group, [f"OPENCLAW_CONFIG_READONLY=1 {full} --version 2>/dev/null </dev/null | head -n1 "
                               "| tr -d '\\r' || true"], root,
                  then="2>/dev/null || true")
    return [
        *_ask_version(ask, who, group),
    ] + [
        # no fork at all where OpenClaw is not installed; builtins where it is, but readlink and stat
        f'ocx=; if command -v {exe} >/dev/null 2>&1; then '
        f'ocx=$(readlink -f "$(command -v {exe})" 2>/dev/null || true); fi',
        'if [ -n "$ocx" ] && [ -z "$R" ]; then',
        '  key="$ocx $(stat -L -c \'%i:%Y:%s\' -- "$ocx")"',
        f'  cached=; read -r cached 2>/dev/null < {q(VERSION_CACHE)} || true',
        '  if [ "${cached%|*}" = "$key" ]; then ver=${cached##*|}; else',
        '    ver=$(ocp_ask_version | head -n1); ver=${ver#"~ "}',
        f'    if [ -n "$ver" ] && [ -w {q(STATE_DIR)} ]; then',
        f'      printf \'%s|%s\\n\' "$key" "$ver" > {q(VERSION_CACHE)}; fi',
        "  fi",
        '  echo "V ${ver:-}"',
        "else echo 'V'; fi",
    ]


def _stat_lines(paths: Sequence[str], files: Sequence[str]) -> list[str]:
    """One `stat` (of the entries themselves: links are not followed) and one `sha256sum` of the regular files
    among them. The type is tested just before, so that nothing ever opens a FIFO or follows a link; a path
    swapped in between can only stall a user-side probe, which `ocp_as` bounds in time."""
    out = []
    if paths:
        out.append("set --" + "".join(f' "$R"{q(p)}' for p in paths))
        out.append("echo STAT; stat -c '%F|%a|%U|%G|%s|%n' -- \"$@\" 2>/dev/null; echo STAT.")
    if files:
        out.append("set --" + "".join(f' "$R"{q(p)}' for p in files))
        out.append('n=$#; for f do [ -f "$f" ] && [ ! -L "$f" ] && set -- "$@" "$f"; done; shift "$n"')
        out.append('echo SHA; [ $# -eq 0 ] || sha256sum -- "$@" 2>/dev/null; echo SHA.')
    return out


def probe_script(req: ProbeRequest, root: str = "") -> str:
    """The sh script; `root` prefixes every path (a directory standing for a host's /, for local runs)."""
    # one `stat` and one `sha256sum` for all paths: forks, not bytes, are what a probe of many files costs
    mine = req.user_paths if req.user else frozenset()
    lines = [f"R={q(root)}", *([HELPERS] if mine or req.version_command else [])]
    lines += _stat_lines([p for p in (*req.files, *req.dirs) if p not in mine], [p for p in req.files if p not in mine])
    # whether each user exists, looked up once (a local-root stand-in host has no users of its own: report them
    # present so nothing is created)
    for i, user in enumerate(req.users):
        lines.append(f'if [ -n "$R" ] || getent passwd {q(user)} >/dev/null; then ocp_u{i}=1; else ocp_u{i}=0; fi; '
                     f'echo "U {i} $ocp_u{i}"')
    if req.user and mine:
        user, group = req.user
        sub = ["set +e", *_stat_lines([p for p in (*req.files, *req.dirs) if p in mine],
                                       [p for p in req.files if p in mine])]
        known = (f'[ "$ocp_u{list(req.users).index(user)}" = 1 ]' if user in req.users
                 else f'{{ [ -n "$R" ] || getent passwd {q(user)} >/dev/null; }}')
        lines.append(f"if {known}; then")
        lines += as_user(user, group, sub, root, then='|| echo "UFAIL $?"')
        lines.append("fi")
    if req.systemd and not root:
        # units we manage but no longer want are asked about in the same systemctl call as the wanted ones
        lines.append("set --" + "".join(f" {q(u)}" for u in req.units))
        # one grep over every unit file (a grep per file cost a fork each); the here-document keeps the loop in
        # this shell, so that its `set --` reaches the systemctl call below
        globs = " ".join(f"{q(d)}/*.service" for d in req.unit_dirs)
        lines += ['while IFS= read -r f; do [ -f "$f" ] || continue; u=${f##*/}; echo "M $u"; '
                  'case $u in *[!A-Za-z0-9:_.@-]*) ;; *) set -- "$@" "$u" ;; esac; done <<OCP_UNITS',
                  f"$(grep -l -D skip -- {q('^' + UNIT_MARKER)} {globs} 2>/dev/null)",
                  "OCP_UNITS"]
        lines.append('if [ $# -gt 0 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then echo S; '
                     'systemctl show -p Id,LoadState,ActiveState,UnitFileState,InvocationID -- "$@" '
                     "2>/dev/null || true; echo S.; fi")
        lines.append(f'for f in {q(PENDING_DIR)}/*.service; do [ -f "$f" ] && echo "R ${{f##*/}}"; done')
    lines.append(f'if [ -f "$R"{q(LOCK_PATH)} ]; then echo "L {LOCK_TEXT}"; fi')
    lines.append(f'if [ -f "$R"{q(APPLIED_PATH)} ]; then while IFS= read -r l; do echo "A $l"; done '
                 f'< "$R"{q(APPLIED_PATH)}; fi')
    if req.version_command:
        lines += _version_lines(req.version_command, root, req.user)
    if req.release_prefix and not root:
        from provisioner.remote.scripts.release import releases_probe_lines

        lines += releases_probe_lines(req.release_prefix)
    lines += plugins_probe_lines(req.plugin_dirs) if not root else []
    if req.listeners and not root:
        # who listens where: a port of an instance already taken by something else is found before apply
        # one fork (ss) whatever the number of listeners: pid, unit and command are read with builtins
        lines.append("if command -v ss >/dev/null; then ss -ltnpH 2>/dev/null | while read -r _ _ _ local _ users; do "
                     'port=${local##*:}; pid=; unit=; comm=; '
                     'case $users in *pid=*) pid=${users##*pid=}; pid=${pid%%[!0-9]*} ;; esac; '
                     'if [ -n "$pid" ]; then '
                     # a process gone since ss listed it (a gateway restarting) no longer holds its port
                     'while IFS= read -r l; do case $l in */*.service) unit=${l##*/}; break ;; esac; done '
                     '2>/dev/null < /proc/$pid/cgroup || continue; read -r comm 2>/dev/null < /proc/$pid/comm; fi; '
                     'echo "P $port ${pid:--} ${unit:--} ${comm:--}"; done; fi')
    lines.append("echo END")
    # `set +e`, not just no -e: the probe may run after the lock script in the same shell (lock_then)
    return sh_script(lines, errexit=False)


def _sections(lines: list[str], stat_lines: list[str], sha_lines: list[str]) -> None:
    """The STAT and SHA sections of what a user-side probe printed: the only records taken from it."""
    section: list[str] | None = None
    for line in lines:
        if section is None and line in ("STAT", "SHA"):
            section, end = (stat_lines if line == "STAT" else sha_lines), line + "."
        elif section is not None and line == end:
            section = None
        elif section is not None:
            section.append(line)


def _ask_version(ask: list[str], who: str, group: str) -> list[str]:
    # a function, so that the here-document of `ocp_as` can sit inside the command substitution that reads it;
    # only called when the cached answer is stale, so the look-up of the user costs nothing on other probes
    first = ask[0].replace(f"ocp_as {q(who)} {q(group)} ", 'ocp_as "$ocp_who" "$ocp_grp" ', 1)
    return ["ocp_ask_version() {",
            f"if id -u {q(who)} >/dev/null 2>&1; then ocp_who={q(who)}; ocp_grp={q(group)}; "
            "else ocp_who=65534; ocp_grp=65534; fi",
            first, *ask[1:], "}"]


class ProbeParseError(Exception):
    pass


_SHA_ESCAPES = re.compile(r"\\(.)", re.S)


def _unescape_sha_name(name: str) -> str:
    # sha256sum escapes a name holding a backslash or newline (\\ and \n; coreutils 9 also \r) and marks the line
    # with a leading backslash; decoded left to right, so that a backslash followed by "n" stays itself
    return _SHA_ESCAPES.sub(lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), name)


def _files_and_dirs(req: ProbeRequest, root: str, stat_lines: list[str], sha_lines: list[str],
                    files: dict[str, ObservedFile], dirs: dict[str, ObservedFile]) -> None:
    stats: dict[str, list[str]] = {}
    for line in stat_lines:
        parts = line.split("|", 5)
        if len(parts) == 6:
            stats[parts[5][len(root):]] = parts[:5]
    shas: dict[str, str] = {}
    for line in sha_lines:
        escaped = line.startswith("\\")
        digest, _, name = line.lstrip("\\").partition("  ")
        shas[(_unescape_sha_name(name) if escaped else name)[len(root):]] = digest
    for paths, out in ((req.files, files), (req.dirs, dirs)):
        for path in paths:
            st = stats.get(path)
            if st is None:
                out[path] = ObservedFile(path, False)
                continue
            kind = ObservedFile.kind_of(st[0])
            out[path] = ObservedFile(path, True, shas.get(path) if kind is EntryKind.FILE else None, int(st[1], 8),
                                     st[2], st[3], found=st[0], kind=kind)


def contents_script(paths: Sequence[str], root: str = "", user: tuple[str, str] | None = None,
                    user_paths: frozenset[str] = frozenset()) -> str:
    """The contents of files (for diffs), base64, as `C <index>` records; big files are left out. Files in the
    service user's tree are read as that user, never as root, and never more than the limit whatever happens."""
    def read(i: int, path: str) -> str:
        p = f'"$R"{q(path)}'
        return (f'if [ -f {p} ] && [ ! -L {p} ] && [ "$(stat -c %s -- {p})" -le {CONTENT_LIMIT} ]; then '
                f'echo "C {i}"; head -c {CONTENT_LIMIT} -- {p} | base64 -w0; echo; fi')

    mine = user_paths if user else frozenset()
    lines = [f"R={q(root)}", *(read(i, p) for i, p in enumerate(paths) if p not in mine)]
    if user and mine:
        lines += [HELPERS, *as_user(*user, [read(i, p) for i, p in enumerate(paths) if p in mine], root,
                                    then="|| true")]
    lines.append("echo END")
    return sh_script(lines, errexit=False)


def parse_contents(paths: Sequence[str], out: str, user_paths: frozenset[str] = frozenset()) -> dict[str, bytes]:
    got: dict[str, bytes] = {}
    sources = ((root_output(out), lambda p: p not in user_paths), (user_output(out), user_paths.__contains__))
    for text, allowed in sources:
        lines = text.split("\n")
        for n, line in enumerate(lines):
            if line.startswith("C ") and n + 1 < len(lines) and line[2:].isdigit() and int(line[2:]) < len(paths):
                path = paths[int(line[2:])]
                if allowed(path):
                    try:
                        got[path] = base64.b64decode(lines[n + 1], validate=True)
                    except ValueError:
                        continue
    return got


def parse_probe(host: str, req: ProbeRequest, out: str, root: str = "") -> ObservedHost:
    files: dict[str, ObservedFile] = {}
    dirs: dict[str, ObservedFile] = {}
    users: dict[str, bool] = {}
    services: dict[str, ObservedService] = {}
    managed: list[str] = []
    pending: list[str] = []
    applied: dict[str, tuple[str, str]] = {}
    lock = None
    version = None
    listeners: list[Listener] = []
    stat_lines: list[str] = []
    sha_lines: list[str] = []
    releases: dict[str, str] = {}
    plugins: dict[str, str] = {}
    current_release: str | None = None
    _sections(user_output(out).split("\n"), stat_lines, sha_lines)
    lines = root_output(out).split("\n")
    it = iter(range(len(lines)))
    ended = False
    for n in it:
        line = lines[n]
        if not line:
            continue
        if line in ("STAT", "SHA"):
            section = stat_lines if line == "STAT" else sha_lines
            for m in it:
                if lines[m] == line + ".":
                    break
                section.append(lines[m])
            continue
        kind, _, rest = line.partition(" ")
        if kind == "U":
            idx, _, present = rest.partition(" ")
            users[req.users[int(idx)]] = present == "1"
        elif kind == "M":
            managed.append(rest)
        elif kind == "R":
            pending.append(rest)
        elif kind == "A" and len(rest) > 86:  # the fixed-width key id and digest, then the path
            applied[rest[86:]] = (rest[:8], rest[9:85])
        elif kind == "S":
            block: dict[str, str] = {}
            for m in it:
                sline = lines[m]
                if sline == "S.":
                    break
                if not sline:
                    _add_service(services, block)
                    block = {}
                    continue
                k, _, v = sline.partition("=")
                block[k] = v
            _add_service(services, block)
        elif kind == "L":
            lock = rest
        elif kind == "V":
            version = _version(rest)
        elif kind == "I":
            name, _, stamp = rest.partition(" ")
            releases[name] = stamp
        elif kind == "IC":
            current_release = rest.strip() or None
        elif kind == "G":
            parse_plugin_line(req.plugin_dirs, rest, plugins)
        elif kind == "P":
            port, pid, unit, comm = (rest.split(" ", 3) + ["-", "-", "-"])[:4]
            if port.isdigit():
                listeners.append(Listener(int(port), None if pid == "-" else int(pid),
                                          None if unit == "-" else unit, comm))
        elif kind == "UFAIL":
            user = req.user[0] if req.user else "the service user"
            raise ProbeParseError(f"{host}: probing the files in {user}'s tree, as {user}, failed (exit {rest.strip()}"
                                  + (", timed out: a FIFO or a huge file there?" if rest.strip() == "124" else "")
                                  + ")")
        elif kind == "END":
            ended = True
    if not ended:
        raise ProbeParseError(f"{host}: the fact probe did not finish")
    if stat_lines or req.files or req.dirs:
        _files_and_dirs(req, root, stat_lines, sha_lines, files, dirs)
    return ObservedHost(host, files=files, dirs=dirs, services=services, managed_units=tuple(sorted(managed)),
                        users=users, openclaw_version=version, lock_holder=lock, listeners=tuple(listeners),
                        releases=releases, current_release=current_release, pending_restart=tuple(sorted(pending)),
                        applied=applied, plugins=plugins)


def _add_service(services: dict[str, ObservedService], block: dict[str, str]) -> None:
    if "Id" not in block:
        return
    unit = block["Id"]
    services[unit] = ObservedService(
        unit=unit,
        load_state=block.get("LoadState", "not-found"),
        active_state=block.get("ActiveState", "inactive"),
        enabled=block.get("UnitFileState", "") or "disabled",
        invocation_id=block.get("InvocationID", ""),
    )


def _version(text: str) -> str | None:
    m = re.search(r"\d+\.\d+\.\d+(?:[-.][0-9A-Za-z.]+)?", text)
    return m.group(0) if m else None
