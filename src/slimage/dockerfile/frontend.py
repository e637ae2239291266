"""The frontend's entry point: Dockerfile text -> a checked tree, as `docker build` reads it.

BuildKit runs two layers before it builds: the parser (text -> tree) and the
instructions package (tree -> typed, checked commands). Everything that builds, lints or
fixes a Dockerfile starts here, so a file `docker build` would refuse is refused the same
way everywhere, with FILE:LINE:COL. Keeping this apart from `parser` keeps the parser at
the bottom of the import graph.
"""

from __future__ import annotations

from pathlib import Path

from slimage.dockerfile import parser
from slimage.dockerfile.model import Dockerfile
from slimage.dockerfile.validate import validate


def parse(text: str, *, path: str = "Dockerfile", strict: bool = True) -> Dockerfile:
    """Parse Dockerfile text; `strict` (the default) also types and checks every
    instruction as BuildKit's instructions layer does (unknown instruction or flag, bad
    flag values, argument counts, instruction before FROM). `strict=False` accepts what
    BuildKit's parser alone accepts. Raises `DockerfileError` ("FILE:LINE:COL: msg")."""
    dockerfile = parser.parse(text, path=path)
    if strict:
        validate(dockerfile)
    return dockerfile


def parse_file(path: str | Path, *, strict: bool = True) -> Dockerfile:
    """Read and parse a Dockerfile from disk (see `parse`)."""
    return parse(parser.read_text(path), path=str(path), strict=strict)
