"""Dockerfile frontend: a BuildKit-faithful parser, variable expansion and .dockerignore.

Public API (stable for the linter, fixer and builder):

- `parse(text, path=..., strict=True) -> Dockerfile`, `parse_file(path) -> Dockerfile`
- `stages(dockerfile, build_args=None) -> list[Stage]`, `global_args(dockerfile)`,
  `meta_args(dockerfile, build_args)`
- `expand_args(inst, env)`, `expand_flags(inst, env)`, `expand_word(word, env)`,
  `expand_heredoc(text, env)`, `ShellLex` (BuildKit's shell lexer)
- `problems(dockerfile)` / `validate(dockerfile)`: BuildKit's instructions-layer checks
- `dump(dockerfile)`: BuildKit's `Node.Dump()` text
- model classes: `Dockerfile`, `Instruction`, `Heredoc`, `Directives`, `Stage`, `ParseWarning`
- typed views for the builder: `slimage.dockerfile.commands` (cmdline, sources_and_dest,
  key_values, healthcheck) and `slimage.dockerfile.mounts` (parse_mount, mounts_of)
- `.dockerignore`: see `slimage.dockerfile.dockerignore` (load_ignore_patterns,
  walk_context, DockerIgnore)
"""

from __future__ import annotations

from slimage.dockerfile.dump import dump
from slimage.dockerfile.expand import (
    EXPANDED_INSTRUCTIONS,
    ExpansionError,
    ShellLex,
    expand_args,
    expand_flags,
    expand_heredoc,
    expand_word,
    expand_words,
)
from slimage.dockerfile.model import (
    Directives,
    Dockerfile,
    Heredoc,
    Instruction,
    ParseWarning,
    Stage,
)
from slimage.dockerfile.parser import KNOWN_INSTRUCTIONS, parse, parse_file
from slimage.dockerfile.stages import arg_pairs, global_args, meta_args, platform_args, stages
from slimage.dockerfile.validate import problems, validate

__all__ = [
    "EXPANDED_INSTRUCTIONS",
    "KNOWN_INSTRUCTIONS",
    "Directives",
    "Dockerfile",
    "ExpansionError",
    "Heredoc",
    "Instruction",
    "ShellLex",
    "Stage",
    "ParseWarning",
    "arg_pairs",
    "dump",
    "expand_args",
    "expand_flags",
    "expand_heredoc",
    "expand_word",
    "expand_words",
    "global_args",
    "meta_args",
    "parse",
    "parse_file",
    "platform_args",
    "problems",
    "stages",
    "validate",
]
