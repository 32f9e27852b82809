"""The lab: brings hosts up and down, keeps the client files (key, known_hosts, ssh_config) current."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import base, cleanup, launch, netns, procs
from .config import NAS_EXPORT, LabConfig
from .hosts import Kind, LabHost

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("ip", "unshare", "nsenter", "mount", "ssh-keygen", "systemd-nspawn", "debootstrap")
# name pattern, first address octet, how many of that kind fit in the first /24 (ssh hosts: more in a larger
# network, see LabConfig.ssh_room)
KINDS: dict[str, tuple[str, int, int]] = {"ssh": ("h", 10, 139), "systemd": ("n", 150, 99)}  # octets 11-149, 151-249
READY_TIMEOUT = 60.0


@dataclass(frozen=True)
class Network:
    """A /24 on a bridge of its own namespace, with no link to the control namespace: its hosts are reachable
    only through a bastion attached to it (`Lab.attach`)."""

    name: str
    ns: str
    subnet: str


class LabError(RuntimeError):
    """The lab could not be brought up (or down); the message says why and where the logs are."""


class Lab:
    """Owner of the lab hosts of one run. Use as a context manager, or `open()` ... `close()`."""

    def __init__(self, cfg: LabConfig | None = None) -> None:
        self.cfg = cfg or LabConfig.from_env()
        self.hosts: dict[str, LabHost] = {}
        self.run_id = uuid.uuid4().hex[:12]
        self._popens: dict[str, subprocess.Popen[bytes]] = {}
        self._mutex = threading.RLock()  # host table and client files
        self._lock_file: int | None = None
        self._reaper: subprocess.Popen[bytes] | None = None
        self._reaper_pipe: int | None = None

    # ---- lifecycle --------------------------------------------------------------------------------------
    def open(self, *, reaper: bool = False, lock_wait: float = 0) -> Lab:
        """Take the machine's lab lock, remove leftovers of earlier runs, build the base if needed.

        reaper=True starts a watchdog process that tears the lab down if this process dies without
        closing it (SIGKILL, a crash, a CI timeout). lock_wait: seconds to wait for another run's lab."""
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces, mounts, systemd-nspawn)")
        missing = [t for t in TOOLS if shutil.which(t) is None]
        if missing:
            raise LabError(f"missing tools: {', '.join(missing)}; run scripts/lab-deps")
        self._take_lock(lock_wait)
        try:
            cleanup.cleanup(self.cfg)  # leftovers of a killed run, from its recorded state
            try:
                base.ensure_base(self.cfg)
            except base.BaseError as exc:
                raise LabError(str(exc)) from exc
            self._prepare_state()
            netns.ensure_ctl(self.cfg.ctl_ns, self.cfg.ctl_address, self.cfg.network.prefixlen)
            self._write_client_files()
            if reaper:
                self._start_reaper()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Stop every host and remove every namespace, cgroup, mount and state file of the lab."""
        with self._mutex:
            if self._lock_file is None:
                return  # not open (or already closed): the lab on this machine, if any, is not ours
            keep = os.environ.get("OCP_LAB_KEEP", "") not in ("", "0")
            cleanup.cleanup(self.cfg, self._popens, keep_files=keep)
            self.hosts.clear()
            self._popens.clear()
            (self.cfg.state_dir / "owner.json").unlink(missing_ok=True)
            self._release_lock()
            if self._reaper_pipe is not None:
                os.close(self._reaper_pipe)  # EOF + no owner.json: the reaper sees a clean end and exits
                self._reaper_pipe = None
            if self._reaper is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._reaper.wait(10)
                self._reaper = None

    @classmethod
    def teardown(cls, cfg: LabConfig | None = None) -> None:
        """Tear down whatever lab the recorded state describes (e.g. one left up by the CLI or a killed run)."""
        lab = cls(cfg)
        if os.geteuid() != 0:
            raise LabError("tearing the lab down needs root")
        lab._take_lock()
        lab.close()

    def __enter__(self) -> Lab:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take_lock(self, wait: float = 0) -> None:
        fd = os.open(self.cfg.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                owner = os.pread(fd, 200, 0).decode(errors="replace").strip()
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LabError(f"another lab is running on this machine ({owner}); only one per prefix "
                                   "can (OCP_LAB_PREFIX, OCP_LAB_SUBNET and OCP_LAB_DIR select another)") from None
                if not told:
                    print(f"lab: waiting up to {wait:.0f} s for the lab held by {owner}", file=sys.stderr)
                    told = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} run {self.run_id} dir {self.cfg.state_dir}\n".encode(), 0)
        self._lock_file = fd

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing the descriptor drops the flock
            self._lock_file = None

    def _prepare_state(self) -> None:
        cfg = self.cfg
        cfg.hosts_dir.mkdir(parents=True, exist_ok=True)
        cfg.shared_dir.mkdir(exist_ok=True)
        cfg.shared_dir.chmod(0o1777)
        for key, comment in ((cfg.client_key, "ocp-lab-client"), (cfg.peer_key, "ocp-lab-peer")):
            if not key.exists():  # fresh per run: cleanup removed the previous run's keys
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
                               check=True)
        for f in (cfg.etc_hosts, cfg.hosts_known_hosts):  # bind-mount sources must exist before any host
            f.touch()
        (cfg.state_dir / "owner.json").write_text(json.dumps({"pid": os.getpid(), "run_id": self.run_id}))

    def _start_reaper(self) -> None:
        r, w = os.pipe()  # both ends close-on-exec; the reaper gets the read end as its stdin
        self._reaper = subprocess.Popen(
            [sys.executable, "-m", "tests.lab", "reap", "--run-id", self.run_id], cwd=REPO, stdin=r,
            start_new_session=True,  # a Ctrl-C to the test run must not kill it mid-cleanup
            env={**os.environ, **self.cfg.env()})
        os.close(r)
        self._reaper_pipe = w

    # ---- hosts ------------------------------------------------------------------------------------------
    def add_host(self, kind: Kind = "ssh", *, bind_ro: Mapping[str, str] | None = None,
                 no_shared: bool = False, name: str | None = None) -> LabHost:
        """Start one host and wait until its sshd answers. See `add_hosts`."""
        return self.add_hosts(kind, 1, bind_ro=bind_ro, no_shared=no_shared, names=[name] if name else None)[0]

    def add_hosts(self, kind: Kind, count: int, *, bind_ro: Mapping[str, str] | None = None,
                  no_shared: bool = False, names: Sequence[str] | None = None,
                  network: Network | None = None) -> list[LabHost]:
        """Start `count` hosts of `kind` in parallel and wait until all answer on port 22.

        kind "ssh": sshd as PID 1 of unshare'd namespaces (no systemd); "systemd": systemd-nspawn --boot.
        bind_ro {path on this machine: path inside}: read-only bind mounts (e.g. an OpenClaw install at
        /opt/openclaw). no_shared: no /srv/shared in the host."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, not {kind!r}")
        with self._mutex:
            if self._lock_file is None:
                raise LabError("the lab is not open")
            before = set(self.hosts)
            started: list[LabHost] = []
            try:
                if kind == "systemd":
                    cleanup.raise_inotify(self.cfg, count + sum(h.kind == "systemd" for h in self.hosts.values()))
                if count + len(self.hosts) > 100:
                    cleanup.raise_neigh(self.cfg, count + len(self.hosts))
                for i in range(count):
                    spec = self._allocate(kind, names[i] if names else None, bind_ro or {}, not no_shared, network)
                    started.append(self._start(spec))
                self._write_client_files()
            except BaseException:
                for h in [h for n, h in list(self.hosts.items()) if n not in before]:
                    self._stop(h)
                self._write_client_files()
                raise
        try:
            self._wait_ready(started)
        except BaseException:
            with self._mutex:
                for h in started:
                    self._stop(h)
                self._write_client_files()
            raise
        return started

    def remove_host(self, host: LabHost) -> None:
        """Stop a host and delete everything of it (namespaces, upper dir)."""
        with self._mutex:
            self._stop(host)
            self._write_client_files()

    def nas(self) -> LabHost:
        """The sshfs exporter: a plain host serving NAS_EXPORT (/export), started on first use."""
        with self._mutex:
            nas = self.cfg.nas_name
            if nas not in self.hosts:
                host = self.add_host("ssh", name=nas)
                host.run(["mkdir", "-p", NAS_EXPORT])
                host.run(["chmod", "1777", NAS_EXPORT])
            return self.hosts[nas]

    def mount_sshfs(self, client: LabHost, mountpoint: str, *, server: LabHost | None = None,
                    remote: str = NAS_EXPORT, options: Sequence[str] = ()) -> None:
        """Mount server:remote (default: the NAS export) at `mountpoint` in `client` with sshfs (FUSE).

        The sshfs daemon lives in the client's PID namespace and dies with it. Defaults keep the attribute
        cache short so that what one client writes shows up on another within ~1 s."""
        server = server or self.nas()
        opts = ["allow_other", "reconnect", "ServerAliveInterval=5", "StrictHostKeyChecking=yes",
                "IdentityFile=/root/.ssh/id_ed25519", "dcache_timeout=1", *options]
        log = f"/run/sshfs-{mountpoint.strip('/').replace('/', '_')}.log"
        # sshfs's ssh child inherits stdout/stderr: send them to a file, or the caller waits for ssh to exit
        client.run(["sh", "-c", 'mkdir -p "$1" && log="$2" && shift 2 && "$@" </dev/null >"$log" 2>&1 '
                    '|| { cat "$log" >&2; exit 1; }', "-", mountpoint, log,
                    "sshfs", "-o", ",".join(opts), f"root@{server.address}:{remote}", mountpoint])

    def add_network(self, name: str, subnet: str) -> Network:
        """A network of its own (bridge namespace `<prefix>net-<name>`, /24 `subnet`); removed by close()."""
        net = Network(name, f"{self.cfg.prefix}net-{name}", subnet)
        netns.ensure_bridge(net.ns)
        return net

    def attach(self, host: LabHost, net: Network) -> str:
        """Give `host` a second interface on `net` (same last octet as its address): a bastion into it."""
        address = f"{net.subnet}.{host.address.rsplit('.', 1)[1]}"
        netns.attach(net.ns, host.netns, f"{host.veth}-{net.name}"[:15], f"e-{net.name}"[:15], address)
        return address

    def _allocate(self, kind: Kind, name: str | None, bind_ro: Mapping[str, str], shared: bool,
                  network: Network | None = None) -> launch.HostSpec:
        letter, first, room = KINDS[kind]
        if kind == "ssh":  # a network larger than a /24 has room for more (LabConfig.ssh_room)
            room = self.cfg.ssh_room
        prefix = self.cfg.prefix
        if name is None:
            used = set(self.hosts)
            i = next((i for i in range(1, room + 1) if f"{prefix}{letter}{i}" not in used), None)
            if i is None:
                raise LabError(f"no room for another {kind} host ({room} max)")
            name, octet = f"{prefix}{letter}{i}", self.cfg.ssh_index(i) if kind == "ssh" else first + i
        elif name == self.cfg.nas_name:
            octet = 5
        else:
            raise ValueError(f"only {self.cfg.nas_name} may be named explicitly, not {name!r}")
        for src in bind_ro:
            if not os.path.exists(src):
                raise LabError(f"bind_ro source {src} does not exist")
        d = self.cfg.hosts_dir / name
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        address = f"{network.subnet}.{octet}" if network else self.cfg.address(octet)
        return launch.HostSpec(name, kind, address, d, shared, dict(bind_ro), network.ns if network else "")

    def _start(self, spec: launch.HostSpec) -> LabHost:
        cfg = self.cfg
        host = LabHost(name=spec.name, kind=spec.kind, address=spec.address, netns=spec.name,
                       veth=cfg.veth_name(spec.name), dir=spec.dir, key_path=cfg.client_key,
                       known_hosts_path=cfg.known_hosts, host_public_key="", shared=spec.shared,
                       bind_ro=dict(spec.bind_ro), network=spec.bridge_ns)
        # in the table before anything is created: a failure below is cleaned up through it
        self.hosts[spec.name] = host
        netns.add_host(spec.bridge_ns or cfg.ctl_ns, spec.name, host.veth, spec.address,
                       24 if spec.bridge_ns else cfg.network.prefixlen)
        host.host_public_key = launch.prepare_upper(cfg, spec)
        popen = launch.start(cfg, spec)
        self._popens[spec.name] = popen
        records = [procs.record(popen.pid, "launcher")]
        procs.save(spec.dir / "pids.json", records)
        try:
            host.init_pid = procs.find_ns_init(popen.pid, timeout=15)
        except (RuntimeError, TimeoutError) as exc:
            raise LabError(f"{spec.name} did not start: {exc}\n{self._log_tail(host)}") from exc
        records.append(procs.record(host.init_pid, "init"))
        procs.save(spec.dir / "pids.json", records)
        (spec.dir / "host.json").write_text(json.dumps(host.to_json(), indent=1))
        return host

    def _stop(self, host: LabHost) -> None:
        cleanup.stop_host(self.cfg, host.name, procs.load(host.dir / "pids.json"), self._popens.pop(host.name, None))
        self.hosts.pop(host.name, None)
        if not cleanup.mounts_under(host.dir, all_namespaces=False):
            shutil.rmtree(host.dir, ignore_errors=True)

    def _wait_ready(self, hosts: Sequence[LabHost]) -> None:
        """Until every host's sshd sends its banner (reached from the control namespace, like clients)."""
        pending = {h.name: h for h in hosts}
        deadline = time.monotonic() + READY_TIMEOUT
        while pending:
            for name, h in list(pending.items()):
                if procs.start_time(h.init_pid) is None:
                    raise LabError(f"{name} died while starting\n{self._log_tail(h)}")
                try:
                    # a host on a network of its own is asked from inside itself: nothing else reaches it
                    where = h.netns if h.network else self.cfg.ctl_ns
                    with netns.connect(where, h.address, h.port, timeout=0.5) as s:
                        if s.recv(64).startswith(b"SSH-"):
                            del pending[name]
                except OSError:
                    pass
            if pending:
                if time.monotonic() > deadline:
                    raise LabError(f"hosts not answering on port 22 after {READY_TIMEOUT:.0f} s: "
                                   f"{sorted(pending)}\n" + "\n".join(self._log_tail(h) for h in pending.values()))
                time.sleep(0.05)
        # systemd hosts: also wait for the end of boot (~0.5 s), so that tests see a settled system
        # (no unit still starting, `systemctl --failed` meaningful) rather than a race with boot
        booting = [h for h in hosts if h.kind == "systemd"]
        with ThreadPoolExecutor(max(1, len(booting))) as pool:
            states = list(pool.map(self._wait_booted, booting, [deadline - time.monotonic()] * len(booting)))
        bad = [f"{h.name}: {state}" for h, state in zip(booting, states, strict=True)
               if state not in ("running", "degraded")]
        if bad:
            raise LabError("systemd hosts did not finish booting: " + "; ".join(bad))

    @staticmethod
    def _wait_booted(host: LabHost, timeout: float) -> str:
        try:
            proc = host.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=max(timeout, 5))
        except subprocess.TimeoutExpired:
            return "still booting"
        return str(proc.stdout).strip() or str(proc.stderr).strip()

    @staticmethod
    def _log_tail(host: LabHost) -> str:
        try:
            text = (host.dir / "console.log").read_text(errors="replace")
        except OSError:
            text = "(no log)"
        return f"--- {host.dir / 'console.log'} (tail):\n{text[-3000:]}"

    # ---- clients ----------------------------------------------------------------------------------------
    def client_argv(self, argv: Sequence[str]) -> list[str]:
        """argv running a client program (ssh, the provision CLI...) inside the control namespace, the only
        place lab addresses are reachable from."""
        return ["ip", "netns", "exec", self.cfg.ctl_ns, *argv]

    def connect_socket(self, address: str, port: int = 22, timeout: float = 10.0) -> socket.socket:
        """A connected TCP socket (TCP_NODELAY) to address:port, created inside the control namespace.
        Matches the SockFactory signature (address, port, timeout) of provisioner.remote.ssh."""
        return netns.connect(self.cfg.ctl_ns, address, port, timeout)

    def ssh_argv(self, host: LabHost, *command: str, user: str | None = None) -> list[str]:
        """An OpenSSH client command line for `host` (strict host keys, the lab key), already namespaced."""
        return self.client_argv(["ssh", "-F", str(self.cfg.ssh_config), "-l", user or host.user, host.name,
                                 *command])

    def by_kind(self, kind: Kind) -> list[LabHost]:
        return [h for h in self.hosts.values() if h.kind == kind and h.name != self.cfg.nas_name]

    def _write_client_files(self) -> None:
        cfg = self.cfg
        hosts = sorted(self.hosts.values(), key=lambda h: tuple(map(int, h.address.split("."))))
        ready = [h for h in hosts if h.host_public_key]
        kh = "".join(f"{h.address},{h.name} {h.host_public_key}\n" for h in ready)
        _replace(cfg.known_hosts, kh)
        # these two are bind-mounted into the hosts as files: rewrite in place, a rename would not show
        _rewrite_in_place(cfg.hosts_known_hosts, kh)
        _rewrite_in_place(cfg.etc_hosts, f"127.0.0.1 localhost\n{cfg.ctl_address} {cfg.ctl_ns}\n"
                          + "".join(f"{h.address} {h.name}\n" for h in hosts))
        _replace(cfg.ssh_config, (
            f"# written by tests/lab; use with: ip netns exec {cfg.ctl_ns} ssh -F {cfg.ssh_config} HOST\n"
            + "".join(f"Host {h.name}\n    HostName {h.address}\n" for h in hosts)
            + f"Host {cfg.prefix}* {' '.join(cfg.address_patterns)}\n    User root\n    IdentityFile {cfg.client_key}\n"
            f"    IdentitiesOnly yes\n    UserKnownHostsFile {cfg.known_hosts}\n    GlobalKnownHostsFile /dev/null\n"
            "    StrictHostKeyChecking yes\n    LogLevel ERROR\n"))
        _replace(cfg.state_dir / "inventory.json", json.dumps(
            {"client_netns": cfg.ctl_ns, "shared_dir": str(cfg.shared_dir), "hosts": [h.to_json() for h in hosts]},
            indent=1))


def lock_holder(cfg: LabConfig) -> str | None:
    """Who holds the lab lock (its own note), or None if nobody does."""
    try:
        fd = os.open(cfg.lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return os.pread(fd, 200, 0).decode(errors="replace").strip() or "?"
    finally:
        os.close(fd)


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.rename(path)


def _rewrite_in_place(path: Path, text: str) -> None:
    with open(path, "r+" if path.exists() else "w") as f:
        f.write(text)
        f.truncate()
