"""BuildKit's instructions-layer checks over a whole parsed Dockerfile.

BuildKit's parser accepts `COPY --usr=me a b` or `FOO bar`; its `instructions` package then
refuses them while typing each instruction, before anything is built. `docker build`
users see those refusals, so `slimage.dockerfile.parse()` runs them too. The checks
themselves live with the typing in `slimage.dockerfile.commands` (one rule, one place);
this module adds the file-level one (no instruction but ARG before the first FROM) and
collects them. Each error carries FILE:LINE:COL.

`problems()` returns every error (a linter wants them all); `validate()` raises the first.
"""

from __future__ import annotations

from slimage.dockerfile.commands import CommandError, locate, type_instruction
from slimage.dockerfile.model import Dockerfile
from slimage.errors import DockerfileError


def problems(dockerfile: Dockerfile) -> list[DockerfileError]:
    """Every instructions-layer error in the file, in source order."""
    lines = dockerfile.lines
    out: list[DockerfileError] = []
    in_stage = False
    for inst in dockerfile.instructions:
        try:
            type_instruction(inst, dockerfile.escape)
            if inst.cmd == "from":
                in_stage = True
            elif not in_stage and inst.cmd != "arg":
                raise CommandError("no build stage in current context")
        except CommandError as p:
            out.append(locate(lines, dockerfile.path, inst, p.message, p.needle))
    return out


def validate(dockerfile: Dockerfile) -> None:
    """Raise the first instructions-layer error, as `docker build` would stop on it."""
    found = problems(dockerfile)
    if found:
        raise found[0]
