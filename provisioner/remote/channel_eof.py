"""Sending a channel's EOF so that it can never reach sshd after the channel's CLOSE.

paramiko's `Channel.shutdown_write` builds the EOF message under the channel's lock but sends it after
releasing that lock. When the command on the host has already exited, the transport thread may answer the
server's CLOSE in that gap, and the EOF then goes out after our CLOSE. OpenSSH has freed the channel by
then and drops the whole connection ("ieof packet referred to nonexistent channel"), so every later command
on that host fails with "connection lost" (paramiko issue #1115, still open). Measured here before this
module: 3 runs in 20 of two threads sharing one connection failed so, under `stress-ng --cpu 2`.

Holding the channel's lock while the EOF is sent makes the transport thread wait in its CLOSE handler until
the EOF is on the wire. paramiko releases the lock because of key exchanges: while one is under way, a send
waits for the transport thread, which may itself be waiting for the channel's lock. So the EOF is sent under
the lock only while no key exchange is under way; one that starts in the instant between that check and the
send costs paramiko's 30 s send timeout and fails that one command, never the connection.
"""

from __future__ import annotations

import paramiko

_KEX_WAIT = 30.0  # paramiko's own bound on a send waiting for a key exchange


def send_eof(chan: paramiko.Channel) -> None:
    """`chan.shutdown_write()`, with the EOF sent while the channel cannot be closed under it."""
    transport = chan.transport
    if transport is None:
        return
    ready = transport.clear_to_send  # set while no key exchange is under way
    while True:
        if not ready.wait(_KEX_WAIT):
            raise paramiko.SSHException("key exchange did not finish while sending EOF")
        with chan.lock:
            if chan.closed or chan.eof_sent:
                return  # a CLOSE went out already, and paramiko sends an EOF before every CLOSE
            if not ready.is_set():
                continue  # a key exchange began: wait for it without holding the lock
            msg = chan._send_eof()  # type: ignore[attr-defined]  # paramiko's own builder, under its lock
            transport._send_user_message(msg)  # type: ignore[attr-defined]
            return
