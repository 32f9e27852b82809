"""Issue 8 on the lab, through the real `provision` CLI, one module per attack class: SSH host-key trust
(test_host_keys), secrets that never leak (test_secrets), and hostile names and paths that are either refused by
`validate` with a location or reach the host as literal data and never run (test_hostile_values, test_hostile_systemd,
test_hostile_dedupe).

The hosts are lab hosts (real sshd; systemd hosts booted by systemd-nspawn). The gateway is the stand-in
(tests/support/standin-openclaw); where a test must see exactly what a gateway process was given (argv, working
directory, environment) the inventory's `openclaw.command` is a small recording wrapper that then becomes the
stand-in. Every payload in a hostile value creates a file named `pwned-<TAG>-<word>` if it ever runs; the tests
look for such a file on the hosts and on the controller.
"""

import pytest

# the shared helpers assert too: rewrite them as pytest does test modules, so that a failure there explains itself
pytest.register_assert_rewrite("tests.security.support", "tests.security.matrix")
