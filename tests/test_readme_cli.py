"""The README's command list, flags and exit codes are the CLI's: each is compared with what `--help` says."""

from __future__ import annotations

import re

import pytest

from tests.support.cli import REPO, Provision

README = (REPO / "README.md").read_text()
COMMON = {"--json", "--no-color", "--verbose", "--limit", "--help"}  # every command takes them (and -h)


def usage_lines() -> dict[str, str]:
    """README's Usage block: command (`dedupe verify` included) -> its line."""
    block = README.split("## Usage\n\n```\n", 1)[1].split("```", 1)[0]
    out = {}
    for line in block.splitlines():
        words = line.split("#", 1)[0].split()
        assert words[0] == "provision", line
        cmd = " ".join(w for w in words[1:3] if re.fullmatch(r"[a-z]+", w))
        out[cmd] = line.split("#", 1)[0]
    return out


def long_flags(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))


def help_flags(options: str) -> set[str]:
    """The long options a --help section lists (each at the start of its line, not in another's help text)."""
    return set(re.findall(r"^ {2}(?:-\w(?: \S+)?, )?(--[a-z][a-z-]*)", options, re.M))


@pytest.fixture(scope="module")
def provision() -> Provision:
    return Provision(timeout=60)


def subcommands(help_text: str) -> set[str]:
    """The commands a --help lists under its positional arguments (`    validate   schema + ...`)."""
    section = help_text.split("positional arguments:", 1)[1].split("options:", 1)[0]
    return set(re.findall(r"^ {4}([a-z]+)\b", section, re.M))


def test_the_readme_lists_every_command_and_no_other(provision: Provision) -> None:
    assert {c.split()[0] for c in usage_lines()} == subcommands(provision("--help").stdout)
    assert {c.split()[1] for c in usage_lines() if c.startswith("dedupe")} == \
        subcommands(provision("dedupe", "--help").stdout) == {"verify"}


@pytest.mark.parametrize("command", sorted(usage_lines()))
def test_each_commands_flags_in_the_readme_are_its_help(provision: Provision, command: str) -> None:
    r = provision(*command.split(), "--help")
    assert r.returncode == 0
    options = r.stdout.split("options:", 1)[1]
    assert long_flags(usage_lines()[command]) == help_flags(options) - COMMON
    for choice in re.findall(r"--format ([a-z|]+)", usage_lines()[command]):
        assert "{" + choice.replace("|", ",") + "}" in r.stdout


def test_the_common_flags_in_the_readme_are_the_ones_every_command_takes(provision: Provision) -> None:
    para = README.split("Common flags", 1)[1].split("\n\n", 1)[0]
    top = provision("--help").stdout
    assert long_flags(para) == help_flags(top.split("options:", 1)[1]) - {"--help"}
    assert "`-l`" in para and "`-v`" in para and re.search(r"-l PATTERN, --limit PATTERN", top)
    for command in set(usage_lines()) - {"completion"}:  # it prints a script: no inventory, no hosts
        options = provision(*command.split(), "--help").stdout.split("options:", 1)[1]
        assert long_flags(options) >= COMMON, command


def test_the_readme_exit_codes_are_the_helps(provision: Provision) -> None:
    para = README.split("Exit codes:", 1)[1].split("\n\n", 1)[0]
    epilog = " ".join(provision("--help").stdout.split("Exit codes:", 1)[1].split())
    codes = [re.match(r"\s*(\d+)\b", clause) for clause in para.split(";")]
    assert [m.group(1) for m in codes if m] == ["0", "1", "2", "130"]
    assert [m.group(1) for clause in epilog.split(";") if (m := re.match(r"\s*(\d+)\b", clause))] == \
        ["0", "1", "2", "130"]
    assert "usage error" in para and "also a usage error" in epilog
