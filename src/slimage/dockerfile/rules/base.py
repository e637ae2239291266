"""What every lint rule is built from: severities, the rule record, and the lint context.

A rule is a plain function from a `LintContext` to hits. The context precomputes what most
rules need (stages and which of them ship in the final image, each RUN's shell commands,
the SHELL and ENV in force) once per Dockerfile, so a rule stays a few lines long and the
whole linter stays fast enough to run on every save.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING

from slimage.dockerfile import shell
from slimage.dockerfile.model import Dockerfile, Instruction

if TYPE_CHECKING:
    from slimage.dockerfile.config import LintConfig


class Severity(IntEnum):
    """Ordered so that `finding.severity >= threshold` decides the exit code."""

    STYLE = 1
    INFO = 2
    WARNING = 3
    ERROR = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            choices = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity {text!r} (choose from {choices})") from None


@dataclass(slots=True)
class Hit:
    """One place a rule fired: the instruction, and what exactly is wrong there."""

    inst: Instruction
    detail: str
    line: int | None = None  # defaults to the instruction's start line
    # Set when the rule fires where hadolint would not look (a heredoc body, say): the
    # reason, so the parity benchmark can count the finding as a deliberate extra.
    beyond: str | None = None


Check = Callable[["LintContext"], Iterable[Hit]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A lint rule. `id` never changes once published; `hadolint` is the equivalent
    hadolint rule, if any, so users can map their existing ignores."""

    id: str
    slug: str
    severity: Severity
    hadolint: str | None
    category: str  # size | layers | cache | security | correctness
    summary: str
    why: str
    fix: str
    check: Check
    fixable: bool = False
    # How the rule deliberately differs from its hadolint equivalent (None: it does not).
    differs: str | None = None


REGISTRY: dict[str, Rule] = {}


def rule(
    id: str,
    slug: str,
    severity: Severity,
    *,
    category: str,
    summary: str,
    why: str,
    fix: str,
    hadolint: str | None = None,
    fixable: bool = False,
    differs: str | None = None,
) -> Callable[[Check], Check]:
    """Register a check function as rule `id`."""

    def deco(fn: Check) -> Check:
        if id in REGISTRY:
            raise RuntimeError(f"duplicate lint rule id {id}")
        REGISTRY[id] = Rule(
            id, slug, severity, hadolint, category, summary, why, fix, fn, fixable, differs
        )
        return fn

    return deco


def hadolint_rule(
    code: str,
    slug: str,
    severity: Severity,
    category: str,
    summary: str,
    why: str,
    fix: str,
    differs: str | None = None,
) -> Callable[[Check], Check]:
    """A rule that is one of hadolint's, under hadolint's own ID (so `--hadolint`,
    `.hadolint.yaml` and ignore pragmas find it by the code teams already use)."""
    return rule(
        code,
        slug,
        severity,
        category=category,
        hadolint=code,
        summary=summary,
        why=why,
        fix=fix,
        differs=differs,
    )


@dataclass(slots=True)
class StageInfo:
    """One FROM ... block, linked to the stage it builds on (if its base is a stage)."""

    index: int
    name: str | None
    base: str  # expanded with meta ARGs
    from_inst: Instruction
    instructions: list[Instruction] = field(default_factory=list)
    parent: StageInfo | None = None
    ships: bool = False  # its filesystem ends up in the final image
    final: bool = False
    platform: str | None = None  # FROM --platform, expanded like the base

    @property
    def ref(self) -> str:
        return self.name if self.name is not None else str(self.index)

    def chain(self) -> Iterator[StageInfo]:
        """This stage, then the stages it builds on (nearest first)."""
        seen: set[int] = set()
        st: StageInfo | None = self
        while st is not None and st.index not in seen:
            seen.add(st.index)
            yield st
            st = st.parent

    @property
    def root_base(self) -> str:
        """The image the chain of stages starts from."""
        last = self
        for st in self.chain():
            last = st
        return last.base

    def all_instructions(self) -> list[Instruction]:
        """Instructions of the whole chain, oldest first (what built this filesystem)."""
        out: list[Instruction] = []
        for st in reversed(list(self.chain())):
            out.extend(st.instructions)
        return out


_SHELL_NAMES = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "busybox"})
DEFAULT_SHELL = ("/bin/sh", "-c")
WINDOWS_SHELL = ("cmd", "/S", "/C")
# Windows bases run RUN/CMD through cmd.exe, whose syntax is not POSIX sh.
_WINDOWS_BASE = re.compile(r"windows|nanoserver|servercore", re.I)


def _heredoc_only(words: list[str]) -> bool:
    return not words or (len(words) <= 2 and words[0].rsplit("/", 1)[-1] in _SHELL_NAMES)


class LintContext:
    """Per-Dockerfile facts shared by all rules (computed once, cached)."""

    def __init__(self, dockerfile: Dockerfile, stages: list[StageInfo], config: LintConfig):
        self.dockerfile = dockerfile
        self.stages = stages
        self.config = config
        self._scripts: dict[int, shell.Script | None] = {}
        self._stage_of: dict[int, StageInfo] = {}
        for st in stages:
            self._stage_of[id(st.from_inst)] = st
            for inst in st.instructions:
                self._stage_of[id(inst)] = st

    @property
    def final(self) -> StageInfo | None:
        return self.stages[-1] if self.stages else None

    def stage_of(self, inst: Instruction) -> StageInfo | None:
        return self._stage_of.get(id(inst))

    def instructions(self, *cmds: str) -> Iterator[tuple[StageInfo, Instruction]]:
        """(stage, instruction) for every instruction of these kinds (ONBUILD excluded)."""
        for st in self.stages:
            for inst in st.instructions:
                if inst.cmd in cmds:
                    yield st, inst

    def script(self, inst: Instruction) -> shell.Script | None:
        """The shell commands a RUN executes, or None when it does not run a POSIX shell
        script we can read (exec form of a non-shell program, a python heredoc)."""
        key = id(inst)
        if key in self._scripts:
            return self._scripts[key]
        result = self._script(inst)
        self._scripts[key] = result
        return result

    def _script(self, inst: Instruction) -> shell.Script | None:
        if inst.json:
            words = inst.value
            if len(words) >= 3 and words[0].rsplit("/", 1)[-1] in _SHELL_NAMES and words[1] == "-c":
                return shell.split(words[2])
            cmd = shell.SimpleCommand(
                words=list(words),
                spans=[(0, 0)] * len(words),
                quoted=[False] * len(words),
            )
            return shell.Script(" ".join(words), [cmd])
        if not inst.value:
            return None
        line = inst.value[0]
        if inst.heredocs:
            head = shell.split(line)
            words = head.commands[0].argv() if head.commands else []
            if _heredoc_only(words):
                # `RUN <<EOF` / `RUN bash <<EOF`: the body is the script the shell runs.
                body = "\n".join(h.text() for h in inst.heredocs)
                return shell.split(body)
            return head
        if not self.posix_shell(inst):
            return None
        return shell.split(line)

    def shell_of(self, inst: Instruction) -> tuple[str, ...]:
        """The SHELL in force for `inst` (inherited through FROM <stage>)."""
        st = self.stage_of(inst)
        if st is None:
            return DEFAULT_SHELL
        current: tuple[str, ...] = DEFAULT_SHELL
        if _WINDOWS_BASE.search(st.root_base):
            current = WINDOWS_SHELL
        for other in st.all_instructions():
            if other is inst:
                break
            if other.cmd == "shell" and other.json and other.value:
                current = tuple(other.value)
        return current

    def posix_shell(self, inst: Instruction) -> bool:
        prog = self.shell_of(inst)[0].rsplit("/", 1)[-1]
        return prog in _SHELL_NAMES

    def env_before(self, inst: Instruction) -> dict[str, str]:
        """ENV (and ARG defaults) set before `inst` in its stage chain."""
        st = self.stage_of(inst)
        env: dict[str, str] = {}
        if st is None:
            return env
        for other in st.all_instructions():
            if other is inst:
                break
            if other.cmd == "env":
                vals = other.value
                for i in range(0, len(vals) - 1, 3):
                    env[vals[i]] = vals[i + 1]
            elif other.cmd == "arg":
                for word in other.value:
                    key, _, value = word.partition("=")
                    env.setdefault(key, value)
        return env

    def user_before(self, inst: Instruction) -> str:
        """USER in force for `inst` ("" when none was set in the Dockerfile)."""
        st = self.stage_of(inst)
        user = ""
        if st is None:
            return user
        for other in st.all_instructions():
            if other is inst:
                break
            if other.cmd == "user" and other.value:
                user = other.value[0].split(":", 1)[0]
        return user

    def workdir_before(self, inst: Instruction) -> str:
        """WORKDIR in force for `inst` ("/" when none), relative WORKDIRs resolved."""
        st = self.stage_of(inst)
        wd = "/"
        if st is None:
            return wd
        for other in st.all_instructions():
            if other is inst:
                break
            if other.cmd == "workdir" and other.value:
                wd = join_path(wd, other.value[0])
        return wd


def join_path(base: str, path: str) -> str:
    """Resolve `path` against directory `base` the way WORKDIR/COPY do (no symlinks)."""
    full = path if path.startswith("/") else base.rstrip("/") + "/" + path
    parts: list[str] = []
    for part in full.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(text: str) -> bool:
    return bool(_URL.match(text))
