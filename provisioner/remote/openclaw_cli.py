"""Scripts that run the OpenClaw CLI on a host as an instance's own gateway would: its user, env and profile."""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.inventory.model import Instance
from provisioner.remote.command import q, sh_script


def _as_instance(inst: Instance, command: Sequence[str], args: Sequence[str]) -> str:
    """One shell command: the instance's env file (secrets stay out of argv), its paths, then the CLI as its user."""
    env = {
        "HOME": inst.service.home,
        "OPENCLAW_PROFILE": inst.profile,
        "OPENCLAW_STATE_DIR": inst.state_dir,
        "OPENCLAW_CONFIG_PATH": inst.config_path,
        "OPENCLAW_GATEWAY_PORT": str(inst.port),
    }
    argv = [*command]
    if inst.profile.lower() != "default":
        argv += ["--profile", inst.profile]
    argv += list(args)
    exports = " ".join(f"{k}={q(v)}" for k, v in env.items())
    user = q(inst.service.user)
    run = " ".join(q(a) for a in argv)
    return (f"( set -a; [ -r {q(inst.env_file)} ] && . {q(inst.env_file)}; set +a; export {exports}; "
            f"if [ \"$(id -un)\" = {user} ]; then exec {run}; else exec runuser -u {user} -- {run}; fi )")


def per_instance_script(instances: Sequence[Instance], command: Sequence[str], args: Sequence[str]) -> str:
    """Run the CLI for every instance at once (node starts slowly); each output framed by markers, by index."""
    lines = ['d=$(mktemp -d)', "trap 'rm -rf \"$d\"' EXIT"]
    for i, inst in enumerate(instances):
        lines.append(f'{_as_instance(inst, command, args)} > "$d/{i}.out" 2>&1 </dev/null & ')
    lines.append("wait")
    for i in range(len(instances)):
        lines.append(f'echo "@@OCP {i} BEGIN"; cat "$d/{i}.out"; echo; echo "@@OCP {i} END"')
    return sh_script(lines).replace("set -eu\n", "set -u\n", 1)


def split_outputs(text: str, count: int) -> list[str]:
    out = [""] * count
    current: int | None = None
    buf: list[str] = []
    for line in text.split("\n"):
        if line.startswith("@@OCP ") and line.endswith(" BEGIN"):
            current, buf = int(line.split()[1]), []
        elif line.startswith("@@OCP ") and line.endswith(" END") and current is not None:
            out[current] = "\n".join(buf)
            current = None
        elif current is not None:
            buf.append(line)
    return out
