"""Network namespaces: the control namespace with the bridge, one namespace per host, sockets inside them."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
from pathlib import Path

CLONE_NEWNET = 0x40000000
BRIDGE = "br0"  # lives inside the control namespace only, so the short name cannot collide
NETNS_DIR = Path("/run/netns")

_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


def exists(ns: str) -> bool:
    return (NETNS_DIR / ns).exists()


def lab_namespaces(prefix: str) -> list[str]:
    """Every network namespace carrying the lab prefix (ours, possibly left over by a killed run)."""
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(prefix))


def ensure_ctl(ctl: str, ctl_address: str, prefixlen: int = 24) -> None:
    """The control namespace: a bridge all hosts plug into, and the address clients connect from."""
    if exists(ctl):
        return
    ip("netns", "add", ctl)
    ip("-n", ctl, "link", "set", "lo", "up")
    ip("-n", ctl, "link", "add", BRIDGE, "type", "bridge")
    ip("-n", ctl, "addr", "add", f"{ctl_address}/{prefixlen}", "dev", BRIDGE)
    ip("-n", ctl, "link", "set", BRIDGE, "up")


def add_host(ctl: str, ns: str, veth: str, address: str, prefixlen: int = 24) -> None:
    """A fresh namespace `ns` whose eth0 has `address`/prefixlen, wired to the bridge in `ctl` through `veth`."""
    delete(ctl, ns, veth)
    ip("netns", "add", ns)
    ip("-n", ns, "link", "set", "lo", "up")
    attach(ctl, ns, veth, "eth0", address, prefixlen)


def ensure_bridge(ns: str) -> None:
    """A namespace holding only a bridge, with no address: a network that the control namespace has no link to
    (hosts on it are reached through a bastion attached to it, or not at all)."""
    if exists(ns):
        return
    ip("netns", "add", ns)
    ip("-n", ns, "link", "set", "lo", "up")
    ip("-n", ns, "link", "add", BRIDGE, "type", "bridge")
    ip("-n", ns, "link", "set", BRIDGE, "up")


def attach(bridge_ns: str, ns: str, veth: str, ifname: str, address: str, prefixlen: int = 24) -> None:
    """Interface `ifname` with `address`/prefixlen in `ns`, plugged through `veth` into the bridge of `bridge_ns`."""
    # The MAC follows from the address: a host re-created on a reused address (fresh hosts come and go)
    # then matches the ARP caches of the other namespaces, instead of stalling connections for seconds.
    mac = "02:00:" + ":".join(f"{int(b):02x}" for b in address.split("."))
    ip("-n", bridge_ns, "link", "add", veth, "type", "veth", "peer", "name", ifname, "netns", ns, "address", mac)
    ip("-n", bridge_ns, "link", "set", veth, "master", BRIDGE, "up")
    ip("-n", ns, "addr", "add", f"{address}/{prefixlen}", "dev", ifname)
    ip("-n", ns, "link", "set", ifname, "up")


def delete(ctl: str, ns: str, veth: str | None = None) -> None:
    # Delete the bridge side explicitly: a namespace outlives `ip netns del` while anything still holds
    # it, and its veth would stay plugged into the bridge meanwhile.
    if veth and exists(ctl):
        ip("-n", ctl, "link", "del", veth, check=False)
    if exists(ns):
        ip("netns", "del", ns, check=False)


def set_link(ns: str, up: bool) -> None:
    ip("-n", ns, "link", "set", "eth0", "up" if up else "down")


def link_is_up(ns: str) -> bool:
    out = ip("-n", ns, "-o", "link", "show", "eth0").stdout
    return "state UP" in out or ",UP" in out.split(">")[0]


def socket_in(ns: str, family: int = socket.AF_INET, type_: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket created inside network namespace `ns`; it stays there whatever thread later uses it.

    setns() changes the namespace of the calling *thread* only, so a short-lived helper thread enters the
    namespace, creates the socket and exits: the caller's threads never change namespace, even on errors.
    """
    box: dict[str, object] = {}

    def work() -> None:
        try:
            fd = os.open(NETNS_DIR / ns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({NETNS_DIR / ns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            box["sock"] = socket.socket(family, type_)
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    t = threading.Thread(target=work, name=f"netns-{ns}", daemon=True)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["sock"]  # type: ignore[return-value]


def connect(ns: str, address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to address:port made from inside `ns`, with TCP_NODELAY (paramiko never sets it:
    without it every reused-connection command waits ~40 ms for delayed ACKs)."""
    sock = socket_in(ns)
    try:
        sock.settimeout(timeout)
        sock.connect((address, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock
