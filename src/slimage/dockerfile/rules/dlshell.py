"""The commands of a RUN as hadolint's DL rules see them.

hadolint asks ShellCheck's parser for every simple command in a RUN, including those
inside `$(...)`, backquotes and subshells, and reads each one's flags in a fixed way
(`--name=value` is flag `name`, `-abc` is flags `a`, `b`, `c`). Its rules are written
against that view, so reproducing their semantics means reproducing the view: a rule
that only looked at top-level commands would miss `x="$(dpkg --print-architecture | awk
...)"` exactly where hadolint reports it. The view is built on top of our own splitter
(`dockerfile.shell`), recursing into command substitutions.

Commands keep their name as written (`/usr/bin/apt-get` is not `apt-get`, and `sudo
apt-get` is a `sudo` command), because that is what hadolint compares.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slimage.dockerfile import shell
from slimage.dockerfile.model import Instruction
from slimage.dockerfile.rules.base import LintContext

HEREDOC_REASON = "hadolint does not read RUN heredoc bodies; slimage checks them like any RUN"


@dataclass(slots=True)
class Cmd:
    """One simple command: its name and its arguments (quotes removed)."""

    name: str
    args: list[str]
    _flags: list[tuple[str, int]] | None = field(default=None, repr=False)

    def flags(self) -> list[tuple[str, int]]:
        """(flag name, index in args) for every flag, split the way hadolint does."""
        if self._flags is None:
            out: list[tuple[str, int]] = []
            for i, arg in enumerate(self.args):
                if arg in ("-", "--") or not arg.startswith("-"):
                    continue
                if arg.startswith("--"):
                    out.append((arg[2:].split("=", 1)[0], i))
                else:
                    out.extend((ch, i) for ch in arg[1:])
            self._flags = out
        return self._flags

    def has_flag(self, *names: str) -> bool:
        return any(f in names for f, _ in self.flags())

    def count_flag(self, name: str) -> int:
        return sum(1 for f, _ in self.flags() if f == name)

    def has_arg(self, *values: str) -> bool:
        return any(a in values for a in self.args)

    def is_(self, name: str, *subs: str) -> bool:
        """hadolint's `cmdHasArgs`: this program, with one of `subs` anywhere in its args."""
        return self.name == name and (not subs or self.has_arg(*subs))

    def args_no_flags(self, drop: tuple[str, ...] = ()) -> list[str]:
        """Arguments that are not flags; `drop` names flags whose separate value goes too."""
        flag_at = {i for _, i in self.flags()}
        skip: set[int] = set()
        for name, i in self.flags():
            if name in drop and "=" not in self.args[i] and i + 1 < len(self.args):
                skip.add(i + 1)
        return [a for i, a in enumerate(self.args) if i not in flag_at and i not in skip]

    def flag_args(self, name: str) -> list[str]:
        """Values given to flag `name` as the next argument (`-u 1000`)."""
        return [
            self.args[i + 1]
            for f, i in self.flags()
            if f == name and i + 1 < len(self.args) and "=" not in self.args[i]
        ]


@dataclass(slots=True)
class RunView:
    """Everything the DL rules ask about one RUN."""

    commands: list[Cmd]
    has_pipe: bool
    heredoc: bool  # the commands come from a heredoc body hadolint never reads
    text: str

    @property
    def beyond(self) -> str | None:
        return HEREDOC_REASON if self.heredoc else None

    def names(self) -> list[str]:
        return [c.name for c in self.commands]

    def index(self, pred: object) -> int | None:
        for i, c in enumerate(self.commands):
            if pred(c):  # type: ignore[operator]
                return i
        return None


def _substitutions(word: str) -> list[str]:
    """Texts of the `$(...)` and backquoted command substitutions inside a word."""
    out: list[str] = []
    n = len(word)
    i = 0
    while i < n:
        ch = word[i]
        if ch == "$" and word.startswith("$(", i) and not word.startswith("$((", i):
            end = shell._scan_subst(word, i, n)
            if end < 0:
                break
            out.append(word[i + 2 : end - 1])
            i = end
            continue
        if ch == "`":
            end = word.find("`", i + 1)
            if end < 0:
                break
            out.append(word[i + 1 : end])
            i = end + 1
            continue
        i += 1
    return out


def _collect(script: shell.Script, out: list[Cmd], depth: int) -> bool:
    has_pipe = False
    for sc in script.commands:
        if sc.op in ("|", "|&") or sc.prev_op in ("|", "|&"):
            has_pipe = True  # prev_op too: `{ ...; } | tee` ends the group, not a command
        argv = sc.argv()
        if argv:
            out.append(Cmd(argv[0], list(argv[1:])))
        if depth > 8:
            continue
        for word in sc.words:
            if "$(" in word or "`" in word:
                for inner in _substitutions(word):
                    has_pipe |= _collect(shell.split(inner), out, depth + 1)
        for word in sc.redirects:
            if "$(" in word or "`" in word:
                for inner in _substitutions(word):
                    has_pipe |= _collect(shell.split(inner), out, depth + 1)
    return has_pipe


def run_view(ctx: LintContext, inst: Instruction) -> RunView | None:
    """The hadolint view of a RUN (cached per context); None for exec-form RUNs of a
    non-shell program and RUNs under a non-POSIX SHELL."""
    cache: dict[int, RunView | None] = ctx.__dict__.setdefault("_dl_views", {})
    key = id(inst)
    if key in cache:
        return cache[key]
    view: RunView | None = None
    script = ctx.script(inst)
    if script is not None:
        cmds: list[Cmd] = []
        pipe = _collect(script, cmds, 0)
        heredoc = bool(inst.heredocs) and bool(inst.value) and script.text != inst.value[0]
        view = RunView(cmds, pipe, heredoc, script.text)
    cache[key] = view
    return view
