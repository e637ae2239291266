"""BuildKit's instructions-layer checks on a parsed Dockerfile.

BuildKit's parser accepts `COPY --usr=me a b` or `FOO bar`; its `instructions` package then
refuses them before anything is built. `docker build` users see those refusals, so
`parse(strict=True)` runs them too: unknown instruction, unknown/duplicate/valueless
flags, argument counts, bad stage names, HEALTHCHECK options, SHELL not in JSON form,
instructions before the first FROM. Each error carries FILE:LINE:COL.

`problems()` returns every error (a linter wants them all); `validate()` raises the first.
"""

from __future__ import annotations

import csv
import difflib
import re

from slimage.dockerfile.expand import ExpansionError
from slimage.dockerfile.model import Dockerfile, Instruction
from slimage.dockerfile.parser import KNOWN_INSTRUCTIONS, go_quote, parse_heredoc
from slimage.errors import DockerfileError

_BOOL, _STR, _STRS = "bool", "string", "strings"

# Flags each instruction accepts (BuildKit: parseAdd, parseCopy, parseFrom, run hooks, ...).
FLAG_SPECS: dict[str, dict[str, str]] = {
    "add": {
        "chown": _STR,
        "chmod": _STR,
        "link": _BOOL,
        "keep-git-dir": _BOOL,
        "checksum": _STR,
        "unpack": _BOOL,
        "exclude": _STRS,
    },
    "copy": {
        "chown": _STR,
        "from": _STR,
        "chmod": _STR,
        "link": _BOOL,
        "exclude": _STRS,
        "parents": _BOOL,
    },
    "from": {"platform": _STR},
    "run": {"mount": _STRS, "network": _STR, "security": _STR, "device": _STRS},
    "healthcheck": {
        "interval": _STR,
        "timeout": _STR,
        "start-period": _STR,
        "start-interval": _STR,
        "retries": _STR,
    },
}
# BuildKit never parses the flags of these, so any flag passes.
_FLAGS_UNCHECKED = frozenset({"arg", "stopsignal"})
_STAGE_NAME_RE = re.compile(r"[a-z][a-z0-9\-_.]*\Z")
_DURATION_RE = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
NETWORK_MODES = ("default", "none", "host")
SECURITY_MODES = ("sandbox", "insecure")


class _Problem(Exception):
    def __init__(self, message: str, needle: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.needle = needle


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def parse_flags(inst: Instruction) -> dict[str, list[str]]:
    """Check `inst.flags` against what the instruction accepts (BuildKit's BFlags.Parse);
    returns flag name -> values (bool flags give "true"/"false")."""
    spec = FLAG_SPECS.get(inst.cmd, {})
    used: dict[str, list[str]] = {}
    for a in inst.flags:
        if a == "--":
            break
        if not a.startswith("--"):
            raise _Problem(f"arg should start with -- : {a}", a)
        name, has_value, value = a.partition("=")
        arg = name[2:]
        kind = spec.get(arg)
        if kind is None:
            raise _Problem(
                f"unknown flag: {name}" + _suggest(arg, sorted(spec)).replace("mean ", "mean --"),
                name,
            )
        if arg in used and kind != _STRS:
            raise _Problem(f"duplicate flag specified: {name}", name)
        if kind == _BOOL:
            if has_value and value == "":
                raise _Problem(f"missing a value on flag: {name}", name)
            low = value.lower()
            if low in ("true", ""):
                used[arg] = ["true"]
            elif low == "false":
                used[arg] = ["false"]
            else:
                raise _Problem(f"expecting boolean value for flag {name}, not: {value}", name)
        else:
            if not has_value:
                raise _Problem(f"missing a value on flag: {name}", name)
            used.setdefault(arg, []).append(value)
    return used


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds (HEALTHCHECK --interval=1m30s)."""
    s = text
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"invalid duration {go_quote(text)}")
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DURATION_RE.match(s, pos)
        if m is None or m.group(1) in ("", "."):
            raise ValueError(f"invalid duration {go_quote(text)}")
        total += float(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    return sign * int(total)


def _exactly_one(inst: Instruction, name: str) -> None:
    if len(inst.value) != 1:
        raise _Problem(f"{name} requires exactly one argument")


def _at_least_one(inst: Instruction, name: str, args: list[str] | None = None) -> None:
    if not (inst.value if args is None else args):
        raise _Problem(f"{name} requires at least one argument")


def _kvps(inst: Instruction, name: str) -> None:
    _at_least_one(inst, name)
    for j in range(0, len(inst.value) - 2, 3):
        if not inst.value[j]:
            raise _Problem(f"{name} names can not be blank")


def _sources_and_dest(inst: Instruction, name: str) -> None:
    if len(inst.value) < 2:
        raise _Problem(
            f"{name} requires at least two arguments, but only one was provided. "
            "Destination could not be determined"
        )
    if parse_heredoc_safe(inst.value[-1]) is not None:
        raise _Problem(f"{name} cannot accept a heredoc as a destination", inst.value[-1])


def parse_heredoc_safe(word: str) -> object | None:
    try:
        return parse_heredoc(word)
    except ExpansionError:  # an unbalanced quote: not a heredoc word
        return None


def _mount_fields(value: str) -> list[str]:
    try:
        rows = list(csv.reader([value], strict=True))
    except csv.Error as exc:
        raise _Problem(f"failed to parse csv mounts: {exc}", value) from None
    return rows[0] if rows else []


def _check_run(inst: Instruction, flags: dict[str, list[str]]) -> None:
    network = flags.get("network", ["default"])[-1]
    if network not in NETWORK_MODES:
        raise _Problem(f"invalid network mode {go_quote(network)}", "--network")
    security = flags.get("security", ["sandbox"])[-1]
    if security not in SECURITY_MODES:
        raise _Problem(f"security {go_quote(security)} is not valid", "--security")
    for mount in flags.get("mount", []):
        for field in _mount_fields(mount):
            key, eq, val = field.partition("=")
            if eq and key.lower() == "from":
                idx = val.find("$")
                if idx != -1 and idx != len(val) - 1:
                    raise _Problem(
                        "'from' doesn't support variable expansion, define alias stage instead",
                        "--mount",
                    )


def _check_healthcheck(inst: Instruction) -> None:
    _at_least_one(inst, "HEALTHCHECK")
    typ = inst.value[0].upper()
    args = inst.value[1:]
    if typ == "NONE":
        if args:
            raise _Problem("HEALTHCHECK NONE takes no arguments")
        return
    flags = parse_flags(inst)
    if typ != "CMD":
        raise _Problem(f"Unknown type {go_quote(typ)} in HEALTHCHECK (try CMD)", inst.value[0])
    if not args:
        raise _Problem("Missing command after HEALTHCHECK CMD")
    for name in ("interval", "timeout", "start-period", "start-interval"):
        if name not in flags or flags[name][-1] == "":
            continue
        try:
            ns = parse_duration(flags[name][-1])
        except ValueError as exc:
            raise _Problem(f"time: {exc}", "--" + name) from None
        if ns != 0 and ns < 1_000_000:
            raise _Problem(f'Interval "{name}" cannot be less than 1ms', "--" + name)
    if "retries" in flags and flags["retries"][-1] != "":
        raw = flags["retries"][-1]
        try:
            retries = int(raw, 10)
        except ValueError:
            raise _Problem(f"invalid value for --retries: {raw}", "--retries") from None
        if retries < 0:
            raise _Problem(f"--retries cannot be negative ({retries})", "--retries")


def check_instruction(inst: Instruction) -> None:
    """Raise `_Problem` when BuildKit's instructions layer would refuse `inst`."""
    cmd = inst.cmd
    if cmd not in KNOWN_INSTRUCTIONS:
        upper = sorted(c.upper() for c in KNOWN_INSTRUCTIONS)
        raise _Problem(
            f"unknown instruction: {inst.keyword}" + _suggest(inst.keyword.upper(), upper),
            inst.keyword or None,
        )
    if cmd in ("env", "label"):
        parse_flags(inst)
        _kvps(inst, cmd.upper())
    elif cmd == "maintainer":
        _exactly_one(inst, "MAINTAINER")
        parse_flags(inst)
    elif cmd in ("add", "copy"):
        _sources_and_dest(inst, cmd.upper())
        parse_flags(inst)
    elif cmd == "from":
        args = inst.value
        if len(args) == 3 and args[1].lower() == "as":
            if not _STAGE_NAME_RE.match(args[2].lower()):
                raise _Problem(
                    f"invalid name for build stage: {go_quote(args[2])}, name can't start "
                    "with a number or contain symbols",
                    args[2],
                )
        elif len(args) != 1:
            raise _Problem("FROM requires either one or three arguments")
        parse_flags(inst)
    elif cmd == "onbuild":
        if inst.child is None:
            raise _Problem("ONBUILD requires at least one argument")
        parse_flags(inst)
        trigger = inst.child.keyword.strip().upper()
        if trigger == "ONBUILD":
            raise _Problem("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger in ("MAINTAINER", "FROM"):
            raise _Problem(f"{trigger} isn't allowed as an ONBUILD trigger", inst.child.keyword)
    elif cmd in ("workdir", "user"):
        _exactly_one(inst, cmd.upper())
        parse_flags(inst)
    elif cmd == "run":
        _check_run(inst, parse_flags(inst))
    elif cmd in ("cmd", "entrypoint"):
        parse_flags(inst)
    elif cmd == "healthcheck":
        _check_healthcheck(inst)
    elif cmd == "expose":
        _at_least_one(inst, "EXPOSE")
        parse_flags(inst)
    elif cmd == "volume":
        _at_least_one(inst, "VOLUME")
        parse_flags(inst)
        for v in inst.value:
            if not v.strip():
                raise _Problem("VOLUME specified can not be an empty string")
    elif cmd == "stopsignal":
        _exactly_one(inst, "STOPSIGNAL")
    elif cmd == "arg":
        _at_least_one(inst, "ARG")
        for word in inst.value:
            if word.startswith("="):
                raise _Problem("ARG names can not be blank", word)
    elif cmd == "shell":
        parse_flags(inst)
        if not inst.value:
            raise _Problem("SHELL requires at least one argument")
        if not inst.json:
            raise _Problem("SHELL requires the arguments to be in JSON form")


def _error(lines: list[str], path: str, inst: Instruction, problem: _Problem) -> DockerfileError:
    line, col = inst.start_line, 0
    if problem.needle:
        for ln in range(inst.start_line, min(inst.end_line, len(lines)) + 1):
            found = lines[ln - 1].find(problem.needle)
            if found >= 0:
                line, col = ln, found + 1
                break
    if col == 0 and 1 <= line <= len(lines):
        text = lines[line - 1]
        col = len(text) - len(text.lstrip()) + 1
    return DockerfileError(problem.message, file=path, line=line, col=max(col, 1))


def problems(dockerfile: Dockerfile) -> list[DockerfileError]:
    """Every instructions-layer error in the file, in source order."""
    lines = dockerfile.lines
    out: list[DockerfileError] = []
    in_stage = False
    for inst in dockerfile.instructions:
        try:
            check_instruction(inst)
            if inst.cmd == "from":
                in_stage = True
            elif not in_stage and inst.cmd != "arg":
                raise _Problem("no build stage in current context")
        except _Problem as p:
            out.append(_error(lines, dockerfile.path, inst, p))
    return out


def validate(dockerfile: Dockerfile) -> None:
    """Raise the first instructions-layer error, as `docker build` would stop on it."""
    found = problems(dockerfile)
    if found:
        raise found[0]
