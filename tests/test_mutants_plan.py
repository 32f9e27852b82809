"""Planning, exactly: every Change a host gets for its OpenClaw release, with its reason and the fingerprints apply
re-checks. Found by mutation testing (`scripts/mutation plan`): the fast tests looked at the kinds and targets of
release changes only, so a wrong reason, fingerprint, pruning order or source went unnoticed.

README, "Installing OpenClaw itself": the release is pushed only to hosts that lack it (`push` from the controller's
cache, `registry` fetched by the host's own npm); `<prefix>/current` is switched once the gateways are healthy on the
new version; a downgrade must be explicit (`allow_downgrade: true`); releases beyond `keep` are pruned."""

from __future__ import annotations

import pytest

from provisioner.core.desired import DesiredHost, DesiredPlugin, DesiredRelease
from provisioner.core.observed import ObservedHost
from provisioner.plan import plan_host, release_fingerprint

ON_HOST = {"2026.9.4": "openclaw=2026.9.4 node=24.21.0 sha256=a",
           "2026.9.10": "openclaw=2026.9.10 node=24.21.0 sha256=b",
           "2026.9.5": "openclaw=2026.9.5 node=24.21.0"}
PUSH = "pushed from the controller's cache"
SWITCH = "once the gateways are healthy on it"
# a switch away from a running release first backs up each instance's state with that release (issue 15)
BACKUP_FIRST = "; first, each instance's state is backed up on the host (openclaw backup create, 2026.9.5)"


def _plan(release: DesiredRelease, current: str | None, releases: dict[str, str] | None = None) -> list[tuple]:
    obs = ObservedHost("h", releases=dict(ON_HOST if releases is None else releases), current_release=current)
    hp = plan_host(DesiredHost("h", "", "/root", (), (), (), release), obs)
    assert hp.error is None, hp.error
    assert hp.host == "h"
    assert {(c.host, c.instance) for c in hp.changes} <= {("h", None)}
    return [(c.target, c.action.value, c.reason, c.before, c.after, c.kind.value) for c in hp.changes]


@pytest.mark.parametrize(("release", "current", "releases", "changes"), [
    pytest.param(DesiredRelease("/opt/oc", "2026.9.6", "24.21.0", "push", keep=2), "2026.9.5", None, [
        ("/opt/oc/2026.9.6", "create", f"install OpenClaw 2026.9.6 with node 24.21.0, {PUSH}", "absent",
         "release:openclaw=2026.9.6 node=24.21.0", "release"),
        ("/opt/oc/current", "update", f"switch current 2026.9.5 -> 2026.9.6 {SWITCH}{BACKUP_FIRST}",
         "2026.9.5", "2026.9.6",
         "release-link"),
        # keep 2: the new one and the current one; the others go, newest first (9.10 is newer than 9.4)
        ("/opt/oc/2026.9.10", "delete", "prune: keep 2 release(s) for rollback",
         "release:openclaw=2026.9.10 node=24.21.0", "absent", "release"),
        ("/opt/oc/2026.9.4", "delete", "prune: keep 2 release(s) for rollback",
         "release:openclaw=2026.9.4 node=24.21.0", "absent", "release"),
    ], id="upgrade"),
    pytest.param(DesiredRelease("/opt/oc", "2026.9.6", "24.21.0", "registry", keep=1), None, {}, [
        ("/opt/oc/2026.9.6", "create", "install OpenClaw 2026.9.6 with node 24.21.0, from the npm registry, on the "
         "host", "absent", "release:openclaw=2026.9.6 node=24.21.0", "release"),
        ("/opt/oc/current", "update", f"switch current (none) -> 2026.9.6 {SWITCH}", "absent", "2026.9.6",
         "release-link"),
    ], id="first-install-from-the-registry"),
    pytest.param(DesiredRelease("/opt/oc", "2026.9.6", "24.21.0", "push", keep=2), None,
                 {"2026.9.4": ON_HOST["2026.9.4"], "2026.9.5": ON_HOST["2026.9.5"]}, [
        ("/opt/oc/2026.9.6", "create", f"install OpenClaw 2026.9.6 with node 24.21.0, {PUSH}", "absent",
         "release:openclaw=2026.9.6 node=24.21.0", "release"),
        ("/opt/oc/current", "update", f"switch current (none) -> 2026.9.6 {SWITCH}", "absent", "2026.9.6",
         "release-link"),
        # no current link (an install cut off before its switch): keep 2 is the new one and the newest other
        ("/opt/oc/2026.9.4", "delete", "prune: keep 2 release(s) for rollback",
         "release:openclaw=2026.9.4 node=24.21.0", "absent", "release"),
    ], id="no-current-link-yet"),
    pytest.param(DesiredRelease("/opt/oc", "2026.9.5", "24.21.0", "push", keep=3), "2026.9.5", None, [],
                 id="in-place-and-within-keep"),
    pytest.param(DesiredRelease("/opt/oc", "2026.9.5", "24.21.0", "push", keep=2), "2026.9.5", None, [
        ("/opt/oc/2026.9.4", "delete", "prune: keep 2 release(s) for rollback",
         "release:openclaw=2026.9.4 node=24.21.0", "absent", "release"),  # the newest other one (9.10) is kept
    ], id="prune-the-oldest-by-version-not-by-text"),
    pytest.param(DesiredRelease("/opt/oc", "2026.9.4", "24.21.0", "push", allow_downgrade=True), "2026.9.5", None, [
        # already on the host (its tarball checksum does not count): only the link moves
        ("/opt/oc/current", "update", f"switch current 2026.9.5 -> 2026.9.4 {SWITCH}{BACKUP_FIRST}",
         "2026.9.5", "2026.9.4",
         "release-link"),
    ], id="explicit-downgrade"),
    pytest.param(DesiredRelease("/opt/oc", "2026.9.5", "24.22.0", "push"), "2026.9.5", None, [
        ("/opt/oc/2026.9.5", "create", f"install OpenClaw 2026.9.5 with node 24.22.0, {PUSH}",
         "release:openclaw=2026.9.5 node=24.21.0", "release:openclaw=2026.9.5 node=24.22.0", "release"),
    ], id="same-openclaw-other-node"),
])
def test_the_release_changes_of_a_host(release: DesiredRelease, current: str | None, releases: dict[str, str] | None,
                                       changes: list[tuple]) -> None:
    assert _plan(release, current, releases) == changes


def test_a_downgrade_that_is_not_explicit_is_an_error_of_the_host_and_nothing_else_is_planned() -> None:
    obs = ObservedHost("h", releases=dict(ON_HOST), current_release="2026.9.5")
    hp = plan_host(DesiredHost("h", "", "/root", (), (), (), DesiredRelease("/opt/oc", "2026.9.4", "24.21.0", "push")),
                   obs)
    assert hp.host == "h"
    assert hp.changes == () and hp.error == ("OpenClaw 2026.9.4 is older than the 2026.9.5 this host runs: a "
                                             "downgrade must be explicit (openclaw.install.allow_downgrade: true)")


@pytest.mark.parametrize(("stamp", "fingerprint"), [
    (None, "absent"), ("", "absent"),
    ("openclaw=2026.9.6 node=24.21.0 sha256=ab12", "release:openclaw=2026.9.6 node=24.21.0"),
    ("sha256=ab12 openclaw=2026.9.6  node=24.21.0", "release:openclaw=2026.9.6 node=24.21.0"),
])
def test_a_release_is_the_same_whether_pushed_with_a_checksum_or_fetched_without(stamp: str | None,
                                                                                  fingerprint: str) -> None:
    assert release_fingerprint(stamp) == fingerprint


def test_with_part_of_a_host_s_instances_selected_no_service_is_stopped() -> None:
    """README: --limit host/instance; an instance left out by the limit is not one that left the inventory."""
    from provisioner.apply.planning import without_removals
    from provisioner.core.changes import Action, Change, ChangeKind, HostPlan, Plan

    keep = (Change("h", "main", "/etc/a", Action.UPDATE, "differs"),
            Change("h", "main", "u-main.service", Action.RESTART, "a changed", kind=ChangeKind.SERVICE),
            Change("h", None, "/opt/oc/2026.9.4", Action.DELETE, "prune", kind=ChangeKind.RELEASE))
    stop = Change("h", "ops", "u-ops.service", Action.STOP, "no longer in the inventory", kind=ChangeKind.SERVICE)
    plan = Plan("inv.yaml", "0" * 64, (HostPlan("h", (keep[0], stop, keep[1], keep[2]), locked_by="x"),
                                       HostPlan("g", (stop,), error="unreachable")), created_at="t")
    got = without_removals(plan)
    assert got == Plan("inv.yaml", "0" * 64,
                       (HostPlan("h", keep, locked_by="x"), HostPlan("g", (), error="unreachable")), created_at="t")


SLACK = DesiredPlugin("h", "@openclaw/slack", "2026.9.6", "slack", "/opt/openclaw-plugins/openclaw+slack/2026.9.6",
                      ("main", "ops"))


@pytest.mark.parametrize(("manage_services", "changes"), [
    (True, [("h", None, SLACK.dir, "create", "install plugin @openclaw/slack 2026.9.6 (used by main, ops), pushed "
             "from the controller's cache", "absent", "plugin:@openclaw/slack@2026.9.6", "plugin")]),
    (False, []),  # manager none, or a directory standing for a host: nothing is installed
])
def test_a_missing_plugin_is_installed_only_where_the_tool_manages_services(manage_services: bool,
                                                                            changes: list[tuple]) -> None:
    hp = plan_host(DesiredHost("h", "", "/root", (), (), (), plugins=(SLACK,)), ObservedHost("h"),
                   manage_services=manage_services)
    assert [(c.host, c.instance, c.target, c.action.value, c.reason, c.before, c.after, c.kind.value)
            for c in hp.changes] == changes
