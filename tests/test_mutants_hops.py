"""The route to a host through its bastions, exactly: every field of every hop (address, port, user, key and
whether the inventory named it, known_hosts, host-key policy, timeouts, label), the hop syntax at its bounds,
ssh_config completing an address hop, loops and the 8-bastion bound. Found by mutation testing
(`scripts/mutation inventory`, run 6): the fast tests checked the addresses, ports and users of one chain, so
most of `inventory/hops.py` (the keys, timeouts and labels a connection uses) could change unseen.

README: proxy_jump (bastions: inventory hosts with their own ssh: settings, or [user@]host[:port] with the
jumping host's keys; an ssh_config file fills in what the inventory leaves unset)."""

from __future__ import annotations

import pytest

from provisioner.core.policies import HostKeyPolicy
from provisioner.inventory.build import jump_hops
from provisioner.inventory.hops import (
    MAX_HOPS,
    Hop,
    RouteError,
    address_hop,
    is_bare_name,
    parse_hop,
    route,
    route_of_one,
)
from provisioner.inventory.model import Host, Inventory, OpenClawSettings, ServiceSettings, SSHSettings
from provisioner.inventory.yamlsource import SpanTable
from provisioner.validate import validate_text

# the jumping host's settings, none of them a default: a hop that takes one from elsewhere shows
VIA = SSHSettings(user="deploy", port=2201, identity_file="/keys/deploy", known_hosts="/kh/fleet",
                  host_key_policy=HostKeyPolicy.ACCEPT_NEW, connect_timeout=4.5, keepalive=7.0,
                  config_file="/cfg/ssh_config", explicit=frozenset({"user", "port"}))


def _host(name: str, address: str, connection: str = "ssh", **ssh: object) -> Host:
    return Host(name, address, connection, None, SSHSettings(**ssh), ServiceSettings(), (), (),  # type: ignore[arg-type]
                ("hosts", name))


def _inv(*hosts: Host) -> Inventory:
    return Inventory("inv.yaml", "", OpenClawSettings(), None, hosts, {}, SpanTable("inv.yaml"))


@pytest.mark.parametrize(("text", "parsed"), [
    ("gw", (None, "gw", None)),
    ("gw-b.example.org", (None, "gw-b.example.org", None)),
    ("ops@10.0.0.9", ("ops", "10.0.0.9", None)),
    ("_svc-1$@h:1", ("_svc-1$", "h", 1)),  # the lowest port, and a user name of every allowed kind of character
    ("h:65535", (None, "h", 65535)),  # the highest
    ("h:00022", (None, "h", 22)),  # five digits, leading zeros
    ("[2001:db8::1]", (None, "2001:db8::1", None)),  # an IPv6 address loses its brackets
    ("u@[fe80::1%2]:2222", ("u", "fe80::1%2", 2222)),  # a zone by number
    ("9gw_a", (None, "9gw_a", None)),
    ("XEN-1X", (None, "XEN-1X", None)),  # only the brackets of an IPv6 address are taken off
])
def test_a_hop_is_user_host_and_port(text: str, parsed: tuple[str | None, str, int | None]) -> None:
    assert parse_hop(text) == parsed


@pytest.mark.parametrize(("text", "message"), [
    ("h:0", "'h:0': port 0 is out of range"),
    ("h:65536", "'h:65536': port 65536 is out of range"),
    ("h:99999", "'h:99999': port 99999 is out of range"),
    ("h:123456", "'h:123456' is not a bastion: write an inventory host's name or [user@]host[:port]"),
    ("bad@@x", "'bad@@x' is not a bastion: write an inventory host's name or [user@]host[:port]"),
    ("Ops@h", "'Ops@h' is not a bastion: write an inventory host's name or [user@]host[:port]"),  # users: lower case
    ("-h", "'-h' is not a bastion: write an inventory host's name or [user@]host[:port]"),
    ("h:", "'h:' is not a bastion: write an inventory host's name or [user@]host[:port]"),
    ("x h", "'x h' is not a bastion: write an inventory host's name or [user@]host[:port]"),
])
def test_a_hop_not_in_that_form_is_refused_in_words(text: str, message: str) -> None:
    with pytest.raises(RouteError) as err:
        parse_hop(text)
    assert str(err.value) == message


@pytest.mark.parametrize(("value", "hops"), [
    (None, ()),
    ("b1", ("b1",)),
    ("b1,u@b2:2", ("b1", "u@b2:2")),  # OpenSSH's form, first hop first
    (" b1 , b2 ", ("b1", "b2")),
    (["b1", " b2 "], ("b1", "b2")),  # a YAML list alike
    ("none", ()),  # OpenSSH's word for no bastion, e.g. over a default
    (["none"], ()),
    ("none,b1", ("none", "b1")),  # only alone
])
def test_proxy_jump_is_a_list_of_hops_first_first(value: object, hops: tuple[str, ...]) -> None:
    assert jump_hops(value) == hops


@pytest.mark.parametrize(("text", "bare"), [
    ("gw", True), ("gw-b_2", True), ("XEN", True),
    ("gw.example", False), ("u@gw", False), ("gw:22", False), ("[::1]", False),
])
def test_a_hop_without_dot_at_colon_or_bracket_is_a_name(text: str, bare: bool) -> None:
    assert is_bare_name(text) is bare


def test_an_address_hop_has_the_jumping_hosts_keys_and_timeouts() -> None:
    assert address_hop("ops@10.0.0.9:2200", VIA, None) == Hop(
        "bastion ops@10.0.0.9:2200 (10.0.0.9:2200)", "10.0.0.9", 2200, "ops", "/keys/deploy", False, "/kh/fleet",
        HostKeyPolicy.ACCEPT_NEW, 4.5, 7.0, None)
    # no user or port written: the jumping host's user, and port 22 (not the jumping host's port)
    assert address_hop("jump.example", VIA, None) == Hop(
        "bastion jump.example (jump.example:22)", "jump.example", 22, "deploy", "/keys/deploy", False, "/kh/fleet",
        HostKeyPolicy.ACCEPT_NEW, 4.5, 7.0, None)
    named = SSHSettings(identity_file="/keys/only", explicit=frozenset({"identity_file"}))
    assert address_hop("jump.example", named, None) == Hop(
        "bastion jump.example (jump.example:22)", "jump.example", 22, "root", "/keys/only", True,
        "~/.ssh/known_hosts", HostKeyPolicy.STRICT, 10.0, 3.0, None)


# what a config file's Host block says of the hop's host (paramiko's keys: lower case, values as text)
CFG_ALL = {"hostname": "192.0.2.9", "port": "2022", "user": "cfguser", "identityfile": "/cfg/key"}


@pytest.mark.parametrize(("text", "via", "opts", "want"), [
    # everything from the config file; its key counts as named (only it is offered)
    ("jump.example", VIA, CFG_ALL,
     ("bastion jump.example (192.0.2.9:2022)", "192.0.2.9", 2022, "cfguser", "/cfg/key", True)),
    # an alias (a bare name) is fine with a config file
    ("jumpalias", VIA, CFG_ALL, ("bastion jumpalias (192.0.2.9:2022)", "192.0.2.9", 2022, "cfguser", "/cfg/key",
                                 True)),
    # what the hop itself says wins over the file
    ("ops@jump.example:2200", VIA, CFG_ALL,
     ("bastion ops@jump.example:2200 (192.0.2.9:2200)", "192.0.2.9", 2200, "ops", "/cfg/key", True)),
    # a key the inventory named wins over the file's
    ("jump.example", SSHSettings(identity_file="/keys/mine", config_file="/c", explicit=frozenset({"identity_file"})),
     CFG_ALL, ("bastion jump.example (192.0.2.9:2022)", "192.0.2.9", 2022, "cfguser", "/keys/mine", True)),
    # the file says nothing: the name as written, port 22, the jumping host's user and (not named) key
    ("jumpalias", VIA, {}, ("bastion jumpalias (jumpalias:22)", "jumpalias", 22, "deploy", "/keys/deploy", False)),
    # empty values and a port that is not a number say nothing either
    ("jump.example", VIA, {"hostname": "", "port": "22x", "user": "", "identityfile": ""},
     ("bastion jump.example (jump.example:22)", "jump.example", 22, "deploy", "/keys/deploy", False)),
    ("jump.example", VIA, {"port": "0"}, ("bastion jump.example (jump.example:22)", "jump.example", 22, "deploy",
                                          "/keys/deploy", False)),
    ("jump.example", VIA, {"port": "65535"}, ("bastion jump.example (jump.example:65535)", "jump.example", 65535,
                                              "deploy", "/keys/deploy", False)),
])
def test_ssh_config_completes_an_address_hop(text: str, via: SSHSettings, opts: dict[str, object],
                                             want: tuple[object, ...]) -> None:
    asked: list[tuple[str, str | None]] = []

    def lookup(name: str, config_file: str | None) -> dict[str, object]:
        asked.append((name, config_file))
        return opts

    hop = address_hop(text, via, lookup)
    assert (hop.label, hop.address, hop.port, hop.user, hop.identity_file, hop.identity_explicit) == want
    assert (hop.known_hosts, hop.host_key_policy, hop.connect_timeout, hop.keepalive, hop.proxy_command) == (
        via.known_hosts, via.host_key_policy, via.connect_timeout, via.keepalive, None)
    # looked up by the host part of the hop, in the jumping host's file
    assert asked == [(parse_hop(text)[1], via.config_file)]


def test_a_bare_name_needs_an_inventory_host_or_a_config_file() -> None:
    def lookup(name: str, config_file: str | None) -> dict[str, object]:
        raise AssertionError("no config file to look in")

    no_file = SSHSettings()
    for via, look in ((no_file, lookup), (no_file, None), (VIA, None)):
        with pytest.raises(RouteError) as err:
            address_hop("jumpalias", via, look)
        assert str(err.value) == "bastion 'jumpalias' is not a host of the inventory"
    # an address needs neither, and without a file nothing is looked up
    assert address_hop("jump.example", no_file, lookup).address == "jump.example"


def test_a_route_through_inventory_bastions_uses_each_hosts_own_settings_and_labels() -> None:
    bast = _host("bast", "10.0.0.1", user="jumper", port=2222, identity_file="/k/bast", known_hosts="/kh/b",
                 connect_timeout=2.0, keepalive=9.0, explicit=frozenset({"identity_file"}))
    inner = _host("inner", "10.1.0.1", proxy_jump=("bast",), host_key_policy=HostKeyPolicy.ACCEPT_NEW)
    deep = _host("deep", "10.2.0.1", proxy_jump=("inner", "ops@10.1.0.9:2200"), user="app", port=2022,
                 connect_timeout=6.0)
    inv = _inv(bast, inner, deep)
    assert route(inv, deep) == [
        Hop("bastion bast (10.0.0.1:2222)", "10.0.0.1", 2222, "jumper", "/k/bast", True, "/kh/b",
            HostKeyPolicy.STRICT, 2.0, 9.0, None),
        Hop("bastion inner (10.1.0.1:22)", "10.1.0.1", 22, "root", "~/.ssh/id_ed25519", False, "~/.ssh/known_hosts",
            HostKeyPolicy.ACCEPT_NEW, 10.0, 3.0, None),
        # an address hop takes the settings of the host that jumps through it: deep's
        Hop("bastion ops@10.1.0.9:2200 (10.1.0.9:2200)", "10.1.0.9", 2200, "ops", "~/.ssh/id_ed25519", False,
            "~/.ssh/known_hosts", HostKeyPolicy.STRICT, 6.0, 3.0, None),
        Hop("deep (10.2.0.1:2022)", "10.2.0.1", 2022, "app", "~/.ssh/id_ed25519", False, "~/.ssh/known_hosts",
            HostKeyPolicy.STRICT, 6.0, 3.0, None),
    ]
    # a host without bastions is its own only hop, labelled by its name alone
    assert route(inv, bast) == [route_of_one(bast)] == [
        Hop("bast (10.0.0.1:2222)", "10.0.0.1", 2222, "jumper", "/k/bast", True, "/kh/b", HostKeyPolicy.STRICT,
            2.0, 9.0, None)]


def test_every_hop_of_a_route_is_completed_from_its_own_hosts_config_file() -> None:
    # h jumps through an address, then an inventory bastion; that bastion jumps through an ssh_config alias
    files: list[tuple[str, str | None]] = []

    def lookup(name: str, config_file: str | None) -> dict[str, object]:
        files.append((name, config_file))
        return {"hostname": f"{name}.example", "port": "2022"}

    bast = _host("bast", "10.0.0.1", proxy_jump=("edge",), config_file="/cfg/bast")
    h = _host("h", "10.0.0.2", proxy_jump=("ops@front", "bast"), config_file="/cfg/h", user="app")
    hops = route(_inv(bast, h), h, lookup)
    assert [(x.label, x.address, x.port, x.user) for x in hops] == [
        ("bastion ops@front (front.example:2022)", "front.example", 2022, "ops"),
        ("bastion edge (edge.example:2022)", "edge.example", 2022, "root"),
        ("bastion bast (10.0.0.1:22)", "10.0.0.1", 22, "root"),
        ("h (10.0.0.2:22)", "10.0.0.2", 22, "app")]
    assert files == [("front", "/cfg/h"), ("edge", "/cfg/bast")]


def test_route_of_one_ignores_bastions_and_keeps_a_proxy_command() -> None:
    h = _host("h", "10.0.0.5", proxy_jump=("nosuch",), proxy_command="nc -x socks:1080 %h %p", user="u", port=2,
              identity_file="/k", known_hosts="/kh", host_key_policy=HostKeyPolicy.ACCEPT_NEW, connect_timeout=1.5,
              keepalive=0.5, explicit=frozenset({"identity_file"}))
    assert route_of_one(h) == Hop("h (10.0.0.5:2)", "10.0.0.5", 2, "u", "/k", True, "/kh", HostKeyPolicy.ACCEPT_NEW,
                                  1.5, 0.5, "nc -x socks:1080 %h %p")


def test_proxy_jump_wins_over_a_proxy_command_as_in_openssh() -> None:
    alone = _host("a", "10.0.0.2", proxy_command="connect-proxy %h %p")
    jumping = _host("b", "10.0.0.3", proxy_command="connect-proxy %h %p", proxy_jump=("jump.example",))
    inv = _inv(alone, jumping)
    assert [h.proxy_command for h in route(inv, alone)] == ["connect-proxy %h %p"]
    assert [h.proxy_command for h in route(inv, jumping)] == [None, None]


def test_only_an_ssh_host_of_the_inventory_is_a_bastion_by_name() -> None:
    # a local host of that name is no bastion: the name is then an unknown one
    inv = _inv(_host("bast", "10.0.0.1", connection="local"), h := _host("h", "10.0.0.2", proxy_jump=("bast",)))
    with pytest.raises(RouteError) as err:
        route(inv, h)
    assert str(err.value) == "bastion 'bast' is not a host of the inventory"
    # the first host of that name that is one
    inv = _inv(_host("bast", "10.0.0.1", connection="local"), _host("bast", "10.0.0.7"), h)
    assert [x.address for x in route(inv, h)] == ["10.0.0.7", "10.0.0.2"]


@pytest.mark.parametrize(("jumps", "message"), [
    ({"a": ("b",), "b": ("a",)}, "proxy_jump loops: a -> b -> a"),
    ({"a": ("b",), "b": ("c",), "c": ("b",)}, "proxy_jump loops: a -> b -> c -> b"),
    ({"a": ("a",)}, "proxy_jump loops: a -> a"),
])
def test_a_loop_of_bastions_is_refused_naming_it(jumps: dict[str, tuple[str, ...]], message: str) -> None:
    hosts = [_host(n, f"10.0.0.{i}", proxy_jump=jumps.get(n, ())) for i, n in enumerate("abc", 1)]
    with pytest.raises(RouteError) as err:
        route(_inv(*hosts), hosts[0])
    assert str(err.value) == message


@pytest.mark.parametrize("inventory_chain", [False, True], ids=["addresses", "through-an-inventory-bastion"])
def test_at_most_8_bastions(inventory_chain: bool) -> None:
    # the bound counts every hop of the route, also those an inventory bastion brings with it
    addresses = tuple(f"10.9.0.{i}" for i in range(1, MAX_HOPS + 2))
    first = (_host("b", "10.8.0.1", proxy_jump=addresses[:3]),) if inventory_chain else ()
    lead = ("b",) if inventory_chain else addresses[:4]
    for n, ok in ((MAX_HOPS, True), (MAX_HOPS + 1, False)):
        h = _host("h", "10.0.0.1", proxy_jump=lead + addresses[4:4 + n - 4])
        if ok:
            assert len(route(_inv(*first, h), h)) == MAX_HOPS + 1
            continue
        with pytest.raises(RouteError) as err:
            route(_inv(*first, h), h)
        assert str(err.value) == "h: more than 8 bastions"


PJ_HINT = ("(write user@host, host:port or a name with a dot for an address; an alias needs ssh: {config_file: "
           "...})")
NOT_A_BASTION = "is not a bastion: write an inventory host's name or [user@]host[:port]"

NINE = "a.x,b.x,c.x,d.x,e.x,f.x,g.x,h.x,i.x"  # one bastion too many

# the proxy-jump rule: every inventory, with every diagnostic validate gives it, located where proxy_jump was written
JUMP_CASES = {
    # of two groups, the one layered last wins: its line is the one told
    "group-vars": ("groups:\n  a: {hosts: [h], vars: {ssh: {proxy_jump: nosuch}}}\n"
                   "  b: {hosts: [h], vars: {ssh: {proxy_jump: 'bad@@x'}}}\n"
                   "hosts:\n  h: {address: 10.0.0.1, instances: {}}\n",
                   [f"j.yaml:4:44: error: h: 'bad@@x' {NOT_A_BASTION}"]),
    # from the defaults; a local host has no route, whatever the defaults say
    "defaults": ("defaults: {ssh: {proxy_jump: nosuch}}\nhosts:\n  h: {address: 10.0.0.1, instances: {}}\n"
                 "  l: {connection: local, root: /tmp/x, instances: {}}\n",
                 [f"j.yaml:2:30: error: h: bastion 'nosuch' is not a host of the inventory {PJ_HINT}"]),
    # the host's own value wins over a group's and the defaults'
    "host-over-group": ("defaults: {ssh: {proxy_jump: d.example}}\ngroups:\n  g: {hosts: [h], vars: {ssh: {proxy_jump: "
                        "g.example}}}\nhosts:\n  h: {address: 10.0.0.1, ssh: {proxy_jump: nosuch}, instances: {}}\n",
                        [f"j.yaml:6:44: error: h: bastion 'nosuch' is not a host of the inventory {PJ_HINT}"]),
    # every bad hop is told, each once, and then no route is tried
    "each-bad-hop": ("hosts:\n  l: {connection: local, root: /tmp/x, instances: {}}\n"
                     "  h: {address: 10.0.0.1, ssh: {proxy_jump: 'l,nosuch,bad@@x,ok.example,h:0'}, instances: {}}\n",
                     ["j.yaml:4:44: error: h: bastion 'l' is a local host, not one to jump through",
                      f"j.yaml:4:44: error: h: bastion 'nosuch' is not a host of the inventory {PJ_HINT}",
                      f"j.yaml:4:44: error: h: 'bad@@x' {NOT_A_BASTION}",
                      "j.yaml:4:44: error: h: 'h:0': port 0 is out of range"]),
    # with a config file a bare name is an alias the file may define
    "alias-with-config": ("hosts:\n  h: {address: 10.0.0.1, ssh: {proxy_jump: alias, config_file: /c}, "
                          "instances: {}}\n", []),
    "addresses-and-hosts": ("hosts:\n  b: {address: 10.0.0.2, instances: {}}\n"
                            "  h: {address: 10.0.0.1, ssh: {proxy_jump: [b, 'u@b.example:2', '[::1]']}, "
                            "instances: {}}\n", []),
    "eight-bastions": ("hosts:\n  h: {address: 10.0.0.1, ssh: {proxy_jump: 'a.x,b.x,c.x,d.x,e.x,f.x,g.x,h.x'}, "
                       "instances: {}}\n", []),
    # a bad hop is told alone: the route (here also too long) is not tried
    **{f"nine-then-{kind}": ("hosts:\n  l: {connection: local, root: /tmp/x, instances: {}}\n"
                             f"  h: {{address: 10.0.0.1, ssh: {{proxy_jump: '{NINE},{hop}'}}, instances: {{}}}}\n",
                             [f"j.yaml:4:44: error: h: {words}"])
       for kind, hop, words in (("local", "l", "bastion 'l' is a local host, not one to jump through"),
                                ("bad", "bad@@x", f"'bad@@x' {NOT_A_BASTION}"),
                                ("unknown", "nosuch", f"bastion 'nosuch' is not a host of the inventory {PJ_HINT}"))},
    # each host is told of its own bad hops
    "two-hosts": ("hosts:\n  h: {address: 10.0.0.1, ssh: {proxy_jump: nosuch}, instances: {}}\n"
                  "  k: {address: 10.0.0.2, ssh: {proxy_jump: 'k@@x'}, instances: {}}\n",
                  [f"j.yaml:3:44: error: h: bastion 'nosuch' is not a host of the inventory {PJ_HINT}",
                   f"j.yaml:4:44: error: k: 'k@@x' {NOT_A_BASTION}"]),
    # a route of more than 8 bastions, counted with those an inventory bastion brings: the host is named once
    "nine-bastions": ("hosts:\n  h: {address: 10.0.0.1, ssh: {proxy_jump: 'a.x,b.x,c.x,d.x,e.x,f.x,g.x,h.x,i.x'}, "
                      "instances: {}}\n", ["j.yaml:3:44: error: h: more than 8 bastions"]),
    "nine-through-a-bastion": ("hosts:\n  b: {address: 10.0.0.2, ssh: {proxy_jump: 'a.x,b.x,c.x,d.x'}, instances: {}}\n"
                               "  h: {address: 10.0.0.1, ssh: {proxy_jump: 'b,e.x,f.x,g.x,h.x,i.x'}, instances: {}}\n"
                               "  c: {address: 10.0.0.3, ssh: {proxy_jump: h}, instances: {}}\n",
                               ["j.yaml:4:44: error: h: more than 8 bastions",
                                "j.yaml:5:44: error: c: h: more than 8 bastions"]),
    # the hosts of a loop are told; a host behind it is not (its own proxy_jump is fine)
    "loop": ("hosts:\n  a: {address: 10.0.0.1, ssh: {proxy_jump: b}, instances: {}}\n"
             "  b: {address: 10.0.0.2, ssh: {proxy_jump: a}, instances: {}}\n"
             "  c: {address: 10.0.0.3, ssh: {proxy_jump: a}, instances: {}}\n",
             ["j.yaml:3:44: error: a: proxy_jump loops: a -> b -> a",
              "j.yaml:4:44: error: b: proxy_jump loops: b -> a -> b"]),
}


@pytest.mark.parametrize("name", JUMP_CASES)
def test_the_proxy_jump_rule_tells_each_bad_hop_where_it_was_written(name: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCP_NO_VALIDATION_CACHE", "1")
    text, diagnostics = JUMP_CASES[name]
    v = validate_text("version: 1\n" + text, "j.yaml", check_configs=False)
    assert [d.format() for d in v.diagnostics] == diagnostics
    assert all(d.code == "proxy-jump" for d in v.diagnostics)
