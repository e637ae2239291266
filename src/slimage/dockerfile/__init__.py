"""Dockerfile frontend: a BuildKit-faithful parser, variable expansion and .dockerignore.

Public API (stable for the linter, fixer and builder):

Layers, bottom up (each imports only those below it): `model`; `expand` (BuildKit's
shell lexer); `heredoc`; `parser` (text -> tree); `mounts` (`--mount` specs); `commands`
(the typed, checked commands: BuildKit's `instructions` package); `validate`, `stages`
(the one stage splitter); `frontend` (parse + check); then `lint`, `fix`.

- `parse(text, path=..., strict=True) -> Dockerfile`, `parse_file(path) -> Dockerfile`
- `command_of(inst, dockerfile)`: the typed command (`RunCommand`, `CopyCommand`, ...)
- `stages(dockerfile, build_args=None) -> list[Stage]`, `global_args(dockerfile)`,
  `meta_args(dockerfile, build_args)`
- `expand_args(inst, env)`, `expand_word(word, env)`, `expand_heredoc(text, env)`,
  `ShellLex` (BuildKit's shell lexer)
- `problems(dockerfile)` / `validate(dockerfile)`: BuildKit's instructions-layer checks
- `dump(dockerfile)`: BuildKit's `Node.Dump()` text
- model classes: `Dockerfile`, `Instruction`, `Heredoc`, `Directives`, `Stage`, `ParseWarning`
- `.dockerignore`: see `slimage.dockerfile.dockerignore` (load_ignore_patterns,
  walk_context, DockerIgnore)
"""

from __future__ import annotations

from slimage.dockerfile.commands import EXPANDED_INSTRUCTIONS, Command, command_of, expand_args
from slimage.dockerfile.dump import dump
from slimage.dockerfile.expand import (
    ExpansionError,
    ShellLex,
    expand_heredoc,
    expand_word,
    expand_words,
)
from slimage.dockerfile.frontend import parse, parse_file
from slimage.dockerfile.model import (
    Directives,
    Dockerfile,
    Heredoc,
    Instruction,
    ParseWarning,
    Stage,
)
from slimage.dockerfile.parser import KNOWN_INSTRUCTIONS
from slimage.dockerfile.stages import arg_pairs, global_args, meta_args, platform_args, stages
from slimage.dockerfile.validate import problems, validate

__all__ = [
    "EXPANDED_INSTRUCTIONS",
    "KNOWN_INSTRUCTIONS",
    "Command",
    "Directives",
    "Dockerfile",
    "ExpansionError",
    "Heredoc",
    "Instruction",
    "ShellLex",
    "Stage",
    "ParseWarning",
    "arg_pairs",
    "command_of",
    "dump",
    "expand_args",
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
