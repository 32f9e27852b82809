"""Links only SSH can watch: through a bastion's channel or a ProxyCommand's pipes there is no socket of ours for
the kernel to probe, and paramiko's keepalives ask for no answer, so a link cut behind the bastion went unnoticed
until a command timed out (300 s by default).

Every keepalive interval a thread opens a session channel on the connection and closes it again: the host's
answer is the proof of life, whatever a command in flight is doing. No answer within TCP_USER_TIMEOUT's bound
(`user_timeout_ms`) closes the connection with the reason, and the command in flight fails at once ("connection
lost ... the link stopped answering"). A refusal (sshd's MaxSessions) is an answer too.
"""

from __future__ import annotations

import threading

import paramiko


class ReplyWatch:
    """The watcher of one connection; `close()` it when the connection is closed on purpose."""

    def __init__(self, t: paramiko.Transport, interval: float, limit: float) -> None:
        self._t = t
        self.interval = interval
        self.limit = limit
        self._stop = threading.Event()
        self.reason = ""  # why it closed the connection, if it did
        self._thread = threading.Thread(target=self._run, name="ocp-reply-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self._t.is_active():
                return
            try:
                self._t.open_session(timeout=self.limit).close()
            except paramiko.ChannelException:
                continue  # refused: the host answered
            except (paramiko.SSHException, EOFError, OSError):
                if self._stop.is_set() or not self._t.is_active():
                    return  # closed meanwhile, on purpose or by a failure already reported
                self._lost()
                return

    def _lost(self) -> None:
        self.reason = f"no answer through the connection for {self.limit:g} s"
        self._t.close()

    def close(self) -> None:
        """The connection is closing on purpose: stop watching it."""
        self._stop.set()


def lost_reason(t: paramiko.Transport, watch: ReplyWatch | None) -> str | None:
    """Why a connection that died under a command did: the watcher's words if it ended it, else paramiko's."""
    if watch is not None and watch.reason:
        return watch.reason
    why = t.get_exception()
    return None if why is None else str(why) or type(why).__name__
