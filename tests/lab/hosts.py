"""A lab host as tests see it: identity, SSH settings, and commands run inside it through nsenter."""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import netns

Kind = Literal["ssh", "systemd"]
# What a login shell on Debian would have; never the test runner's environment (pyenv shims, OPENCLAW_*).
HOST_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
            "LANG": "C.UTF-8", "TERM": "dumb"}


class HostCommandError(subprocess.CalledProcessError):
    """A command run with check=True failed; unlike CalledProcessError its message shows the output."""

    def __str__(self) -> str:
        def tail(data: str | bytes | None) -> str:
            if isinstance(data, bytes):
                data = data.decode(errors="replace")
            return (data or "").strip()[-2000:]

        return (f"{super().__str__()}\n--- stdout:\n{tail(self.stdout)}\n--- stderr:\n{tail(self.stderr)}")


@dataclass
class LabHost:
    """One running lab host. `run`/`read_file`/`write_file` enter its namespaces directly (nsenter), so they
    work whatever the state of its sshd or network; tests of the SSH path use `address`/`port` instead."""

    name: str
    kind: Kind
    address: str
    netns: str  # network namespace (ip netns name)
    veth: str  # bridge-side interface in the control namespace
    dir: Path  # state dir of the host (upper dir, keys, logs)
    key_path: Path  # client private key accepted by root and alt_user
    known_hosts_path: Path  # lab known_hosts (holds this host's key)
    host_public_key: str  # "ssh-ed25519 AAAA..." (no comment)
    init_pid: int = 0  # the host's PID 1 as seen from the lab machine
    port: int = 22
    user: str = "root"
    alt_user: str = "lab"  # uid 1000, passwordless sudo
    shared: bool = True  # /srv/shared bound in
    bind_ro: dict[str, str] = field(default_factory=dict)  # host path -> path inside
    network: str = ""  # "": on the control namespace's bridge; else the lab Network it alone is on

    # ---- commands ----------------------------------------------------------------------------------------
    def nsenter_argv(self, argv: Sequence[str], user: str | None = None) -> list[str]:
        """argv running `argv` inside this host: its mount, UTS, IPC, network and PID namespaces and root."""
        inner = list(argv)
        if user and user != "root":
            inner = ["runuser", "-u", user, "--", *inner]
        return ["nsenter", "-t", str(self.init_pid), "-m", "-u", "-i", "-n", "-p", "-r", "-w", "--",
                "env", "-i", *(f"{k}={v}" for k, v in HOST_ENV.items()), *inner]

    def run(self, cmd: str | Sequence[str], *, user: str | None = None, input: str | bytes | None = None,
            check: bool = True, timeout: float = 120, text: bool = True) -> subprocess.CompletedProcess[Any]:
        """Run `cmd` (an argv list, or a string for `sh -c`) as root (or `user`) inside the host."""
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        if isinstance(input, str) and not text:
            input = input.encode()
        proc = subprocess.run(self.nsenter_argv(argv, user), input=input, capture_output=True, text=text,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise HostCommandError(proc.returncode, f"[{self.name}] {shlex.join(argv)}", proc.stdout,
                                   proc.stderr)
        return proc

    def read_file(self, path: str) -> bytes:
        data: bytes = self.run(["cat", "--", path], text=False).stdout
        return data

    def write_file(self, path: str, data: str | bytes, mode: int = 0o644, owner: str | None = None) -> None:
        """Write `data` to `path` inside the host (parent directories created), then set mode and owner."""
        script = 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1" && chmod "$2" -- "$1"'
        args = [path, f"{mode:o}"]
        if owner:
            script += ' && chown "$3" -- "$1"'
            args.append(owner)
        self.run(["sh", "-c", script, "-", *args], input=data if isinstance(data, bytes) else data.encode(),
                 text=False)

    def exists(self, path: str) -> bool:
        return self.run(["test", "-e", path], check=False).returncode == 0

    # ---- network -----------------------------------------------------------------------------------------
    def cut_network(self) -> None:
        """Take the host's only interface down: connections to it time out, nothing is refused."""
        netns.set_link(self.netns, up=False)

    def restore_network(self) -> None:
        netns.set_link(self.netns, up=True)

    @property
    def network_up(self) -> bool:
        return netns.link_is_up(self.netns)

    @contextlib.contextmanager
    def network_cut(self) -> Iterator[None]:
        self.cut_network()
        try:
            yield
        finally:
            self.restore_network()

    # ---- description -------------------------------------------------------------------------------------
    @property
    def known_hosts_line(self) -> str:
        return f"{self.address} {self.host_public_key}\n"

    def ssh_settings(self, user: str | None = None) -> dict[str, object]:
        """The inventory `ssh:` block (schema names) that reaches this host with strict host-key checking."""
        return {"user": user or self.user, "port": self.port, "identity_file": str(self.key_path),
                "known_hosts": str(self.known_hosts_path), "host_key_policy": "strict"}

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "address": self.address, "netns": self.netns,
                "veth": self.veth, "dir": str(self.dir), "key_path": str(self.key_path),
                "known_hosts_path": str(self.known_hosts_path), "host_public_key": self.host_public_key,
                "init_pid": self.init_pid, "port": self.port, "user": self.user, "alt_user": self.alt_user,
                "shared": self.shared, "bind_ro": dict(self.bind_ro), "network": self.network}

    @classmethod
    def from_json(cls, d: Mapping[str, object]) -> LabHost:
        kw = dict(d)
        for k in ("dir", "key_path", "known_hosts_path"):
            kw[k] = Path(str(kw[k]))
        return cls(**kw)  # type: ignore[arg-type]
