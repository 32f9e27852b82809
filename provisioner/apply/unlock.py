"""Clear a host lock left by a killed run: read the lock, judge whether its run is alive, clear it if allowed.

A lock whose run is alive, or was taken from a controller this one cannot check, stays unless forced.
"""

from __future__ import annotations

from provisioner.apply.locks import Liveness, liveness, parse_holder
from provisioner.remote.connect import run_script, transport_root
from provisioner.remote.scripts.locks import (
    BUSY,
    CLEARED,
    FREE,
    HELD,
    clear_lock_script,
    parse_lock_answer,
    read_lock_script,
)
from provisioner.remote.transport import Transport


def unlock_host(t: Transport, *, become: bool, force: bool = False) -> tuple[bool, str]:
    """(ok, what was found and done): ok when the host is left with no lock, or none was there."""
    root = transport_root(t)
    res = run_script(t, read_lock_script(root), become=become)
    found = parse_lock_answer(res.text())
    if not res.ok or found.word not in (HELD, FREE):
        return False, f"cannot read the lock: {res.err_text()[:300]}"
    if found.word == FREE:
        return True, "not locked"
    holder = parse_holder(found.holder)
    state = liveness(holder)
    if state is Liveness.LIVE and not force:
        return False, f"held by a run that is still alive ({holder.describe()}); not cleared"
    if state is Liveness.UNKNOWN and not force:
        return False, (f"held by {holder.describe()}, which this controller cannot check; not cleared "
                       "(--force clears it)")
    res = run_script(t, clear_lock_script(found.holder, root), become=become, timeout=90)
    cleared = parse_lock_answer(res.text())
    if cleared.word == BUSY:
        return False, "not cleared: a script of that run is still running on the host after 60 s"
    if cleared.word == CLEARED:
        what = {Liveness.DEAD: "its run is dead", Liveness.LIVE: "forced; its run is still alive",
                Liveness.UNKNOWN: "forced"}[state]
        return True, f"cleared the lock of {holder.describe()} ({what})"
    if cleared.word == FREE:
        return True, "not locked (released meanwhile)"
    return False, f"not cleared: the lock changed hands meanwhile ({res.text().strip().removeprefix(HELD + ' ')})"
