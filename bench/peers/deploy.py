"""The benchmark job for pyinfra: per instance a state dir, its openclaw.json, gateway.env (0600) and unit."""

import os

from pyinfra import host
from pyinfra.operations import files

T = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
for i in range(int(host.data.get("instances", 2))):
    profile = "main" if i == 0 else ("rescue" if i == 1 else f"gw{i}")
    level = host.data.get("main_log_level", "info") if i == 0 else "info"
    state = f"/home/openclaw/.openclaw-{profile}"
    v = dict(profile=profile, port=18789 + 1000 * i, log_level=level, token=host.data.token)
    files.directory(name=f"{profile} dir", path=state, mode="700")
    files.template(name=f"{profile} config", src=f"{T}/openclaw.json.j2", dest=f"{state}/openclaw.json",
                   mode="600", **v)
    files.template(name=f"{profile} env", src=f"{T}/gateway.env.j2", dest=f"{state}/gateway.env", mode="600", **v)
    files.template(name=f"{profile} unit", src=f"{T}/gateway.service.j2",
                   dest=f"/etc/systemd/system/openclaw-gateway-{profile}.service", mode="644", **v)
