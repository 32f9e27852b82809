"""A delaying TCP relay: lab links with latency, since the lab kernel has no sch_netem.

Every byte that crosses the relay, in either direction, is held `rtt / 2` seconds before it is passed on, so a
request and its answer cost `rtt` more than on the bare bridge. The TCP handshake is accounted for too: the relay
opens the connection to the host 1.5 RTT after it accepted the client's, so the first bytes each way arrive when
they would over a real link (the client's first bytes reach the host at 1.5 RTT, the host's banner reaches the
client at 2 RTT after connect()). Every client (provision, pyinfra, ansible's OpenSSH) connects to the relay's
address and the host's own port on it, alike.

One process, one asyncio loop, one listening socket per host; run it inside the lab's client namespace:

    ip netns exec <ctl> python -m tests.lab.relay --rtt-ms 50 < routes.json     # [[listen_port, host, port], ...]

It prints `ready` on stdout once every port listens, and serves until SIGTERM/SIGINT; then it prints one JSON
line: how late it passed chunks on (`Lateness`) and the CPU seconds it used serving.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

CHUNK = 65536
HIGH_WATER = 4 << 20  # bytes held in one direction before the relay stops reading from that side


class Lateness:
    """How late the relay passed chunks on, past their due time: its own cost (and the load's), which must stay
    small against the delay it adds. A histogram in 0.1 ms steps, so that a long run keeps no sample list."""

    def __init__(self) -> None:
        self.counts: collections.Counter[int] = collections.Counter()

    def add(self, seconds: float) -> None:
        self.counts[max(0, int(seconds * 10000))] += 1

    def summary(self) -> dict[str, float]:
        n = sum(self.counts.values())
        out: dict[str, float] = {"chunks": n}
        if not n:
            return out
        keys = sorted(self.counts)
        for name, q in (("p50_ms", 0.5), ("p90_ms", 0.9), ("p99_ms", 0.99)):
            seen = 0
            for k in keys:
                seen += self.counts[k]
                if seen >= q * n:
                    out[name] = k / 10
                    break
        out["max_ms"] = keys[-1] / 10
        return out


LATE = Lateness()


class _Pipe:
    """One direction of one connection: read, hold each chunk `delay` seconds, write in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
        self.reader = reader
        self.writer = writer
        self.delay = delay
        self.held: collections.deque[tuple[float, bytes]] = collections.deque()
        self.size = 0
        self.more = asyncio.Event()  # something was queued
        self.room = asyncio.Event()  # below the high-water mark again
        self.room.set()

    async def read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                data = await self.reader.read(CHUNK)
                self.held.append((loop.time() + self.delay, data))
                self.size += len(data)
                self.more.set()
                if not data:
                    return
                if self.size > HIGH_WATER:
                    self.room.clear()
                    await self.room.wait()
        except OSError:
            self.held.append((loop.time(), b""))  # a reset: close the other side at once
            self.more.set()

    async def write(self, opened: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        await opened
        while True:
            while not self.held:
                self.more.clear()
                await self.more.wait()
            due, data = self.held[0]
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self.held.popleft()
            LATE.add(loop.time() - due)
            self.size -= len(data)
            if self.size <= HIGH_WATER:
                self.room.set()
            if not data:
                with contextlib.suppress(OSError):
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                return
            self.writer.write(data)
            await self.writer.drain()


async def _serve_one(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, host: str, port: int,
                     rtt: float) -> None:
    loop = asyncio.get_running_loop()
    half = rtt / 2
    opened: asyncio.Future[None] = loop.create_future()
    holder: dict[str, asyncio.StreamWriter] = {}
    up_r = asyncio.StreamReader(limit=CHUNK)

    # client -> host: the client's bytes are read (and their delay starts) while the host is not yet connected
    to_host = _Pipe(client_r, client_w, half)  # writer replaced below once the host's connection is open
    tasks = [asyncio.create_task(to_host.read())]
    try:
        await asyncio.sleep(3 * half)  # SYN, SYN-ACK, ACK: see the module's docstring
        up_r, up_w = await asyncio.open_connection(host, port, limit=CHUNK)
        sock = up_w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        holder["w"] = up_w
        to_host.writer = up_w
        opened.set_result(None)
    except OSError:
        for t in tasks:
            t.cancel()
        client_w.close()
        return
    to_client = _Pipe(up_r, client_w, half)
    tasks += [asyncio.create_task(to_host.write(opened)), asyncio.create_task(to_client.read()),
              asyncio.create_task(to_client.write(opened))]
    try:
        # both writers end on their side's EOF (or a reset): then the connection is done
        await asyncio.gather(tasks[1], tasks[3], return_exceptions=True)
    finally:
        for t in tasks:
            t.cancel()
        for w in (client_w, holder["w"]):
            w.close()


async def serve(routes: list[tuple[str, int, str, int]], rtt: float, ready: asyncio.Event | None = None,
                stop: asyncio.Event | None = None) -> None:
    """Listen on every (listen address, listen port) and relay to its (host, port) with `rtt` added."""
    servers = []
    for laddr, lport, host, port in routes:
        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter, host: str = host, port: int = port
                         ) -> None:
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with contextlib.suppress(asyncio.CancelledError):  # the relay is stopping
                await _serve_one(r, w, host, port, rtt)
        servers.append(await asyncio.start_server(handle, laddr, lport, limit=CHUNK, backlog=512,
                                                  reuse_address=True))
    if ready is not None:
        ready.set()
    stop = stop or asyncio.Event()
    try:
        await stop.wait()
    finally:
        for s in servers:
            s.close()


class RelayProcess:
    """The relay as a child process (`argv_prefix` puts it in a namespace), started and ready, or an error."""

    def __init__(self, routes: Sequence[tuple[int, str, int]], rtt_ms: float, *, listen: str = "0.0.0.0",
                 argv_prefix: Sequence[str] = ()) -> None:
        repo = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen(
            [*argv_prefix, sys.executable, "-m", "tests.lab.relay", "--rtt-ms", str(rtt_ms), "--listen", listen],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=repo)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps([list(r) for r in routes]))
        self.proc.stdin.close()
        line = self.proc.stdout.readline()  # "ready", or nothing if it died
        if line.strip() != "ready":
            self.stop()
            raise RuntimeError(f"the relay did not start (exit {self.proc.returncode})")

    def stop(self) -> dict[str, float]:
        """Stop it; what it says of its run (see `Lateness`, and `cpu_s`), or {} if it could not say."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        stats: dict[str, float] = {}
        if self.proc.stdout is not None and not self.proc.stdout.closed:
            with contextlib.suppress(ValueError):
                stats = json.loads(self.proc.stdout.read() or "{}")
            self.proc.stdout.close()
        return stats

    def __enter__(self) -> RelayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rtt-ms", type=float, required=True, help="round-trip time the relay adds")
    ap.add_argument("--listen", default="0.0.0.0", help="address the relay listens on")
    args = ap.parse_args()
    routes = [(args.listen, int(lp), str(h), int(p)) for lp, h, p in json.load(sys.stdin)]

    async def run() -> None:
        ready, stop = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(serve(routes, args.rtt_ms / 1000, ready, stop))
        await ready.wait()
        start.append(_cpu())
        print("ready", flush=True)
        await task

    start: list[float] = []
    asyncio.run(run())
    # CPU while serving (not the interpreter's start): what relaying cost
    print(json.dumps({**LATE.summary(), "cpu_s": round(_cpu() - start[0], 3)}), flush=True)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


if __name__ == "__main__":
    main()
