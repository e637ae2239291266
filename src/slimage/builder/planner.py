"""The stage graph: which stages a build needs, in which order.

Stages are found from the FROM lines; a stage depends on the stage its FROM names and on
every stage a `COPY --from` or `RUN --mount=from=` reads. Only the stages `--target` needs
are built (BuildKit's pruning), each after the stages it depends on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from slimage.dockerfile.expand import expand_word
from slimage.dockerfile.model import Dockerfile, Instruction
from slimage.errors import BuildError, DockerfileError


@dataclass
class PlannedStage:
    index: int
    name: str | None
    base: str  # expanded; a stage name/index when `from_stage` is set
    platform: str | None
    from_inst: Instruction
    instructions: list[Instruction] = field(default_factory=list)
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
    meta_args: dict[str, str | None]


def _parse_kv_flags(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        out[k.strip().lower()] = v.strip()
    return out


def plan(
    df: Dockerfile, *, target: str | None = None, build_args: Mapping[str, str] | None = None
) -> Plan:
    build_args = dict(build_args or {})
    meta: dict[str, str | None] = {}
    stages: list[PlannedStage] = []
    for inst in df.instructions:
        if inst.cmd == "from":
            words = list(inst.value)
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
                raise DockerfileError(
                    "FROM requires either one or three arguments",
                    file=df.path,
                    line=inst.start_line,
                )
            env = {k: v for k, v in meta.items() if v is not None}
            base = expand_word(words[0], env, df.escape)
            name = words[2].lower() if len(words) == 3 else None
            plat = inst.flag("platform")
            stages.append(PlannedStage(len(stages), name, base, plat, inst))
        elif not stages:
            if inst.cmd != "arg":
                raise DockerfileError(
                    f"no build stage in current context ({inst.keyword or inst.cmd.upper()} before FROM)",
                    file=df.path,
                    line=inst.start_line,
                )
            for word in inst.value:
                k, eq, v = word.partition("=")
                env = {a: b for a, b in meta.items() if b is not None}
                meta[k] = build_args.get(k, expand_word(v, env, df.escape) if eq else None)
        else:
            stages[-1].instructions.append(inst)
    if not stages:
        raise DockerfileError("file with no instructions", file=df.path, line=1)

    by_name = {s.name: s.index for s in stages if s.name}

    def lookup(ref: str, before: int) -> int | None:
        low = ref.lower()
        if low in by_name and by_name[low] < before:
            return by_name[low]
        if low.isdigit() and int(low) < before:
            return int(low)
        return None

    for s in stages:
        idx = lookup(s.base, s.index)
        if idx is not None:
            s.from_stage = idx
            s.deps.add(idx)
        for inst in s.instructions:
            eff = inst.effective
            if eff.cmd in ("copy", "add"):
                src = eff.flag("from")
                if src:
                    dep = lookup(src, s.index)
                    if dep is None and (src.lower() in by_name or src.isdigit()):
                        raise BuildError(
                            f"{df.path}:{inst.start_line}: stage {src!r} is not defined before it is used"
                        )
                    if dep is not None:
                        s.deps.add(dep)
            if eff.cmd == "run":
                for m in eff.flag_values("mount"):
                    f = _parse_kv_flags(m)
                    if f.get("from"):
                        dep = lookup(f["from"], s.index)
                        if dep is not None:
                            s.deps.add(dep)

    if target:
        t = target.lower()
        if t in by_name:
            tgt = by_name[t]
        else:
            raise BuildError(f"target stage {target!r} could not be found")
    else:
        tgt = len(stages) - 1
    order: list[int] = []
    seen: set[int] = set()

    def visit(i: int) -> None:
        if i in seen:
            return
        seen.add(i)
        for d in sorted(stages[i].deps):
            visit(d)
        order.append(i)

    visit(tgt)
    return Plan(stages, order, tgt, meta)
