"""Host-side scripts for releases under <prefix>: unpack a pushed tarball atomically, switch `current`, prune."""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.remote.command import q
from provisioner.remote.scripts.shell import sh_script
from provisioner.remote.scripts.trust import HELPERS, safe_lines

STAMP = ".ocp-release"
INCOMING_DIR = "/var/lib/openclaw-provisioner/incoming"  # pushed tarballs land here (root only), then unpack


def incoming_dir_script() -> str:
    """Where the controller may put a tarball: root's own dir, or (through sudo) a 0700 dir of the SSH user's
    inside it, since SFTP writes as that user. Prints `DIR <path>`."""
    d = q(INCOMING_DIR)
    return sh_script([
        "R=''", HELPERS, *safe_lines([INCOMING_DIR]), f"install -d -m 0711 {d}", f"[ -d {d} ] && [ ! -L {d} ]",
        'u=${SUDO_USER:-root}',
        f'if [ "$u" = root ]; then echo "DIR {INCOMING_DIR}"; else install -d -m 0700 -o "$u" {d}/"$u"; '
        f'[ ! -L {d}/"$u" ]; echo "DIR {INCOMING_DIR}/$u"; fi',
    ])


def releases_probe_lines(prefix: str) -> list[str]:
    p = q(prefix)
    return [
        # `current` is a link to one of them, not a release of its own: it must never be pruned
        f"if [ -d {p} ]; then for d in {p}/*/; do d=${{d%/}}; [ -L \"$d\" ] && continue; [ -f \"$d/{STAMP}\" ] && "
        f"echo \"I ${{d##*/}} $(head -c 300 \"$d/{STAMP}\" | tr -d '\\n')\"; done; "
        f"echo \"IC $(readlink {p}/current 2>/dev/null || true)\"; fi; true",
    ]


def install_script(prefix: str, version: str, incoming: str, sha256: str, stamp: str, run_id: str) -> str:
    """Verify the pushed tarball, unpack it beside its final place, check it runs, then rename it in.

    A failure at any step leaves <prefix>/<version> as it was (absent) and removes what was unpacked."""
    final = f"{prefix}/{version}"
    tmp = f"{prefix}/.{version}.tmp-{run_id}"
    return sh_script([
        "R=''", HELPERS, *safe_lines([final]),
        f"inc={q(incoming)}; tmp={q(tmp)}",
        "cleanup() { rm -rf -- \"$tmp\"; rm -f -- \"$inc\"; }",
        "trap cleanup EXIT",
        "trap 'exit 130' INT TERM HUP",
        "got=$(sha256sum < \"$inc\" | cut -c1-64)",
        f"if [ \"$got\" != {q(sha256)} ]; then echo \"checksum mismatch: got $got\" >&2; exit 3; fi",
        f"install -d -m 0755 {q(prefix)}",
        "rm -rf -- \"$tmp\"; mkdir -m 0755 -- \"$tmp\"",
        "tar -xzf \"$inc\" -C \"$tmp\" --no-same-owner",
        "chown -R 0:0 -- \"$tmp\" 2>/dev/null || true",
        "OPENCLAW_CONFIG_READONLY=1 \"$tmp/bin/openclaw\" --version >/dev/null </dev/null",
        f"printf '%s\\n' {q(stamp)} > \"$tmp/{STAMP}\"",
        f"if [ -e {q(final)} ]; then rm -rf -- {q(final + '.old')}; mv -T -- {q(final)} {q(final + '.old')}; fi",
        f"mv -T -- \"$tmp\" {q(final)}",
        f"rm -rf -- {q(final + '.old')}",
        "echo INSTALLED",
    ])


def switch_current_script(prefix: str, version: str) -> str:
    """Point <prefix>/current at a version with one rename (never a moment without a link)."""
    link = f"{prefix}/current"
    return sh_script([
        "R=''", HELPERS, *safe_lines([link]),
        f"ln -sfn {q(version)} {q(link + '.new')}",
        f"mv -T -- {q(link + '.new')} {q(link)}",
        "echo SWITCHED",
    ])


def prune_script(prefix: str, versions: Sequence[str]) -> str:
    lines = [f"rm -rf -- {q(prefix + '/' + v)}" for v in versions]
    return sh_script(["R=''", HELPERS, *safe_lines([prefix + "/x"]), *lines, "echo PRUNED"])


def prune_incoming_script(incoming: str) -> str:
    return sh_script([f"rm -f -- {q(incoming)}", "echo OK"])


def registry_install_script(prefix: str, version: str, node_version: str, run_id: str,
                            registry: str | None = None) -> str:
    """The host fetches the release from the npm registry itself (it needs npm and a route to the registry):
    the same fetch the controller does for its cache, into a temp dir under the prefix, then renamed in.
    `registry`: the registry's URL (npm's `registry` setting for this fetch only); else the host npm's own."""
    from importlib import resources

    fetch = (resources.files("provisioner.install") / "fetch-release").read_text(encoding="utf-8")
    tmp = f"{prefix}/.registry-{run_id}"
    final = f"{prefix}/{version}"
    return sh_script([
        "R=''", HELPERS, *safe_lines([final]),
        f"tmp={q(tmp)}",
        "trap 'rm -rf -- \"$tmp\"' EXIT",
        f"install -d -m 0755 {q(prefix)} \"$tmp\"",
        "cat > \"$tmp/fetch-release\" <<'__OCP_FETCH__'",
        fetch.rstrip("\n"),
        "__OCP_FETCH__",
        *([f"npm_config_registry={q(registry)}; export npm_config_registry"] if registry else []),
        f"OCP_OPENCLAW_CACHE=\"$tmp\" bash \"$tmp/fetch-release\" {q(version)} --node {q(node_version)} >/dev/null",
        f"d=\"$tmp/openclaw-{version}\"",
        f"printf '%s\\n' {q(f'openclaw={version} node={node_version}')} > \"$d/{STAMP}\"",
        f"rm -rf -- {q(final)}; mv -T -- \"$d\" {q(final)}",
        "echo INSTALLED",
    ])
