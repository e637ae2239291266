"""Typed commands: BuildKit's `instructions` layer, between the parser and the builder.

The parse tree keeps arguments as BuildKit's parser splits them (`ENV a=b` is
`["a", "b", "="]`, shell-form RUN is one string, flags are raw `--name=value` words). The
builder, the linter and the validator want the meaning instead, and BuildKit refuses a bad
instruction while it types it (unknown flag, `--chmod=xyz`, a malformed `--mount`, a
duration Go cannot parse), before anything runs. So this module does both at once:
`command_of(inst, dockerfile)` returns one typed command per instruction, or raises a
`DockerfileError` located at FILE:LINE:COL.

Values that hold variables (`--chmod=$MODE`, `--mount=uid=$UID`) can only be checked once
the builder knows the variables; the typed command's methods take the variables and raise
the same located error then. One function per concern lives here and nowhere else: the
flag parser, the duration parser, the ENV/LABEL and ARG splitters, the `--mount` parser
(in `mounts`), heredoc names (in `heredoc`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from slimage.dockerfile.expand import ShellLex
from slimage.dockerfile.heredoc import heredoc_ref
from slimage.dockerfile.model import Dockerfile, Heredoc, Instruction
from slimage.dockerfile.mounts import Mount, MountError, mount_fields, parse_mount
from slimage.dockerfile.parser import KNOWN_INSTRUCTIONS, go_quote
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
# go-digest's registered algorithms and their hex lengths (ADD --checksum).
CHECKSUM_ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
_HEX_RE = re.compile(r"[a-f0-9]+\Z")


class CommandError(Exception):
    """An instruction BuildKit's instructions layer refuses. `needle` is the text to point
    the column at (a flag name, a word); `locate()` turns it into a DockerfileError."""

    def __init__(self, message: str, needle: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.needle = needle


def locate(
    lines: list[str], path: str, inst: Instruction, message: str, needle: str | None = None
) -> DockerfileError:
    """A DockerfileError at the first line of `inst` holding `needle` (else its keyword)."""
    line, col = inst.start_line, 0
    if needle:
        for ln in range(inst.start_line, min(inst.end_line, len(lines)) + 1):
            found = lines[ln - 1].find(needle)
            if found >= 0:
                line, col = ln, found + 1
                break
    if col == 0 and 1 <= line <= len(lines):
        text = lines[line - 1]
        col = len(text) - len(text.lstrip()) + 1
    return DockerfileError(message, file=path, line=line, col=max(col, 1))


# ---------------------------------------------------------------------------------------
# The one parser of each kind of value


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


def parse_chmod(text: str) -> int:
    """`--chmod=0755` -> 0o755. Octal only, at most 07777 (what the builder applies)."""
    if not text or not text.isascii() or not text.isdigit() or set(text) & {"8", "9"}:
        raise CommandError(
            f"invalid chmod parameter {text}. it should be octal string and between 0 and 07777",
            "--chmod",
        )
    mode = int(text, 8)
    if mode > 0o7777:
        raise CommandError(
            f"invalid chmod parameter {text}. it should be octal string and between 0 and 07777",
            "--chmod",
        )
    return mode


def parse_checksum(text: str) -> tuple[str, str]:
    """`--checksum=sha256:<hex>` -> (algorithm, hex), by go-digest's rules."""
    algo, sep, hexpart = text.partition(":")
    if not sep or not algo or not hexpart:
        raise CommandError(f"invalid checksum digest format: {text}", "--checksum")
    if algo not in CHECKSUM_ALGORITHMS:
        raise CommandError(f"unsupported digest algorithm: {algo}", "--checksum")
    if len(hexpart) != CHECKSUM_ALGORITHMS[algo] or not _HEX_RE.match(hexpart):
        raise CommandError(f"invalid checksum digest length or characters: {text}", "--checksum")
    return algo, hexpart


def kv_pairs(value: list[str]) -> list[tuple[str, str]]:
    """ENV/LABEL `(key, value)` pairs from the parser's triples (quotes still in place)."""
    return [(value[j], value[j + 1]) for j in range(0, len(value) - 2, 3)]


def arg_pairs(inst: Instruction) -> list[tuple[str, str | None]]:
    """`ARG a b=1` -> [("a", None), ("b", "1")] (values still unexpanded, quotes kept)."""
    out: list[tuple[str, str | None]] = []
    for word in inst.value:
        key, eq, value = word.partition("=")
        out.append((key, value if eq else None))
    return out


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
            raise CommandError(f"arg should start with -- : {a}", a)
        name, has_value, value = a.partition("=")
        arg = name[2:]
        kind = spec.get(arg)
        if kind is None:
            raise CommandError(
                f"unknown flag: {name}" + _suggest(arg, sorted(spec)).replace("mean ", "mean --"),
                name,
            )
        if arg in used and kind != _STRS:
            raise CommandError(f"duplicate flag specified: {name}", name)
        if kind == _BOOL:
            if has_value and value == "":
                raise CommandError(f"missing a value on flag: {name}", name)
            low = value.lower()
            if low in ("true", ""):
                used[arg] = ["true"]
            elif low == "false":
                used[arg] = ["false"]
            else:
                raise CommandError(f"expecting boolean value for flag {name}, not: {value}", name)
        else:
            if not has_value:
                raise CommandError(f"missing a value on flag: {name}", name)
            used.setdefault(arg, []).append(value)
    return used


def _last(flags: dict[str, list[str]], name: str) -> str | None:
    values = flags.get(name)
    return values[-1] if values else None


# ---------------------------------------------------------------------------------------
# Typed commands


@dataclass(slots=True)
class Command:
    """What every typed command shares: the instruction it came from and where it is, so
    a value that can only be checked at build time still fails at FILE:LINE:COL."""

    inst: Instruction
    path: str = field(default="Dockerfile", kw_only=True)
    lines: list[str] = field(default_factory=list, kw_only=True, repr=False)

    def error(self, message: str, needle: str | None = None) -> DockerfileError:
        return locate(self.lines, self.path, self.inst, message, needle)


@dataclass(slots=True)
class FromCommand(Command):
    base: str = ""
    name: str | None = None  # lowercased, as BuildKit names stages
    platform: str | None = None


@dataclass(slots=True)
class ArgCommand(Command):
    args: list[tuple[str, str | None]] = field(default_factory=list)


@dataclass(slots=True)
class KeyValueCommand(Command):
    """ENV and LABEL: pairs as written; `expanded()` is what the image config gets."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    escape: str = "\\"

    def expanded(self, env: Mapping[str, str]) -> list[tuple[str, str]]:
        """Quotes and escapes processed, variables from `env` (unset ones become "")."""
        lex = ShellLex(self.escape)
        return [(lex.process_word(k, env), lex.process_word(v, env)) for k, v in self.pairs]


@dataclass(slots=True)
class EnvCommand(KeyValueCommand):
    pass


@dataclass(slots=True)
class LabelCommand(KeyValueCommand):
    pass


@dataclass(slots=True)
class MaintainerCommand(Command):
    author: str = ""


@dataclass(slots=True)
class ShellDependentCommand(Command):
    """RUN, CMD, ENTRYPOINT: exec form as is, shell form as one string that the stage's
    SHELL runs (BuildKit's `PrependShell`)."""

    cmdline: list[str] = field(default_factory=list)
    prepend_shell: bool = True


@dataclass(slots=True)
class RunCommand(ShellDependentCommand):
    files: list[Heredoc] = field(default_factory=list)
    mount_specs: list[str] = field(default_factory=list)
    network: str | None = None
    security: str | None = None

    def mounts(self, expand: Callable[[str], str] | None = None) -> list[Mount]:
        """Every `--mount`, values expanded with `expand` (the stage's variables)."""
        out = []
        for spec in self.mount_specs:
            try:
                out.append(parse_mount(spec, expand))
            except MountError as exc:
                raise self.error(str(exc), "--mount") from None
        return out

    def mount_froms(self) -> list[str]:
        """The stage or image each `--mount` reads (`from=`), for the stage graph; `from`
        never expands, so this needs no variables."""
        out = []
        for spec in self.mount_specs:
            for fld in mount_fields(spec):
                key, eq, value = fld.partition("=")
                if eq and key.lower() == "from" and value:
                    out.append(value)
        return out

    def heredoc_script(self) -> Heredoc | None:
        """The body to run when the command line is a lone heredoc word (`RUN <<EOF`),
        as BuildKit's dispatchRun decides; None when the heredocs feed a command."""
        if not self.files or len(self.cmdline) != 1 or heredoc_ref(self.cmdline[0]) is None:
            return None
        return self.files[0]


@dataclass(slots=True)
class CmdCommand(ShellDependentCommand):
    pass


@dataclass(slots=True)
class EntrypointCommand(ShellDependentCommand):
    pass


@dataclass(slots=True)
class ShellCommand(Command):
    shell: list[str] = field(default_factory=list)


@dataclass(slots=True)
class InlineFile:
    """A COPY/ADD heredoc source: written as a file named `name` with `data` (`<<-` tabs
    already stripped); `expand` is False when the delimiter was quoted."""

    name: str
    data: str
    expand: bool


@dataclass(slots=True)
class CopyCommand(Command):
    """COPY (and, as `AddCommand`, ADD): context sources, heredoc files, destination,
    all unexpanded; `chmod` is checked here when literal, else by `chmod_value()`."""

    sources: list[str] = field(default_factory=list)
    inline: list[InlineFile] = field(default_factory=list)
    source_words: list[str] = field(default_factory=list)  # sources as written, in order
    dest: str = ""
    chown: str | None = None
    chmod: str | None = None
    from_: str | None = None
    link: bool = False
    parents: bool = False
    exclude: list[str] = field(default_factory=list)

    def inline_file(self, word: str) -> InlineFile | None:
        """The heredoc file a source word stands for, None for a context path."""
        ref = heredoc_ref(word) if not self.inst.effective.json else None
        if ref is None:
            return None
        for f in self.inline:
            if f.name == ref.name:
                return f
        return None

    def chmod_value(self, expand: Callable[[str], str]) -> int | None:
        if not self.chmod:
            return None
        try:
            return parse_chmod(expand(self.chmod))
        except CommandError as exc:
            raise self.error(exc.message, exc.needle) from None


@dataclass(slots=True)
class AddCommand(CopyCommand):
    checksum: str | None = None
    keep_git_dir: bool = False
    unpack: bool | None = None

    def checksum_value(self, expand: Callable[[str], str]) -> tuple[str, str] | None:
        if not self.checksum:
            return None
        try:
            return parse_checksum(expand(self.checksum))
        except CommandError as exc:
            raise self.error(exc.message, exc.needle) from None


@dataclass(slots=True)
class SingleWordCommand(Command):
    """USER, WORKDIR, STOPSIGNAL: one word, expanded by the builder."""

    word: str = ""


@dataclass(slots=True)
class UserCommand(SingleWordCommand):
    pass


@dataclass(slots=True)
class WorkdirCommand(SingleWordCommand):
    pass


@dataclass(slots=True)
class StopSignalCommand(SingleWordCommand):
    pass


@dataclass(slots=True)
class ExposeCommand(Command):
    ports: list[str] = field(default_factory=list)


@dataclass(slots=True)
class VolumeCommand(Command):
    volumes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class HealthcheckCommand(Command):
    """HEALTHCHECK in image-config form: `test` (`["NONE"]`, `["CMD", ...]` or
    `["CMD-SHELL", cmd]`), durations in ns, retries; zero means "not set"."""

    test: list[str] = field(default_factory=list)
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    def config(self) -> dict[str, object]:
        """As the image config stores it (Go's `omitempty`: zero fields left out)."""
        out: dict[str, object] = {"Test": list(self.test)}
        for key, ns in (
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
        ):
            if ns:
                out[key] = ns
        if self.retries:
            out["Retries"] = self.retries
        return out


@dataclass(slots=True)
class OnbuildCommand(Command):
    expression: str = ""


# ---------------------------------------------------------------------------------------
# Typing (and checking) one instruction


def _exactly_one(inst: Instruction, name: str) -> str:
    if len(inst.value) != 1:
        raise CommandError(f"{name} requires exactly one argument")
    return inst.value[0]


def _at_least_one(inst: Instruction, name: str) -> None:
    if not inst.value:
        raise CommandError(f"{name} requires at least one argument")


def cmdline(inst: Instruction) -> list[str]:
    """RUN/CMD/ENTRYPOINT/SHELL arguments: exec form as is, shell form as one string
    (BuildKit's handleJSONArgs). For HEALTHCHECK, the command after `CMD`."""
    target = inst.effective
    args = target.value[1:] if target.cmd == "healthcheck" else target.value
    if not args:
        return []
    if target.json:
        return list(args)
    return [" ".join(args)]


def prepends_shell(inst: Instruction) -> bool:
    """True when the command runs through the stage's SHELL (shell form)."""
    return not inst.effective.json


def _check_from_args(inst: Instruction) -> None:
    args = inst.value
    if len(args) == 3 and args[1].lower() == "as":
        if not _STAGE_NAME_RE.match(args[2].lower()):
            raise CommandError(
                f"invalid name for build stage: {go_quote(args[2])}, name can't start "
                "with a number or contain symbols",
                args[2],
            )
    elif len(args) != 1:
        raise CommandError("FROM requires either one or three arguments")


def _type_from(inst: Instruction, flags: dict[str, list[str]]) -> FromCommand:
    args = inst.value
    name = args[2].lower() if len(args) == 3 else None
    return FromCommand(inst, base=args[0], name=name, platform=_last(flags, "platform"))


def _type_run(inst: Instruction, flags: dict[str, list[str]]) -> RunCommand:
    network = _last(flags, "network")
    if network is not None and network not in NETWORK_MODES:
        raise CommandError(f"invalid network mode {go_quote(network)}", "--network")
    security = _last(flags, "security")
    if security is not None and security not in SECURITY_MODES:
        raise CommandError(f"security {go_quote(security)} is not valid", "--security")
    specs = flags.get("mount", [])
    for spec in specs:
        _check_mount(spec)
    return RunCommand(
        inst,
        cmdline=cmdline(inst),
        prepend_shell=not inst.json,
        files=list(inst.heredocs),
        mount_specs=list(specs),
        network=network,
        security=security,
    )


def _check_mount(spec: str) -> None:
    """A `--mount` checked as far as it can be before variables are known: all of it when
    it holds no `$` (the rest waits for `RunCommand.mounts()`), else its CSV shape, and
    `from=`, which never expands."""
    try:
        if "$" not in spec:
            parse_mount(spec)
            return
        fields = mount_fields(spec)
    except MountError as exc:
        raise CommandError(str(exc), "--mount") from None
    for fld in fields:
        key, eq, val = fld.partition("=")
        if eq and key.lower() == "from":
            idx = val.find("$")
            if idx != -1 and idx != len(val) - 1:
                raise CommandError(
                    "'from' doesn't support variable expansion, define alias stage instead",
                    "--mount",
                )


def _check_copy_args(inst: Instruction) -> None:
    name = inst.cmd.upper()
    args = inst.value
    if len(args) < 2:
        raise CommandError(
            f"{name} requires at least two arguments, but only one was provided. "
            "Destination could not be determined"
        )
    if heredoc_ref(args[-1]) is not None:
        raise CommandError(f"{name} cannot accept a heredoc as a destination", args[-1])


def _type_copy(inst: Instruction, flags: dict[str, list[str]], *, add: bool) -> CopyCommand:
    args = inst.value
    docs = {d.name: d for d in inst.heredocs}
    sources: list[str] = []
    inline: list[InlineFile] = []
    for src in args[:-1]:
        ref = heredoc_ref(src) if not inst.json else None
        if ref is not None:
            doc = docs.get(ref.name)
            data = doc.content if doc is not None else ""
            if ref.chomp:
                data = "".join(line.lstrip("\t") for line in data.splitlines(keepends=True))
            inline.append(InlineFile(name=ref.name, data=data, expand=ref.expand))
        else:
            sources.append(src)
    chmod = _last(flags, "chmod")
    if chmod and "$" not in chmod:
        parse_chmod(chmod)
    common = {
        "sources": sources,
        "inline": inline,
        "source_words": list(args[:-1]),
        "dest": args[-1],
        "chown": _last(flags, "chown"),
        "chmod": chmod,
        "link": _last(flags, "link") == "true",
        "exclude": list(flags.get("exclude", [])),
    }
    if not add:
        return CopyCommand(
            inst,
            from_=_last(flags, "from"),
            parents=_last(flags, "parents") == "true",
            **common,  # type: ignore[arg-type]
        )
    checksum = _last(flags, "checksum")
    if checksum:
        if "$" not in checksum:
            parse_checksum(checksum)
        if len(args) != 2:
            raise CommandError("checksum can't be specified for multiple sources", "--checksum")
        src = args[0]
        if "$" not in src and not src.startswith(("http://", "https://")):
            raise CommandError("checksum can't be specified for non-HTTP(S) sources", "--checksum")
    unpack = _last(flags, "unpack")
    return AddCommand(
        inst,
        checksum=checksum,
        keep_git_dir=_last(flags, "keep-git-dir") == "true",
        unpack=None if unpack is None else unpack == "true",
        **common,  # type: ignore[arg-type]
    )


def _type_healthcheck(inst: Instruction) -> HealthcheckCommand:
    _at_least_one(inst, "HEALTHCHECK")
    typ = inst.value[0].upper()
    args = inst.value[1:]
    if typ == "NONE":
        if args:
            raise CommandError("HEALTHCHECK NONE takes no arguments")
        return HealthcheckCommand(inst, test=["NONE"])
    flags = parse_flags(inst)
    if typ != "CMD":
        raise CommandError(f"Unknown type {go_quote(typ)} in HEALTHCHECK (try CMD)", inst.value[0])
    if not args:
        raise CommandError("Missing command after HEALTHCHECK CMD")
    durations: dict[str, int] = {}
    for name in ("interval", "timeout", "start-period", "start-interval"):
        raw = _last(flags, name)
        if not raw:
            continue
        try:
            ns = parse_duration(raw)
        except ValueError as exc:
            raise CommandError(f"time: {exc}", "--" + name) from None
        if ns != 0 and ns < 1_000_000:
            raise CommandError(f'Interval "{name}" cannot be less than 1ms', "--" + name)
        durations[name] = ns
    retries = 0
    raw = _last(flags, "retries")
    if raw:
        try:
            retries = int(raw, 10)
        except ValueError:
            raise CommandError(f"invalid value for --retries: {raw}", "--retries") from None
        if retries < 0:
            raise CommandError(f"--retries cannot be negative ({retries})", "--retries")
    return HealthcheckCommand(
        inst,
        test=[("CMD" if inst.json else "CMD-SHELL"), *cmdline(inst)],
        interval=durations.get("interval", 0),
        timeout=durations.get("timeout", 0),
        start_period=durations.get("start-period", 0),
        start_interval=durations.get("start-interval", 0),
        retries=retries,
    )


def type_instruction(inst: Instruction, escape: str = "\\") -> Command:
    """`inst` as a typed command; raises `CommandError` where BuildKit's instructions
    layer refuses it. Use `command_of()` for an error with FILE:LINE:COL."""
    cmd = inst.cmd
    if cmd not in KNOWN_INSTRUCTIONS:
        upper = sorted(c.upper() for c in KNOWN_INSTRUCTIONS)
        raise CommandError(
            f"unknown instruction: {inst.keyword}" + _suggest(inst.keyword.upper(), upper),
            inst.keyword or None,
        )
    if cmd == "healthcheck":
        return _type_healthcheck(inst)
    if cmd in ("env", "label"):
        name = cmd.upper()
        parse_flags(inst)
        _at_least_one(inst, name)
        pairs = kv_pairs(inst.value)
        if any(not k for k, _ in pairs):
            raise CommandError(f"{name} names can not be blank")
        cls = EnvCommand if cmd == "env" else LabelCommand
        return cls(inst, pairs=pairs, escape=escape)
    if cmd == "maintainer":
        author = _exactly_one(inst, "MAINTAINER")
        parse_flags(inst)
        return MaintainerCommand(inst, author=author)
    if cmd in ("add", "copy"):
        _check_copy_args(inst)
        return _type_copy(inst, parse_flags(inst), add=cmd == "add")
    if cmd == "from":
        _check_from_args(inst)
        return _type_from(inst, parse_flags(inst))
    if cmd == "onbuild":
        if inst.child is None:
            raise CommandError("ONBUILD requires at least one argument")
        parse_flags(inst)
        trigger = inst.child.keyword.strip().upper()
        if trigger == "ONBUILD":
            raise CommandError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if trigger in ("MAINTAINER", "FROM"):
            raise CommandError(f"{trigger} isn't allowed as an ONBUILD trigger", inst.child.keyword)
        return OnbuildCommand(inst, expression=inst.child.original)
    if cmd in ("workdir", "user"):
        word = _exactly_one(inst, cmd.upper())
        parse_flags(inst)
        return (WorkdirCommand if cmd == "workdir" else UserCommand)(inst, word=word)
    if cmd == "run":
        return _type_run(inst, parse_flags(inst))
    if cmd in ("cmd", "entrypoint"):
        parse_flags(inst)
        cls2 = CmdCommand if cmd == "cmd" else EntrypointCommand
        return cls2(inst, cmdline=cmdline(inst), prepend_shell=not inst.json)
    if cmd == "expose":
        _at_least_one(inst, "EXPOSE")
        parse_flags(inst)
        return ExposeCommand(inst, ports=list(inst.value))
    if cmd == "volume":
        _at_least_one(inst, "VOLUME")
        parse_flags(inst)
        for v in inst.value:
            if not v.strip():
                raise CommandError("VOLUME specified can not be an empty string")
        return VolumeCommand(inst, volumes=list(inst.value))
    # BuildKit never parses the flags of STOPSIGNAL and ARG, so any flag passes.
    if cmd == "stopsignal":
        return StopSignalCommand(inst, word=_exactly_one(inst, "STOPSIGNAL"))
    if cmd == "arg":
        _at_least_one(inst, "ARG")
        for word in inst.value:
            if word.startswith("="):
                raise CommandError("ARG names can not be blank", word)
        return ArgCommand(inst, args=arg_pairs(inst))
    # SHELL
    parse_flags(inst)
    if not inst.value:
        raise CommandError("SHELL requires at least one argument")
    if not inst.json:
        raise CommandError("SHELL requires the arguments to be in JSON form")
    return ShellCommand(inst, shell=list(inst.value))


def command_of(inst: Instruction, dockerfile: Dockerfile) -> Command:
    """`inst` typed and checked; a refusal is a DockerfileError at FILE:LINE:COL."""
    try:
        command = type_instruction(inst, dockerfile.escape)
    except CommandError as exc:
        raise locate(dockerfile.lines, dockerfile.path, inst, exc.message, exc.needle) from None
    command.path = dockerfile.path
    command.lines = dockerfile.lines
    return command


# ---------------------------------------------------------------------------------------
# Views kept for the linter and tests (thin wrappers over the typed commands)


@dataclass(slots=True)
class SourcesAndDest:
    dest: str
    sources: list[str] = field(default_factory=list)
    inline: list[InlineFile] = field(default_factory=list)


def sources_and_dest(inst: Instruction) -> SourcesAndDest:
    """Split COPY/ADD arguments into context sources, heredoc files and destination
    (unexpanded). `<<-` bodies have their tabs stripped."""
    target = inst.effective
    try:
        _check_copy_args(target)
        typed = _type_copy(target, parse_flags(target), add=target.cmd == "add")
    except CommandError as exc:
        raise ValueError(exc.message) from None
    return SourcesAndDest(dest=typed.dest, sources=typed.sources, inline=typed.inline)


def key_values(
    inst: Instruction, env: Mapping[str, str] | None = None, escape: str = "\\"
) -> list[tuple[str, str]]:
    """ENV/LABEL pairs with quotes and escapes processed and variables expanded from
    `env` (BuildKit always runs them through its lexer; unset variables become "")."""
    cmd = KeyValueCommand(inst.effective, pairs=kv_pairs(inst.effective.value), escape=escape)
    return cmd.expanded(env or {})


def healthcheck(inst: Instruction) -> dict[str, object]:
    """HEALTHCHECK as the image config stores it (`Test`, durations in ns, `Retries`)."""
    return _type_healthcheck(inst.effective).config()


# Instructions whose arguments BuildKit expands (their `Expand()` methods plus EXPOSE and
# FROM in dockerfile2llb). CMD, ENTRYPOINT, RUN (except --mount values), SHELL,
# HEALTHCHECK, MAINTAINER and ONBUILD are left for the shell or stored as written.
EXPANDED_INSTRUCTIONS = frozenset(
    {
        "add",
        "copy",
        "env",
        "label",
        "arg",
        "expose",
        "from",
        "stopsignal",
        "user",
        "volume",
        "workdir",
    }
)


def expand_args(inst: Instruction, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """`inst.value` after BuildKit's variable expansion, same shape as `value`.

    ENV/LABEL triples keep their separator; `ARG k=v` expands key and value apart; EXPOSE
    words may split into several; COPY/ADD heredoc sources (`<<EOF`) are left alone.
    Instructions BuildKit does not expand come back unchanged."""
    cmd = inst.cmd
    value = inst.value
    if cmd not in EXPANDED_INSTRUCTIONS:
        return list(value)
    lex = ShellLex(escape)
    if cmd in ("env", "label"):
        out = list(value)
        for j in range(0, len(out) - 2, 3):
            out[j] = lex.process_word(out[j], env)
            out[j + 1] = lex.process_word(out[j + 1], env)
        return out
    if cmd == "arg":
        out = []
        for key, val in arg_pairs(inst):
            key = lex.process_word(key, env)
            out.append(key if val is None else key + "=" + lex.process_word(val, env))
        return out
    if cmd == "expose":
        return [w for word in value for w in lex.process_words(word, env)]
    if cmd in ("add", "copy") and not inst.json:
        return [
            word if heredoc_ref(word) is not None else lex.process_word(word, env) for word in value
        ]
    return [lex.process_word(word, env) for word in value]
