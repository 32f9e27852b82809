"""The command line (`provision`): `main.py` parses and dispatches, one module per command, `console.py` for
exit codes, JSON, colours and logs. The only layer, with `provisioner/output/`, that prints."""

from provisioner.cli.main import main

__all__ = ["main"]
