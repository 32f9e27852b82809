"""The lab's delaying relay (tests/lab/relay.py) adds what it claims: the RTT of a TCP ping-pong through it, a
connection's first exchange as over a real link of that RTT, and the same with 100 connections at once.

Not a lab test: the relay runs as its real child process on 127.0.0.1, in front of an echo server of this test.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.lab.relay import RelayProcess

pytestmark = pytest.mark.timeout(120)

RTT = 0.050
# Never faster than the link, exactly; slower only by the load: the best of several exchanges is what the relay
# costs, the rest is a shared 2-core machine (load 15-25) waking the relay, the echo server and this test. The
# slack is below half a one-way delay, so a delay applied twice or left out still fails.
SLACK = 0.010


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    request_queue_size = 256  # 100 connections arrive at once (the default backlog of 5 drops SYNs)


@pytest.fixture(scope="module")
def echo() -> Iterator[int]:
    server = _Server(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _relay(echo: int, rtt: float = RTT) -> tuple[int, RelayProcess]:
    with socket.socket() as probe:  # a free port for the relay
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return port, RelayProcess([(port, "127.0.0.1", echo)], rtt * 1000, listen="127.0.0.1")


@pytest.fixture(scope="module")
def relayed(echo: int) -> Iterator[int]:
    """The relay's port on 127.0.0.1, in front of the echo server."""
    port, relay = _relay(echo)
    with relay:
        yield port


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _ping(s: socket.socket, payload: bytes = b"x") -> float:
    t0 = time.perf_counter()
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        got += s.recv(65536)
    assert got == payload
    return time.perf_counter() - t0


def test_a_ping_pong_through_the_relay_takes_the_rtt(relayed: int) -> None:
    with _connect(relayed) as s:
        _ping(s)
        rtts = [_ping(s) for _ in range(20)]
    assert RTT <= min(rtts) < RTT + SLACK, sorted(rtts)


def _first_exchange(port: int) -> float:
    t0 = time.perf_counter()
    with _connect(port) as s:
        _ping(s)
        return time.perf_counter() - t0


def test_connect_and_first_exchange_take_two_rtts_as_on_a_real_link(relayed: int, echo: int) -> None:
    """Real TCP: the handshake is 1 RTT, then the request and its answer 1 more. A new connection wakes the
    relay, the echo server (a thread per connection) and this test several times, which a loaded machine makes
    slow whatever the delay: what the delay adds is measured against the same relay without delay, run for run."""
    plain_port, plain = _relay(echo, 0.0)
    firsts, plains = [], []
    with plain:
        for _ in range(10):
            firsts.append(_first_exchange(relayed))
            plains.append(_first_exchange(plain_port))
    assert min(firsts) >= 2 * RTT, sorted(firsts)  # never faster than the link
    assert min(firsts) - min(plains) < 2 * RTT + SLACK, (sorted(firsts), sorted(plains))


def test_bulk_data_both_ways_arrives_whole_and_in_order(relayed: int) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    with _connect(relayed) as s:
        assert _ping(s, data) < 2.0


def test_a_hundred_connections_at_once_are_passed_on_in_time(echo: int) -> None:
    """The relay is one process for the whole lab: with 100 connections busy at once it never passes a chunk on
    early, and its CPU per chunk (its own account, load-independent unlike its lateness) stays small: at ~70 µs a
    chunk, a 100-host no-op plan (~40 chunks a host) costs it ~0.3 s of CPU spread over the run."""
    port, relay = _relay(echo)
    with relay:
        socks = [_connect(port) for _ in range(100)]
        rtts: list[float] = []
        try:
            lock = threading.Lock()

            def pings(s: socket.socket) -> None:
                got = [_ping(s) for _ in range(5)]
                with lock:
                    rtts.extend(got)
            threads = [threading.Thread(target=pings, args=(s,)) for s in socks]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            for s in socks:
                s.close()
        stats = relay.stop()
    assert len(rtts) == 500 and min(rtts) >= RTT
    assert stats["chunks"] >= 1000, stats
    assert stats["cpu_s"] / stats["chunks"] < 300e-6, stats
