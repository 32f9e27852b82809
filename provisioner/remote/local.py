"""The local transport: runs the same scripts on this machine, inside a directory that stands for a host's /."""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess

from provisioner.remote.command import Command
from provisioner.remote.transport import ChannelError, CommandTimeout, HttpResponse, Result, Sink


class LocalTransport:
    """A host whose / is `root` on the controller (the demo, `plan --offline`, tests without hosts)."""

    def __init__(self, host: str, root: str) -> None:
        self.host = host
        self.root = os.path.abspath(root)

    def run(self, cmd: Command, *, stdin: bytes | None = None, timeout: float | None = None,
            sink: Sink | None = None) -> Result:
        try:
            p = subprocess.run(["/bin/sh", "-c", cmd.shell()], input=stdin or b"", capture_output=True,
                               timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise CommandTimeout(self.host, f"command did not finish within {timeout:.0f} s") from exc
        if sink is not None:
            sink.write(p.stdout)
            return Result(p.returncode, b"", p.stderr)
        return Result(p.returncode, p.stdout, p.stderr)

    def http_get(self, port: int, path: str, *, timeout: float = 5.0) -> HttpResponse:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return HttpResponse(r.status, r.read())
        except OSError as exc:
            raise ChannelError(self.host, f"127.0.0.1:{port}: {exc}") from exc
        finally:
            conn.close()

    def put_file(self, local_path: str, remote_path: str, *, mode: int = 0o600) -> int:
        dest = os.path.join(self.root, remote_path.lstrip("/"))
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(local_path, dest)
        os.chmod(dest, mode)
        return os.path.getsize(dest)

    def close(self) -> None:
        pass
