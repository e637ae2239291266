"""Dockerfile frontend: a BuildKit-faithful parser, variable expansion and .dockerignore.

Public API (stable for the linter, fixer and builder):

- `parse(text, path=...) -> Dockerfile` and `parse_file(path) -> Dockerfile`
- `stages(dockerfile, build_args=None) -> list[Stage]`, `global_args(dockerfile)`
- model classes: `Dockerfile`, `Instruction`, `Heredoc`, `Directives`, `Stage`
"""

from __future__ import annotations

from slimage.dockerfile.model import Directives, Dockerfile, Heredoc, Instruction, Stage, Warning
from slimage.dockerfile.parser import parse, parse_file
from slimage.dockerfile.stages import global_args, stages

__all__ = [
    "Directives",
    "Dockerfile",
    "Heredoc",
    "Instruction",
    "Stage",
    "Warning",
    "global_args",
    "parse",
    "parse_file",
    "stages",
]
