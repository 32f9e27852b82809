"""Every sh script this tool runs on a host is built in this package, and nowhere else.

"What can this tool run as root on my host?" is answered by reading this folder:

- `shell.py`: `sh_script`, the one place a script's header (errexit or not, nounset always) is written.
- `trust.py`: who a step runs as; the service user is hostile (see its docstring for the design).
- `probe.py`: the batched, read-only fact probe and the file contents for diffs.
- `writes.py`: atomic batched writes with backups, restore, pending-restart marks.
- `locks.py`: the host lock (take, read, release, clear a dead run's), its result words and their parser.
- `systemd.py`: systemctl actions and the crash-loop look.
- `release.py`: pushed or fetched OpenClaw releases under their prefix: unpack, switch, prune.
- `openclaw_cli.py`: the OpenClaw CLI as an instance's own user (status, config schema, version).
- `dedupe.py`: the steps of `dedupe verify` inside the shared claim directory.

Every word of a path or name is quoted by `provisioner.remote.command.q`; scripts travel on stdin
(`provisioner.remote.connect.run_script`), never in an argv.
"""
