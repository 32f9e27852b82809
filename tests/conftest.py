"""Shared fixtures: the real OpenClaw install and the lab of real SSH and systemd hosts."""

pytest_plugins = ["tests.openclaw_fixtures", "tests.lab.fixtures"]
