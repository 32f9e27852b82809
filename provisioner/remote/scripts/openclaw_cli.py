"""Scripts that run the OpenClaw CLI on a host as an instance's own gateway would: its user, env and profile.

The CLI runs as the instance's service user from the start (`as_user`, see remote/scripts/trust.py): root never
executes, sources or follows anything that user can write. The instance's env file (`gateway.env`, writable
by that user) is read *as data*, by that user: a fixed awk program (ENV_AWK) takes at most ENV_READ_CAP bytes of
it, keeps only `NAME=VALUE` lines, decodes each value the way systemd's EnvironmentFile and our renderer
(`env_quote`) mean it, and prints `export NAME='value'` lines that the user-side shell evals. Nothing in the
file is ever run: `$(...)`, backticks and `;` are just bytes of a value. Secrets travel only in the
environment of the CLI, never in an argv.

Every CLI call is its own user-side sub-script, all of them started at once (node starts slowly); the root
part frames each one's output with `@@OCP <i> BEGIN` / `@@OCP <i> END` lines that only root prints, and
`split_outputs` keeps, inside a frame, only the lines the user side printed (prefixed by `ocp_as`), so what an
instance prints can never move a frame boundary or pass for another instance's output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from provisioner.inventory.model import Instance
from provisioner.remote.command import q
from provisioner.remote.scripts.shell import sh_script
from provisioner.remote.scripts.trust import HELPERS, as_user, user_output

ENV_READ_CAP = 1 << 20  # bytes of an env file the user-side parser reads at most
CLI_OUTPUT_CAP = 4 << 20  # bytes of one CLI call's output kept (`gateway status --json` is a few KiB)
_INDEX = re.compile(r"[0-9]{1,6}")

# The env file as data. POSIX awk (tested with mawk, gawk, gawk --posix, busybox awk and the one true awk), run
# with LC_ALL=C so lengths and ranges are bytes. Accepted: `NAME=VALUE` with NAME ^[A-Za-z_][A-Za-z0-9_]*$
# (leading blanks allowed; comments and everything else skipped). VALUE: "double quoted" (\\ \" \$ \` are
# escapes, any other backslash stays, a backslash at the end of a line joins the next one, a newline inside the
# quotes is part of the value; at most 1024 lines), 'single quoted' (literal, one line), or bare (trailing blanks
# cut, `\x` is x). Nothing may follow a closing quote but blanks. A variable longer than execve takes for one
# (128 KiB) is skipped. Output: one `export NAME='value'` per variable, a ' in it written '"'"'.
# Linear time whatever a line holds: escapes are decoded by gsub through placeholder control characters the
# line does not hold, and the backslashes put back by a divide-and-conquer join (no replacement string ever
# holds a backslash: awks disagree on what one means there).
ENV_AWK = r"""BEGIN { q = "\047"; bs = "\\"; st = 0; MAX = 131072 }
function emit(n, v) {
  if (length(n) + length(v) + 2 > MAX) return
  gsub(q, q "\"" q "\"" q, v)
  printf "export %s=%s%s%s\n", n, q, v, q
}
function ph(s,    i, c) {
  for (i = 1; i < 32; i++) {
    if (i == 9 || i == 10) continue
    c = sprintf("%c", i)
    if (!index(s, c)) return c
  }
  return ""
}
function join(p, lo, hi,    mid) {
  if (lo >= hi) return p[lo]
  mid = int((lo + hi) / 2)
  return join(p, lo, mid) bs join(p, mid + 1, hi)
}
function unph(s, a,    p, k) {
  k = split(s, p, a)
  return k ? join(p, 1, k) : ""
}
function dq(s,    a, b, i, tail, cont) {
  a = ph(s); b = ph(s a)
  if (length(s) > MAX || b == "" || ++lines > 1024) { st = 0; return }
  gsub(/\\\\/, a, s); gsub(/\\"/, b, s)
  i = index(s, "\"")
  if (i) { tail = substr(s, i + 1); s = substr(s, 1, i - 1) }
  cont = !i && s ~ /\\$/
  if (cont) s = substr(s, 1, length(s) - 1)
  gsub(/\\\$/, "$", s); gsub(/\\`/, "`", s); gsub(b, "\"", s)
  val = val unph(s, a)
  if (i) { st = 0; if (tail ~ /^[ \t]*$/) emit(name, val); return }
  if (!cont) val = val "\n"
  st = 1
}
st == 1 { dq($0); next }
{
  s = $0
  sub(/^[ \t]+/, "", s)
  if (length(s) > MAX || !match(s, /^[A-Za-z_][A-Za-z0-9_]*=/)) next
  name = substr(s, 1, RLENGTH - 1); s = substr(s, RLENGTH + 1); val = ""; lines = 0
  c = substr(s, 1, 1)
  if (c == "\"") dq(substr(s, 2))
  else if (c == q) {
    i = index(substr(s, 2), q)
    if (i && substr(s, i + 2) ~ /^[ \t]*$/) emit(name, substr(s, 2, i - 1))
  } else {
    sub(/[ \t]+$/, "", s)
    a = ph(s)
    if (a == "") next
    gsub(/\\\\/, a, s); gsub(/\\/, "", s)
    emit(name, unph(s, a))
  }
}
"""


NOBODY = ("nobody", "65534")  # who runs a user-side step on a host where the service user does not exist yet


def as_user_or_nobody(user: str, group: str, lines: Sequence[str], root: str = "", *, then: str = "") -> list[str]:
    """Like `as_user`, but as `nobody` when `user` does not exist on the host yet (a first apply creates it): a
    step that needs no one's files (the config schema, a probe of a shared directory) never falls back to root."""
    return [f"if id -u {q(user)} >/dev/null 2>&1; then", *as_user(user, group, lines, root, then=then),
            "else", *as_user(*NOBODY, lines, root, then=then), "fi"]


def env_export_lines(env_file: str, var: str) -> list[str]:
    """User-side shell lines that set `var` to the `export` statements of an env file read as data (empty when
    the file is not a readable regular file). `"$R"` is the stand-in root, as in every host-side script."""
    if not env_file:
        return [f"{var}="]
    f = f'"$R"{q(env_file)}'
    return [f"{var}=",
            f"if [ -f {f} ] && [ -r {f} ]; then "
            f"{var}=$(head -c {ENV_READ_CAP} -- {f} | LC_ALL=C awk {q(ENV_AWK)}); fi"]


def cli_env(inst: Instance) -> dict[str, str]:
    """What the CLI of an instance always sees, whatever its env file says (these win over it)."""
    return {
        "HOME": inst.service.home,
        "OPENCLAW_PROFILE": inst.profile,
        "OPENCLAW_STATE_DIR": inst.state_dir,
        "OPENCLAW_CONFIG_PATH": inst.config_path,
        "OPENCLAW_GATEWAY_PORT": str(inst.port),
        "OPENCLAW_CONFIG_READONLY": "1",
    }


_PATHS = ("HOME", "OPENCLAW_STATE_DIR", "OPENCLAW_CONFIG_PATH")  # under the stand-in root on a local host


def user_cli_lines(inst: Instance, command: Sequence[str], args: Sequence[str], root: str = "", *,
                   after: Sequence[str] = ()) -> list[str]:
    """The user-side sub-script of one CLI call: env file as data, the instance's own variables, the CLI with its
    output in a file this (user-side) shell opened, then at most CLI_OUTPUT_CAP bytes of it on stdout, then the
    `after` lines (still as the user). After the file's variables are in, nothing of the shell's own is read any
    more (not even `$R`): all literal words."""
    argv = [*command]
    if inst.profile.lower() != "default":
        argv += ["--profile", inst.profile]
    argv += list(args)
    exports = " ".join(f"{k}={q(root + v if k in _PATHS else v)}" for k, v in cli_env(inst).items())
    run = " ".join(q(a) for a in argv)
    return [
        "o=$(mktemp)",
        "trap 'rm -f -- \"$o\"' EXIT",
        # the env files the unit loads, in its order: the token made on the host (if any), then gateway.env
        *env_export_lines(inst.token_file or "", "ocp_tok"),
        *env_export_lines(inst.env_file, "ocp_env"),
        "rc=0",
        # a subshell: the files' variables cannot touch this script's own (o, rc, R, the PATH of head below)
        f'( eval "$ocp_tok"; eval "$ocp_env"; export {exports}; exec {run} ) >"$o" 2>&1 </dev/null || rc=$?',
        f'head -c {CLI_OUTPUT_CAP} -- "$o"',
        *after,
        'exit "$rc"',
    ]


def per_instance_script(instances: Sequence[Instance], command: Sequence[str], args: Sequence[str],
                        root: str = "") -> str:
    """Run the CLI for every instance at once, each as its own service user; each output framed by markers that
    only this (root) script prints, by index. `root`: the stand-in root of a local host ('' on a real one)."""
    lines = [f"R={q(root)}", HELPERS, 'd=$(mktemp -d) || exit 1', "trap 'rm -rf -- \"$d\"' EXIT"]
    for i, inst in enumerate(instances):
        lines += as_user(inst.service.user, inst.service.group, user_cli_lines(inst, command, args, root), root,
                         then=f'>"$d/{i}.out" &')
    lines.append("wait")
    for i in range(len(instances)):
        lines.append(f'echo "@@OCP {i} BEGIN"; cat -- "$d/{i}.out"; echo; echo "@@OCP {i} END"')
    return sh_script(lines, errexit=False)


def split_outputs(text: str, count: int) -> list[str]:
    """What each CLI call printed, by index: only the user-side lines (prefix removed) between the root script's
    own markers. A marker the user side printed arrives prefixed and is therefore just text."""
    out = [""] * count
    current: int | None = None
    buf: list[str] = []
    for line in text.split("\n"):
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == "@@OCP" and _INDEX.fullmatch(parts[1]) and parts[2] in ("BEGIN", "END"):
            i = int(parts[1])
            if parts[2] == "BEGIN":
                current, buf = (i if i < count else None), []
            elif current == i:
                out[i] = user_output("\n".join(buf))
                current = None
        elif current is not None:
            buf.append(line)
    return out


def config_schema_script(command: Sequence[str], user: str, group: str, root: str = "") -> str:
    """`openclaw config schema` as the host's service user (never root, see remote/scripts/trust.py; `nobody` while that
    user does not exist yet), in a throwaway HOME and state dir that the user-side script creates (so that user
    owns it) and removes: nothing of a gateway's state is touched. `root`: the stand-in root of a local host."""
    cmd = " ".join(q(a) for a in command)
    return sh_script([
        f"R={q(root)}",
        HELPERS,
        *as_user_or_nobody(user, group, [
            "t=$(mktemp -d)",
            "trap 'rm -rf -- \"$t\"' EXIT",
            f'HOME="$t" OPENCLAW_STATE_DIR="$t/state" OPENCLAW_CONFIG_PATH="$t/state/openclaw.json" '
            f"OPENCLAW_CONFIG_READONLY=1 {cmd} config schema </dev/null",
        ], root),
    ])
