"""The stage graph: which stages a build needs, in which order.

Stages come from the frontend's one stage splitter (`slimage.dockerfile.stages`), so the
builder, `lint` and `fix` see the same stages, bases and platforms; each instruction is
typed (and checked) by `slimage.dockerfile.commands`. A stage depends on the stage its
FROM names and on every stage a `COPY --from` or `RUN --mount=from=` reads. Only the
stages `--target` needs are built (BuildKit's pruning), each after the stages it
depends on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from slimage.dockerfile.commands import Command, CopyCommand, RunCommand, command_of
from slimage.dockerfile.model import Dockerfile, Instruction
from slimage.dockerfile.stages import global_arg_values, platform_args, stages
from slimage.errors import BuildError, DockerfileError


@dataclass
class PlannedStage:
    index: int
    name: str | None
    base: str  # expanded; a stage name/index when `from_stage` is set
    platform: str | None  # FROM --platform, expanded
    from_inst: Instruction
    instructions: list[Instruction] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)  # `instructions`, typed
    from_stage: int | None = None
    deps: set[int] = field(default_factory=set)

    @property
    def label(self) -> str:
        return self.name or f"stage-{self.index}"


@dataclass
class Plan:
    stages: list[PlannedStage]
    order: list[int]  # indexes of the stages to build, dependencies first
    target: int
    # Each ARG declared before the first FROM -> its value (None: declared, no value).
    meta_args: dict[str, str | None]
    # BuildKit's automatic platform args, which an `ARG TARGETARCH` in a stage picks up.
    platform_args: dict[str, str] = field(default_factory=dict)


def plan(
    df: Dockerfile, *, target: str | None = None, build_args: Mapping[str, str] | None = None
) -> Plan:
    build_args = dict(build_args or {})
    target_stage = target.lower() if target else "default"
    defaults = platform_args(target_stage=target_stage)
    split = stages(df, build_args, defaults=defaults)
    if not split:  # only a tree parsed without checks gets here (instructions, no FROM)
        first = df.instructions[0]
        raise DockerfileError(
            "no build stage in current context", file=df.path, line=first.start_line, col=1
        )
    planned = [
        PlannedStage(
            st.index,
            st.name,
            st.base_expanded,
            st.platform_expanded,
            st.from_instruction,
            list(st.instructions),
            [command_of(inst, df) for inst in st.instructions],
        )
        for st in split
    ]
    by_name = {s.name: s.index for s in planned if s.name}

    def lookup(ref: str, before: int) -> int | None:
        low = ref.lower()
        if low in by_name and by_name[low] < before:
            return by_name[low]
        if low.isdigit() and int(low) < before:
            return int(low)
        return None

    for s in planned:
        idx = lookup(s.base, s.index)
        if idx is not None:
            s.from_stage = idx
            s.deps.add(idx)
        for cmd in s.commands:
            if isinstance(cmd, CopyCommand) and cmd.from_:
                src = cmd.from_
                dep = lookup(src, s.index)
                if dep is None and (src.lower() in by_name or src.isdigit()):
                    raise cmd.error(f"stage {src!r} is not defined before it is used", "--from")
                if dep is not None:
                    s.deps.add(dep)
            elif isinstance(cmd, RunCommand):
                for ref in cmd.mount_froms():
                    dep = lookup(ref, s.index)
                    if dep is not None:
                        s.deps.add(dep)

    if target:
        t = target.lower()
        if t in by_name:
            tgt = by_name[t]
        else:
            raise BuildError(f"target stage {target!r} could not be found")
    else:
        tgt = len(planned) - 1
    order: list[int] = []
    seen: set[int] = set()

    def visit(i: int) -> None:
        if i in seen:
            return
        seen.add(i)
        for d in sorted(planned[i].deps):
            visit(d)
        order.append(i)

    visit(tgt)
    return Plan(planned, order, tgt, global_arg_values(df, build_args, defaults=defaults), defaults)
