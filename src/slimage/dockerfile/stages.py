"""Stage view over a parsed Dockerfile: FROMs, their names, bases and global ARGs."""

from __future__ import annotations

from collections.abc import Mapping

from slimage.dockerfile.model import Dockerfile, Instruction, Stage


def global_args(dockerfile: Dockerfile) -> list[Instruction]:
    """ARG instructions before the first FROM (BuildKit's meta args)."""
    out: list[Instruction] = []
    for inst in dockerfile.instructions:
        if inst.cmd == "from":
            break
        if inst.cmd == "arg":
            out.append(inst)
    return out


def stages(dockerfile: Dockerfile, build_args: Mapping[str, str] | None = None) -> list[Stage]:
    """Split instructions into stages; bases expanded with meta ARGs and `build_args`."""
    raise NotImplementedError
