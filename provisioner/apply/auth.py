"""Reading back a gateway's token, only when the operator asks (`provision status --show-token HOST/INSTANCE`)."""

from __future__ import annotations

from provisioner.inventory.model import Instance
from provisioner.remote.connect import run_script, transport_root
from provisioner.remote.scripts.tokens import parse_shown, show_token_script
from provisioner.remote.transport import Transport


class TokenUnavailable(Exception):
    """The instance's env files on the host hold no gateway token (not applied yet, or removed by hand)."""


def read_token(t: Transport, inst: Instance, *, become: bool = False) -> str:
    """The OPENCLAW_GATEWAY_TOKEN its unit loads (the token file made on the host, then gateway.env), read as the
    service user; the host's journal records that it was shown."""
    files = [f for f in (inst.token_file, inst.env_file) if f]
    script = show_token_script(inst.service.user, inst.service.group, files, inst.address, transport_root(t))
    res = run_script(t, script, become=become, timeout=60)
    token = parse_shown(res.text())
    if token is None:
        raise TokenUnavailable(f"{inst.address}: no gateway token in {' or '.join(files)} on the host "
                               "(apply first, or the file was changed by hand)")
    return token
