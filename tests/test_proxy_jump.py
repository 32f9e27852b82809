"""proxy_jump without hosts: the located diagnostics for bad hops, unknown bastions and loops; routes through
inventory bastions; ssh_config completing what the inventory leaves unset; one bastion connection shared."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from provisioner.inventory.hops import route
from provisioner.remote import jump as jump_mod
from provisioner.remote.jump import Jumps
from provisioner.remote.sshconfig import with_ssh_config
from provisioner.remote.transport import ConnectError
from provisioner.validate import validate_text

INV = """\
version: 1
hosts:
  bast:
    address: 10.0.0.1
    ssh: {user: jumper, port: 2222}
    instances: {}
  inner:
    address: 10.1.0.1
    ssh: {proxy_jump: bast}
    instances: {main: {port: 18789}}
  deep:
    address: 10.2.0.1
    ssh: {proxy_jump: "inner,ops@10.1.0.9:2200"}
    instances: {main: {port: 18789}}
"""


def _validate(text: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    return validate_text(text, str(tmp_path / "inv.yaml"), check_configs=False)


def test_routes_go_through_inventory_bastions_with_their_own_settings_and_chain(tmp_path: Path) -> None:
    v = _validate(INV, tmp_path)
    assert v.ok, [d.format() for d in v.diagnostics]
    assert v.inventory is not None
    hops = route(v.inventory, v.inventory.host("deep"))
    assert [(h.address, h.port, h.user) for h in hops] == [
        ("10.0.0.1", 2222, "jumper"), ("10.1.0.1", 22, "root"), ("10.1.0.9", 2200, "ops"), ("10.2.0.1", 22, "root")]
    assert hops[0].label.startswith("bastion bast") and hops[2].label.startswith("bastion ops@10.1.0.9:2200")


@pytest.mark.parametrize(("jump", "words"), [
    ("nosuch", "bastion 'nosuch' is not a host of the inventory"),
    ("bad@@x", "'bad@@x' is not a bastion"),
    ("inner", "proxy_jump loops: bast -> inner -> bast"),
])
def test_a_bad_proxy_jump_is_a_located_error(tmp_path: Path, jump: str, words: str) -> None:
    v = _validate(INV.replace("ssh: {user: jumper, port: 2222}", f"ssh: {{user: jumper, proxy_jump: {jump}}}"),
                  tmp_path)
    errs = [d for d in v.diagnostics if d.code == "proxy-jump"]
    assert errs and words in errs[0].message, [d.format() for d in v.diagnostics]
    assert errs[0].span is not None and (errs[0].span.line, errs[0].span.col) == (5, 37)
    # a host behind the loop is not itself in it: only the hosts of the loop are told
    assert not any(d.message.startswith("deep:") for d in errs)


def test_ssh_config_fills_in_only_what_the_inventory_leaves_unset(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host gw-*\n    HostName 192.0.2.7\n    User cfguser\n    Port 2022\n"
                      f"    IdentityFile {tmp_path}/cfgkey\n    ProxyJump root@198.51.100.1\n")
    text = ("version: 1\ndefaults: {ssh: {config_file: ssh_config}}\nhosts:\n"
            "  a: {address: gw-a, instances: {main: {port: 18789}}}\n"
            "  b: {address: gw-b, ssh: {user: mine, port: 22, proxy_jump: none}, instances: {main: {port: 18789}}}\n")
    v = _validate(text, tmp_path)
    assert v.ok and v.inventory is not None, [d.format() for d in v.diagnostics]
    inv = with_ssh_config(v.inventory)
    a, b = inv.host("a"), inv.host("b")
    assert (a.address, a.ssh.user, a.ssh.port, a.ssh.identity_file, a.ssh.proxy_jump) == (
        "192.0.2.7", "cfguser", 2022, f"{tmp_path}/cfgkey", ("root@198.51.100.1",))
    assert (b.address, b.ssh.user, b.ssh.port, b.ssh.proxy_jump) == ("192.0.2.7", "mine", 22, ())


class _FakeTransport:
    def __init__(self) -> None:
        self.forwards: list[tuple[str, int]] = []

    def is_active(self) -> bool:
        return True

    def open_forward(self, address: str, port: int, timeout: float, *, for_host: str) -> Any:
        self.forwards.append((address, port))
        return object()

    def close(self) -> None:
        pass


def test_hosts_behind_one_bastion_share_one_connection_and_its_failure(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    v = _validate(INV, tmp_path)
    assert v.inventory is not None
    bastion_hops = route(v.inventory, v.inventory.host("inner"))[:-1]
    connects: list[str] = []
    gate = threading.Event()
    fake = _FakeTransport()

    def connect(self: Jumps, chain: Any, for_host: str) -> Any:
        connects.append(for_host)
        gate.wait(5)  # the others arrive while the first is still connecting
        return fake

    monkeypatch.setattr(jump_mod.Jumps, "_connect", connect)
    jumps = Jumps()
    threads = [threading.Thread(target=jumps.channel, args=(bastion_hops, f"10.1.0.{i}", 22, 5.0),
                                kwargs={"for_host": f"h{i}"}) for i in range(10)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(connects) == 1 and len(fake.forwards) == 10

    # a bastion that fails: the hosts that waited for that attempt get its error, naming it, without a try of
    # their own (ten hosts behind a dead bastion must not cost ten connect timeouts in a row)
    connects.clear()
    gate.clear()

    def refuse(self: Jumps, chain: Any, for_host: str) -> Any:
        connects.append(for_host)
        gate.wait(5)
        raise ConnectError("bastion b", "refused", retryable=True)

    monkeypatch.setattr(jump_mod.Jumps, "_connect", refuse)
    failing, errors = Jumps(), []

    def one(i: int) -> None:
        try:
            failing.channel(bastion_hops, f"10.1.0.{i}", 22, 5.0, for_host=f"h{i}")
        except ConnectError as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    while not connects:
        threading.Event().wait(0.01)
    gate.set()
    for t in threads:
        t.join()
    assert len(connects) == 1 and len(errors) == 10
    assert all(str(e) == f"{e.host}: via bastion b: refused" and e.retryable for e in errors)
