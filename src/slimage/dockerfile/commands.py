"""Typed views of single instructions, as BuildKit's `instructions` package builds them.

The parse tree keeps arguments as BuildKit's parser splits them (`ENV a=b` is
`["a", "b", "="]`, shell-form RUN is one string). The builder and the linter want the
meaning instead: the command line and whether a shell is prepended, COPY sources vs
heredoc files vs destination, key/value pairs with quotes processed, the healthcheck in
image-config form. Each helper here answers one of those, with BuildKit's rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from slimage.dockerfile.expand import ShellLex
from slimage.dockerfile.model import Instruction
from slimage.dockerfile.parser import parse_heredoc
from slimage.dockerfile.validate import parse_duration


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


@dataclass(slots=True)
class InlineFile:
    """A COPY/ADD heredoc source: written as a file named `name` with `data`."""

    name: str
    data: str
    expand: bool


@dataclass(slots=True)
class SourcesAndDest:
    dest: str
    sources: list[str] = field(default_factory=list)
    inline: list[InlineFile] = field(default_factory=list)


def sources_and_dest(inst: Instruction) -> SourcesAndDest:
    """Split COPY/ADD arguments into context sources, heredoc files and destination
    (unexpanded; see `expand.expand_args`). `<<-` bodies have their tabs stripped."""
    target = inst.effective
    args = target.value
    if len(args) < 2:
        raise ValueError(f"{target.cmd.upper()} needs at least a source and a destination")
    docs = {d.name: d for d in target.heredocs}
    out = SourcesAndDest(dest=args[-1])
    for src in args[:-1]:
        ref = parse_heredoc(src) if "<<" in src and not target.json else None
        if ref is not None:
            doc = docs.get(ref.name)
            data = doc.content if doc is not None else ""
            if ref.chomp:
                data = "".join(line.lstrip("\t") for line in data.splitlines(keepends=True))
            out.inline.append(InlineFile(name=ref.name, data=data, expand=ref.expand))
        else:
            out.sources.append(src)
    return out


def key_values(
    inst: Instruction, env: Mapping[str, str] | None = None, escape: str = "\\"
) -> list[tuple[str, str]]:
    """ENV/LABEL pairs with quotes and escapes processed and variables expanded from
    `env` (BuildKit always runs them through its lexer; unset variables become "")."""
    lex = ShellLex(escape)
    values = inst.effective.value
    env = env or {}
    return [
        (lex.process_word(values[j], env), lex.process_word(values[j + 1], env))
        for j in range(0, len(values) - 2, 3)
    ]


def healthcheck(inst: Instruction) -> dict[str, object]:
    """HEALTHCHECK as the image config stores it (`Test`, durations in ns, `Retries`)."""
    target = inst.effective
    typ = target.value[0].upper() if target.value else ""
    if typ == "NONE":
        return {"Test": ["NONE"]}
    test = cmdline(target)
    out: dict[str, object] = {"Test": [("CMD" if target.json else "CMD-SHELL"), *test]}
    for flag, key in (
        ("interval", "Interval"),
        ("timeout", "Timeout"),
        ("start-period", "StartPeriod"),
        ("start-interval", "StartInterval"),
    ):
        value = target.flag(flag)
        if value:
            ns = parse_duration(value)
            if ns:
                out[key] = ns
    retries = target.flag("retries")
    if retries:
        out["Retries"] = int(retries)
    return out
