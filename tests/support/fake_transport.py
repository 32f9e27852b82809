"""A `Transport` that runs nothing: it records every script the executor sends and answers each from rules.

The executor's decisions (lock takeover, restore after a failed rename, rollback after a failed health gate)
depend only on what the host scripts print. This fake stands in for the host so those decisions can be unit
tested without root, SSH or systemd:

    fake = FakeTransport("gw-1", observed=facts)           # what the re-check under the lock reports
    fake.on("lock", f"HELD {holder}\\n")                    # every lock script answers HELD
    fake.once("write", result("RENAMING\\n", rc=1))         # the first write fails mid-rename, then defaults
    fake.on_http(503)                                      # every health check answers 503
    ... apply_host(fake, desired, plan) ...
    assert fake.kinds() == ["lock", "write", "restore", "unlock"]

A rule's `when` is a script kind (see `KINDS`), any other string (a substring of the script), or a predicate
on the script. Rules are tried in the order given; the first that matches answers. Without a matching rule a
script gets the answer of a healthy host (`default_answer`). `root` stays "", so the executor behaves as for
a real host (systemctl, health gate), not as for a local stand-in directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from provisioner.core.observed import EntryKind, ObservedFile, ObservedHost
from provisioner.remote.command import Command
from provisioner.remote.scripts.locks import CLEARED, LOCKED, UNLOCKED
from provisioner.remote.scripts.systemd import SYSTEMCTL_OK
from provisioner.remote.scripts.trust import USER_PREFIX
from provisioner.remote.transport import HttpResponse, Result, Sink

# What marks each kind of script, tried in this order: the first that is found names the script's kind. A
# lock script carries the script it runs under the lock (`lock_then`), and a write script may end with the
# unlock, so the lock and the write come before what they can contain.
KINDS: tuple[tuple[str, str], ...] = (
    ("lock", "( set -C; printf"),
    ("clear", f"echo {CLEARED}"),
    ("write", "echo RENAMING || :"),
    ("restore", "echo RESTORED"),
    ("systemctl", f"echo {SYSTEMCTL_OK}"),
    ("unit-states", "systemctl show -p Id,ActiveState,SubState,Result,NRestarts"),
    ("unlock", f"echo {UNLOCKED}"),
    ("probe", "echo END"),
)
KIND_NAMES = frozenset(k for k, _ in KINDS) | {"other"}


def shown_units(script: str) -> list[str]:
    """The units a script asks `systemctl show` about."""
    line = next((ln for ln in script.splitlines() if ln.startswith("systemctl show -p")), "")
    words = line.split(" -- ", 1)[1].split(" 2>")[0].split() if " -- " in line else []
    return [w.strip("'") for w in words]


def unit_states(units: Iterable[str], invocation: str, active: str = "active", sub: str = "running",
                restarts: int = 0, stop_budget: str = "5min 30s", job: str = "") -> str:
    """What `systemctl show -p UNIT_PROPS` prints for units in one state (a unit's invocation: `invocation-<unit>`;
    `job`: the id of a job still queued for it, which systemctl shows only while there is one)."""
    return "\n".join(f"Id={u}\nActiveState={active}\nSubState={sub}\nResult=success\nNRestarts={restarts}\n"
                     f"InvocationID={invocation}-{u}\nTimeoutStopUSec={stop_budget}\n"
                     + (f"Job={job}\n" if job else "") for u in units)


def unit_states_output(script: str, invocation: str) -> str:
    return unit_states(shown_units(script), invocation)


def kind_of(script: str) -> str:
    return next((k for k, mark in KINDS if mark in script), "other")


def result(stdout: str = "", *, rc: int = 0, stderr: str = "") -> Result:
    return Result(rc, stdout.encode(), stderr.encode())


Answer = Result | str | BaseException | Callable[[str], Result]
HttpAnswer = int | HttpResponse | BaseException


# --- the probe's output, from facts -------------------------------------------------------------------------

def _found(o: ObservedFile) -> str:
    if o.found:
        return o.found
    return {EntryKind.FILE: "regular file", EntryKind.DIRECTORY: "directory",
            EntryKind.SYMLINK: "symbolic link"}.get(o.kind, "fifo")


def probe_output(observed: ObservedHost, *, root: str = "", user_paths: Iterable[str] = ()) -> str:
    """What `probe_script` prints on a host holding `observed`'s files and directories, in its own record format:
    `STAT` lines as `stat -c '%F|%a|%U|%G|%s|%n'` prints them, `SHA` lines as `sha256sum` does, then `END`. Paths
    in `user_paths` are reported by the user-side sub-script, so their records come back prefixed `~ `."""
    mine = frozenset(user_paths)
    stat: dict[bool, list[str]] = {False: [], True: []}
    sha: dict[bool, list[str]] = {False: [], True: []}
    for o in (*observed.files.values(), *observed.dirs.values()):
        if not o.exists:
            continue  # stat prints nothing (to /dev/null) for a missing path
        size = len(o.content) if o.content is not None else 0
        stat[o.path in mine].append(f"{_found(o)}|{(o.mode or 0):o}|{o.owner}|{o.group}|{size}|{root}{o.path}")
        if o.kind is EntryKind.FILE and o.sha256:
            sha[o.path in mine].append(f"{o.sha256}  {root}{o.path}")
    out: list[str] = []
    for user_side, prefix in ((False, ""), (True, USER_PREFIX)):
        for word, lines in (("STAT", stat[user_side]), ("SHA", sha[user_side])):
            if lines:
                out += [prefix + line for line in (word, *lines, word + ".")]
    out.append("END")
    return "\n".join(out) + "\n"


# --- the transport -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sent:
    """One script the fake was sent, and what it answered."""

    kind: str
    script: str  # the decoded stdin: the script as `run_script` wrapped it
    argv: tuple[str, ...]
    timeout: float | None
    answer: Result | None  # None when the rule raised instead


@dataclass
class _Rule:
    when: Callable[[str], bool]
    answers: list[object]
    repeat_last: bool
    used: int = 0

    def next(self) -> object | None:
        if self.used < len(self.answers):
            self.used += 1
            return self.answers[self.used - 1]
        return self.answers[-1] if self.repeat_last and self.answers else None


def _matcher(when: str | Callable[[str], bool]) -> Callable[[str], bool]:
    if callable(when):
        return when
    if when in KIND_NAMES:
        return lambda script: kind_of(script) == when
    return lambda script: when in script


@dataclass
class FakeTransport:
    host: str = "gw-1"
    observed: ObservedHost | None = None  # what a probe (alone, or under the lock) reports
    user_paths: frozenset[str] = frozenset()  # the paths a probe reports from the user side
    root: str = ""  # read by transport_root: a real host, not a stand-in directory
    sent: list[Sent] = field(default_factory=list)
    http: list[tuple[int, str]] = field(default_factory=list)  # (port, path) of every http_get
    events: list[str] = field(default_factory=list)  # script kinds and "http <port><path>", in order
    put: list[tuple[str, str, int]] = field(default_factory=list)
    closed: bool = False
    _rules: list[_Rule] = field(default_factory=list)
    _http_rules: list[_Rule] = field(default_factory=list)

    # -- telling it what to answer --

    def on(self, when: str | Callable[[str], bool], *answers: Answer) -> FakeTransport:
        """Scripts matching `when` get these answers in turn; the last one repeats."""
        self._rules.append(_Rule(_matcher(when), list(answers), True))
        return self

    def once(self, when: str | Callable[[str], bool], *answers: Answer) -> FakeTransport:
        """Scripts matching `when` get these answers in turn; after them, the later rules and the defaults."""
        self._rules.append(_Rule(_matcher(when), list(answers), False))
        return self

    def on_http(self, *answers: HttpAnswer, path: str | None = None, repeat_last: bool = True) -> FakeTransport:
        """http_get (of `path`, or of any path) gets these answers in turn: a status, a response, or an error."""
        self._http_rules.append(_Rule(lambda p: path is None or p == path, list(answers), repeat_last))
        return self

    # -- what a healthy host answers --

    def probe_text(self) -> str:
        return probe_output(self.observed or ObservedHost(self.host), root=self.root, user_paths=self.user_paths)

    def default_answer(self, script: str) -> Result:
        kind = kind_of(script)
        if kind == "lock":  # the lock is taken, then the script under it runs as on a healthy host
            rest = self.probe_text() if "echo END" in script else "RESTORED\n" if "echo RESTORED" in script else ""
            return result(f"{LOCKED}\n{rest}")
        if kind == "write":
            return result("RENAMING\nWROTE\n" + (f"{UNLOCKED}\n" if f"echo {UNLOCKED}" in script else ""))
        if kind == "probe":
            return result(self.probe_text())
        if kind == "systemctl":  # restarts are queued after the units' state is printed: the running invocation
            return result(unit_states_output(script, "old") + f"{SYSTEMCTL_OK}\n")
        if kind == "unit-states":  # every unit asked about already runs its next invocation
            return result(unit_states_output(script, "new"))
        said = {"clear": f"{CLEARED}\n", "restore": "RESTORED\n", "unlock": f"{UNLOCKED}\n"}
        return result(said.get(kind, ""))  # anything else: a quiet success

    # -- the Transport protocol --

    def run(self, cmd: Command, *, stdin: bytes | None = None, timeout: float | None = None,
            sink: Sink | None = None) -> Result:
        script = (stdin or b"").decode("utf-8")
        kind = kind_of(script)
        self.events.append(kind)
        answer = next((a for r in self._rules if r.when(script) and (a := r.next()) is not None), None)
        if isinstance(answer, BaseException):
            self.sent.append(Sent(kind, script, cmd.argv, timeout, None))
            raise answer
        if answer is None:
            res = self.default_answer(script)
        elif isinstance(answer, Result):
            res = answer
        elif isinstance(answer, str):
            res = result(answer)
        elif callable(answer):
            res = answer(script)
        else:
            raise TypeError(f"not an answer: {answer!r}")
        self.sent.append(Sent(kind, script, cmd.argv, timeout, res))
        if sink is not None:  # as a real transport does: stdout goes to the sink, not into the result
            sink.write(res.stdout)
            return Result(res.rc, b"", res.stderr)
        return res

    def http_get(self, port: int, path: str, *, timeout: float = 5.0) -> HttpResponse:
        self.http.append((port, path))
        self.events.append(f"http {port}{path}")
        answer = next((a for r in self._http_rules if r.when(path) and (a := r.next()) is not None), None)
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, HttpResponse):
            return answer
        return HttpResponse(answer if isinstance(answer, int) else 200, b"")

    def put_file(self, local_path: str, remote_path: str, *, mode: int = 0o600) -> int:
        self.put.append((local_path, remote_path, mode))
        return 0

    def close(self) -> None:
        self.closed = True

    # -- reading back what was sent --

    def kinds(self) -> list[str]:
        return [s.kind for s in self.sent]

    def scripts(self, kind: str) -> list[str]:
        return [s.script for s in self.sent if s.kind == kind]
