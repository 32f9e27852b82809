"""The lab's addressing (tests/lab/config.py): three octets keep the /24 every lab had; a CIDR gives room for the
hundreds of ssh hosts of bench/run's 500-host run, never on a .0 or .255 address."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lab.config import LabConfig


def _cfg(subnet: str) -> LabConfig:
    return LabConfig(state_dir=Path("/run/x"), base_dir=Path("/x"), prefix="ocq-", subnet=subnet)


def test_three_octets_are_the_24_labs_always_had() -> None:
    cfg = _cfg("10.99.0")
    assert str(cfg.network) == "10.99.0.0/24"
    assert cfg.ctl_address == "10.99.0.1"
    assert cfg.ssh_room == 139
    assert [cfg.address(cfg.ssh_index(i)) for i in (1, 139)] == ["10.99.0.11", "10.99.0.149"]
    assert cfg.address_patterns == ["10.99.0.*"]
    with pytest.raises(ValueError, match="room for 139"):
        cfg.ssh_index(140)


def test_a_22_holds_901_ssh_hosts_on_distinct_addresses_none_ending_in_0_or_255() -> None:
    cfg = _cfg("10.104.0.0/22")
    assert cfg.ctl_address == "10.104.0.1"
    assert cfg.ssh_room == 139 + 3 * 254
    addrs = [cfg.address(cfg.ssh_index(i)) for i in range(1, cfg.ssh_room + 1)]
    assert len(set(addrs)) == len(addrs)
    assert addrs[:2] == ["10.104.0.11", "10.104.0.12"] and addrs[139] == "10.104.1.1"
    assert addrs[-1] == "10.104.3.254"
    assert not [a for a in addrs if a.endswith((".0", ".255"))]
    # the first /24 keeps its layout: systemd hosts (151-249) and the NAS (.5) are never an ssh host's
    assert not {f"10.104.0.{o}" for o in [5, *range(151, 250)]} & set(addrs)
    assert cfg.address_patterns == [f"10.104.{i}.*" for i in range(4)]


@pytest.mark.parametrize("bad", ["10.104.0.0/25", "10.0.0.0/8"])
def test_networks_smaller_than_a_24_or_larger_than_a_16_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="a /16 to a /24"):
        _ = _cfg(bad).network
