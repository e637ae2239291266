"""BuildKit's `Node.Dump()` text format, so our tree can be diffed against its test files.

`(cmd ["--flag"] "arg" "arg")`, one line per instruction; ONBUILD nests its trigger as
`(onbuild (run "x"))`. Strings are quoted the Go way (`strconv.Quote`).
"""

from __future__ import annotations

from slimage.dockerfile.model import Dockerfile, Instruction
from slimage.dockerfile.parser import go_quote


def dump_instruction(inst: Instruction) -> str:
    parts = [inst.keyword.lower()]
    if inst.flags:
        parts.append(" [" + " ".join(go_quote(f) for f in inst.flags) + "]")
    if inst.child is not None:
        parts.append(" (" + dump_instruction(inst.child) + ")")
    else:
        for v in inst.value:
            parts.append(" " + go_quote(v))
    return "".join(parts).strip()


def dump(dockerfile: Dockerfile) -> str:
    """The whole tree, as BuildKit's parser tests compare it (with a final newline)."""
    return "".join(f"({dump_instruction(i)})\n" for i in dockerfile.instructions)
