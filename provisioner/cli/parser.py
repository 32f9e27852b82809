"""The command line's grammar: the commands, their flags, and the common flags that go before or after the command.

Usage errors (an unknown flag, a missing argument) exit 1 with the usage of the command they were made in: exit 2
belongs to `plan --detailed-exitcode` ("changes pending"), so argparse's own exit code is not used.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

COMMON = ("json", "no_color", "verbose", "limit")  # the flags every command takes, before or after its name


class UsageError(Exception):
    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser

    @property
    def usage(self) -> str:
        return self.parser.format_usage()

    @property
    def prog(self) -> str:
        return self.parser.prog


class Parser(argparse.ArgumentParser):
    commands: dict[str, argparse.ArgumentParser]  # the top level's: command name -> its parser

    def error(self, message: str) -> NoReturn:
        raise UsageError(self, message)


class _Version(argparse.Action):
    """--version: the installed distribution's version, looked up only when asked (start-up time)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kw: Any) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        print(f"provision {tool_version()}")
        parser.exit(0)


def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("openclaw-provisioner")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _common(p: argparse.ArgumentParser, prefix: str = "") -> None:
    """The common flags; the top level's land in `g_*` so that a command's own parse does not overwrite them."""
    p.add_argument("--json", dest=f"{prefix}json", action="store_true",
                   help="one JSON document on stdout (docs/json.md); logs go to stderr")
    p.add_argument("--no-color", dest=f"{prefix}no_color", action="store_true",
                   help="no colours (NO_COLOR is honoured too)")
    p.add_argument("-v", "--verbose", dest=f"{prefix}verbose", action="count", default=0, help="more detail")
    p.add_argument("-l", "--limit", dest=f"{prefix}limit", action="append", default=[], metavar="PATTERN",
                   help="host, group or host/instance glob; repeatable")


def _strict(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true",
                   help="a literal secret in an OpenClaw config field that takes a SecretRef is an error")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 1024:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 1024, not {text!r}")
    return n


def _forks(p: argparse.ArgumentParser) -> None:
    p.add_argument("--forks", type=_positive, metavar="N",
                   help="hosts worked on at once (default: the inventory's `forks`, else 64)")
    p.add_argument("--connect-timeout", type=_seconds, metavar="SECONDS",
                   help="per attempt to connect to a host (over the inventory's ssh.connect_timeout, default 10)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 600 seconds, not {text}")
    return value


def build_parser() -> Parser:
    ap = Parser(prog="provision", description="Declarative provisioner for fleets of OpenClaw gateways.",
                epilog="Exit codes: 0 success or no changes; 1 error (also a usage error); 2 changes pending "
                       "(plan --detailed-exitcode only); 130 interrupted.")
    ap.add_argument("--version", action=_Version, help="print the version and exit")
    _common(ap, "g_")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("validate", help="schema + isolation rules + config checks; no network")
    p.add_argument("inventory")
    _strict(p)
    p.add_argument("--format", choices=("text", "json", "github", "sarif"), default="text",
                   help="github: workflow annotations on stdout; sarif: a SARIF 2.1.0 log on stdout")
    _common(p)

    p = sub.add_parser("render", help="write every host's files under DIR/<host>/<absolute path>")
    p.add_argument("inventory")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--with-secrets", action="store_true",
                   help="write secret values into env files (default: where each secret comes from; what an offline "
                        "plan compares)")
    p.add_argument("--placeholder-secrets", action="store_true", help=argparse.SUPPRESS)  # the default now
    _common(p)

    p = sub.add_parser("plan", help="show what apply would change on every host")
    p.add_argument("inventory")
    p.add_argument("--detailed-exitcode", action="store_true", help="exit 2 when changes are pending")
    p.add_argument("--out", metavar="PLANFILE", help="save the plan for `apply PLANFILE`")
    p.add_argument("--offline", metavar="DIR", help="compare against DIR/<host>/... (render --out layout)")
    _forks(p)
    _strict(p)
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text",
                   help="markdown: a pull-request comment (long diffs folded, secrets masked)")
    _common(p)

    p = sub.add_parser("apply", help="make the hosts match the inventory (or a saved plan)")
    p.add_argument("target", metavar="INVENTORY|PLANFILE")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--playbook", metavar="FILE", help="rollout procedure (batches, max_fail)")
    _forks(p)
    _strict(p)
    p.add_argument("--json-events", action="store_true",
                   help="JSON lines on stdout: one progress event per line, the result document last")
    _common(p)

    p = sub.add_parser("dedupe", help="the shared inbound-dedupe claim directory")
    dsub = p.add_subparsers(dest="dedupe_command", required=True, metavar="ACTION", parser_class=Parser)
    p = dsub.add_parser("verify", help="prove the claim directory is one shared store across the hosts")
    p.add_argument("inventory")
    _forks(p)
    _common(p)

    p = sub.add_parser("status", help="health of every instance")
    p.add_argument("inventory")
    p.add_argument("--no-openclaw-status", dest="openclaw_status", action="store_false",
                   help="skip `openclaw gateway status` (it starts node once per instance)")
    p.add_argument("--show-token", metavar="HOST/INSTANCE",
                   help="print that gateway's token (made on the host or from secrets:) and nothing else; said on "
                        "stderr and in the host's journal")
    p.add_argument("--no-doctor", dest="doctor", action="store_false",
                   help="skip OpenClaw's own checks, `openclaw doctor --lint` (node again, once per instance)")
    _forks(p)
    _common(p)

    p = sub.add_parser("backup", help="OpenClaw's own verified backup of every instance, pulled to the controller")
    p.add_argument("inventory")
    p.add_argument("--out", default="openclaw-backups", metavar="DIR",
                   help="where archives go: DIR/<host>/<instance>/ (default ./openclaw-backups; 0700, files 0600)")
    p.add_argument("--keep", type=_positive, metavar="N",
                   help="keep only the N newest archives of each instance in DIR (default: all)")
    _forks(p)
    _common(p)

    p = sub.add_parser("restore", help="put an instance's backup archive onto a host of the inventory (move it)")
    p.add_argument("inventory")
    p.add_argument("archive", metavar="ARCHIVE", help="a .tar.gz that `provision backup` (openclaw backup) wrote")
    p.add_argument("target", metavar="HOST/INSTANCE", help="the instance to put it on (applied on its host)")
    _common(p)

    p = sub.add_parser("unlock", help="clear a stale lock left on hosts by a killed run")
    p.add_argument("inventory")
    p.add_argument("--force", action="store_true",
                   help="also clear a lock whose run is alive or cannot be checked from this controller")
    _forks(p)
    _common(p)

    ap.commands = {**sub.choices, **{f"dedupe {k}": v for k, v in dsub.choices.items()}}
    p = sub.add_parser("demo", help="validate, plan, apply and re-plan an example inventory into a local directory")
    p.add_argument("--dir", default="openclaw-demo", help="where the demo inventory and its hosts go")
    _common(p)
    ap.commands["demo"] = p

    p = sub.add_parser("completion", help="print a shell completion script (bash, or zsh through bashcompinit)")
    p.add_argument("shell", choices=("bash", "zsh"))
    ap.commands["completion"] = p
    return ap


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line, with the common flags given before the command merged into the command's own."""
    ap = build_parser()
    args, extra = ap.parse_known_args(argv)
    args.json = getattr(args, "json", False) or args.g_json or getattr(args, "json_events", False)
    args.no_color = getattr(args, "no_color", False) or args.g_no_color
    args.verbose = getattr(args, "verbose", 0) + args.g_verbose
    args.limit = [*args.g_limit, *getattr(args, "limit", [])]
    for name in COMMON:
        delattr(args, f"g_{name}")
    fmt = getattr(args, "format", "text")
    if args.json and fmt not in ("text", "json"):
        raise UsageError(ap.commands[args.command], f"--json and --format {fmt} cannot go together")
    args.json = args.json or fmt == "json"
    if args.command == "dedupe":
        args.command = f"dedupe {args.dedupe_command}"
    if extra:  # reported by the command's parser, so that its usage is the one shown
        raise UsageError(ap.commands.get(args.command, ap), f"unrecognized arguments: {' '.join(extra)}")
    return args
