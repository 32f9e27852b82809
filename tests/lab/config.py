"""Where the lab lives (state dir, base rootfs) and the names and addresses it may use."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

SHARED_MOUNT = "/srv/shared"  # where every host (unless no_shared) sees the shared directory
NAS_EXPORT = "/export"  # directory the sshfs exporter host serves


@dataclass(frozen=True)
class LabConfig:
    """Paths, names and addressing of one lab; built from the environment by `from_env`.

    Every namespace and cgroup the lab creates carries `prefix`: cleanup after a killed run deletes
    anything with it, so it must not collide with anything else (the reference lab uses "lab-"). A second
    lab on the same machine (the cleanup tests start one) needs its own prefix, subnet and state dir."""

    state_dir: Path
    base_dir: Path
    prefix: str = "ocp-"
    # three octets (a /24; the reference lab uses 10.77.0) or a CIDR of a /16 to a /24 (10.104.0.0/22: 1024
    # addresses) for labs of more than 139 ssh hosts; see `network` and `ssh_room`
    subnet: str = "10.78.0"
    mirror: str | None = None

    @classmethod
    def from_env(cls) -> LabConfig:
        prefix = os.environ.get("OCP_LAB_PREFIX", "ocp-")
        return cls(
            state_dir=Path(os.environ.get("OCP_LAB_DIR", f"/run/{prefix}lab")),
            base_dir=Path(os.environ.get("OCP_LAB_BASE", "/var/cache/openclaw-provisioner/lab-base")),
            prefix=prefix,
            subnet=os.environ.get("OCP_LAB_SUBNET", "10.78.0"),
            mirror=os.environ.get("OCP_LAB_MIRROR") or None,
        )

    def env(self) -> dict[str, str]:
        """Environment variables that make a child process (CLI, reaper) use this same lab."""
        return {"OCP_LAB_DIR": str(self.state_dir), "OCP_LAB_BASE": str(self.base_dir),
                "OCP_LAB_PREFIX": self.prefix, "OCP_LAB_SUBNET": self.subnet}

    @property
    def ctl_ns(self) -> str:
        """The control network namespace: holds the bridge; clients connect from it."""
        return self.prefix + "ctl"

    @property
    def cgroup_name(self) -> str:
        # per-host cgroups live under <hierarchy>/<prefix>lab/<host>
        return self.prefix + "lab"

    @property
    def lock_path(self) -> Path:
        # one lab per prefix per machine: namespace names are global, so the lock is not in the state dir
        return Path(f"/run/{self.prefix}lab.lock")

    @property
    def nas_name(self) -> str:
        return self.prefix + "nas"

    def veth_name(self, host: str) -> str:
        """Bridge-side interface of a host (in the control namespace, so short names are fine)."""
        return "v" + host.removeprefix(self.prefix)

    @property
    def network(self) -> ipaddress.IPv4Network:
        if "/" not in self.subnet:
            return ipaddress.IPv4Network(f"{self.subnet}.0/24")
        net = ipaddress.IPv4Network(self.subnet)
        if not 16 <= net.prefixlen <= 24:
            raise ValueError(f"OCP_LAB_SUBNET {self.subnet}: a /16 to a /24, or three octets")
        return net

    def address(self, index: int) -> str:
        """The network's `index`-th address; in a /24 that is `<subnet>.<index>`, as lab addresses always were."""
        net = self.network
        if not 0 < index < net.num_addresses - 1:
            raise ValueError(f"address #{index} is outside {net}")
        return str(net[index])

    @property
    def ssh_room(self) -> int:
        """How many ssh hosts fit: 139 in the first /24 (octets 11-149, systemd hosts have 151-249), then 254 in
        each further /24 of the network (.1-.254: no address ends in .0 or .255, which some tools refuse)."""
        return 139 + 254 * (self.network.num_addresses // 256 - 1)

    def ssh_index(self, i: int) -> int:
        """The address index of ssh host number `i` (1-based), as `ssh_room` lays them out."""
        if not 1 <= i <= self.ssh_room:
            raise ValueError(f"ssh host #{i}: the lab's network {self.network} has room for {self.ssh_room}")
        if i <= 139:
            return 10 + i
        block, within = divmod(i - 140, 254)
        return 256 * (block + 1) + within + 1

    @property
    def address_patterns(self) -> list[str]:
        """ssh_config `Host` patterns matching every address of the network, one per /24."""
        return [".".join(str(n.network_address).split(".")[:3]) + ".*" for n in self.network.subnets(new_prefix=24)]

    @property
    def ctl_address(self) -> str:
        return self.address(1)

    @property
    def hosts_dir(self) -> Path:
        return self.state_dir / "hosts"

    @property
    def shared_dir(self) -> Path:
        return self.state_dir / "shared"

    @property
    def client_key(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def peer_key(self) -> Path:
        # host-to-host key (sshfs clients log into the exporter with it); never the test client's key
        return self.state_dir / "peer_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def hosts_known_hosts(self) -> Path:
        # the copy bind-mounted into hosts as /etc/ssh/ssh_known_hosts: rewritten in place, never renamed
        return self.state_dir / "hosts-known_hosts"

    @property
    def etc_hosts(self) -> Path:
        return self.state_dir / "etc-hosts"

    @property
    def ssh_config(self) -> Path:
        return self.state_dir / "ssh_config"
