"""Rules about Dockerfiles that do not do what they say (or fail to build)."""

from __future__ import annotations

from collections.abc import Iterator

from slimage.dockerfile.rules.base import Hit, LintContext, Severity, rule


@rule(
    "SL401",
    "multiple-cmd",
    Severity.WARNING,
    category="correctness",
    hadolint="DL4003",
    summary="More than one CMD in a stage",
    why="only the last CMD takes effect; the others are dead code that misleads readers",
    fix="keep a single CMD at the end of the stage",
)
def multiple_cmd(ctx: LintContext) -> Iterator[Hit]:
    yield from _multiple(ctx, "cmd")


@rule(
    "SL402",
    "multiple-entrypoint",
    Severity.WARNING,
    category="correctness",
    hadolint="DL4004",
    summary="More than one ENTRYPOINT in a stage",
    why="only the last ENTRYPOINT takes effect",
    fix="keep a single ENTRYPOINT",
)
def multiple_entrypoint(ctx: LintContext) -> Iterator[Hit]:
    yield from _multiple(ctx, "entrypoint")


def _multiple(ctx: LintContext, cmd: str) -> Iterator[Hit]:
    for st in ctx.stages:
        seen = [i for i in st.instructions if i.cmd == cmd]
        for inst in seen[1:]:
            yield Hit(inst, f"{cmd.upper()} overrides the one on line {seen[0].start_line}")


@rule(
    "SL403",
    "copy-from-unknown-stage",
    Severity.ERROR,
    category="correctness",
    hadolint="DL3022",
    summary="COPY --from names no earlier stage",
    why="BuildKit then treats the name as an image to pull: a typo silently copies from "
    "a registry image (or fails the build)",
    fix="name an earlier stage (`FROM ... AS <name>`), or write a full image reference",
)
def copy_from_unknown(ctx: LintContext) -> Iterator[Hit]:
    for st in ctx.stages:
        earlier = {s.name for s in ctx.stages[: st.index] if s.name}
        for inst in st.instructions:
            if inst.cmd not in ("copy", "add"):
                continue
            src = inst.flag("from")
            if src is None or "$" in src:
                continue
            low = src.lower()
            if low in earlier or (low.isdigit() and int(low) < st.index):
                continue
            if low == (st.name or "") or (low.isdigit() and int(low) == st.index):
                continue  # SL405
            later = {s.name for s in ctx.stages[st.index + 1 :] if s.name}
            if low in later:
                yield Hit(inst, f"--from={src} names a stage defined later")
            elif low.isdigit():
                yield Hit(inst, f"--from={src}: there is no stage {src} before this one")
            elif not any(c in src for c in ":/@."):
                yield Hit(inst, f"--from={src} is not a stage; BuildKit would pull image {src}")


@rule(
    "SL404",
    "duplicate-stage-name",
    Severity.ERROR,
    category="correctness",
    hadolint="DL3024",
    summary="Two stages with the same name",
    why="BuildKit refuses the Dockerfile (or, in older builders, `--from` picks one "
    "of them silently)",
    fix="give every stage a unique name",
)
def duplicate_stage(ctx: LintContext) -> Iterator[Hit]:
    seen: dict[str, int] = {}
    for st in ctx.stages:
        if st.name is None:
            continue
        if st.name in seen:
            yield Hit(st.from_inst, f"stage name {st.name} is already used on line {seen[st.name]}")
        else:
            seen[st.name] = st.from_inst.start_line


@rule(
    "SL405",
    "copy-from-self",
    Severity.ERROR,
    category="correctness",
    hadolint="DL3023",
    summary="COPY --from refers to its own stage",
    why="a stage cannot copy from itself; the build fails",
    fix="copy from an earlier stage",
)
def copy_from_self(ctx: LintContext) -> Iterator[Hit]:
    for st in ctx.stages:
        for inst in st.instructions:
            if inst.cmd != "copy":
                continue
            src = inst.flag("from")
            if src is not None and (src.lower() == (st.name or "\0") or src == str(st.index)):
                yield Hit(inst, f"--from={src} is this stage")


@rule(
    "SL406",
    "maintainer",
    Severity.INFO,
    category="correctness",
    hadolint="DL4000",
    summary="MAINTAINER is deprecated",
    why="MAINTAINER is ignored by modern tooling",
    fix='use `LABEL org.opencontainers.image.authors="..."`',
)
def maintainer(ctx: LintContext) -> Iterator[Hit]:
    for inst in ctx.dockerfile.instructions:
        if inst.cmd == "maintainer":
            yield Hit(inst, "MAINTAINER is deprecated")


@rule(
    "SL407",
    "empty-continuation-line",
    Severity.STYLE,
    category="correctness",
    summary="Empty line inside a line continuation",
    why="BuildKit warns about it and its documentation says it will become an error; "
    "the blank line silently joins two parts of one instruction",
    fix="remove the empty line, or end the instruction before it",
)
def empty_continuation(ctx: LintContext) -> Iterator[Hit]:
    by_end = {inst.end_line: inst for inst in ctx.dockerfile.instructions}
    for warning in ctx.dockerfile.warnings:
        inst = by_end.get(warning.line)
        if inst is None:
            # The warning's line is where the instruction ended; find the one covering it.
            inst = next(
                (
                    i
                    for i in ctx.dockerfile.instructions
                    if i.start_line <= warning.line <= i.end_line
                ),
                None,
            )
        if inst is not None:
            yield Hit(inst, "empty continuation line")
