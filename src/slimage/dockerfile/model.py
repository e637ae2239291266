"""The typed Dockerfile model shared by the parser, linter, fixer and builder.

It mirrors BuildKit's two layers without copying its linked-list `Node`: an
`Instruction` is one logical line (continuations joined, heredoc bodies attached) with its
arguments already split the way BuildKit's line parsers split them, so `value` is exactly
the chain of `Node.Next` values. Lines are 1-based and inclusive, and `Dockerfile.lines`
keeps the physical source, so a rewrite can splice text back losslessly.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Heredoc:
    """One `<<NAME` body attached to a RUN/COPY/ADD.

    `content` is the raw body with its line endings (tabs are NOT yet stripped for `<<-`;
    call `Heredoc.text()` for what the builder should use). `expand` is False when the
    delimiter was quoted anywhere (`<<'EOF'`, `<<"EOF"`, `<<E"OF"`), as in the shell.
    """

    name: str
    content: str
    expand: bool = True
    chomp: bool = False
    fd: int = 0

    def text(self) -> str:
        """The body as the builder sees it: `<<-` strips leading tabs of every line."""
        if not self.chomp:
            return self.content
        return "".join(line.lstrip("\t") for line in self.content.splitlines(keepends=True))


@dataclass(slots=True)
class Instruction:
    """One Dockerfile instruction, as BuildKit's parser sees it.

    - `cmd`: lowercase keyword (`run`, `from`, `onbuild`, ...); `keyword` keeps the case
      as written.
    - `value`: arguments as BuildKit splits them (`FROM img AS x` -> `["img", "AS", "x"]`,
      `ENV a=b` -> `["a", "b", "="]`, shell-form RUN -> one string). For ONBUILD, the inner
      instruction's arguments (the inner instruction itself is `child`).
    - `flags`: `--flag[=value]` words before the arguments, unquoted as BuildKit does.
    - `json`: exec (JSON array) form.
    - `original`: the logical line (continuation characters and comment lines removed),
      exactly BuildKit's `Node.Original`.
    - `start_line`/`end_line`: 1-based, inclusive, covering continuation lines and heredoc
      bodies. `Dockerfile.source_of(inst)` returns the exact source text.
    - `comments`: the comment block right above the instruction (without `#`).
    """

    cmd: str
    value: list[str] = field(default_factory=list)
    original: str = ""
    start_line: int = 0
    end_line: int = 0
    flags: list[str] = field(default_factory=list)
    json: bool = False
    heredocs: list[Heredoc] = field(default_factory=list)
    keyword: str = ""
    child: Instruction | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def sub_cmd(self) -> str | None:
        """The instruction behind ONBUILD (lowercase), else None."""
        return self.child.cmd if self.child is not None else None

    @property
    def effective(self) -> Instruction:
        """The instruction that actually does the work (ONBUILD's child, else itself)."""
        return self.child if self.child is not None else self

    def flag(self, name: str) -> str | None:
        """Value of `--name=value` (last one wins); `""` for a bare `--name`; None if absent."""
        prefix = "--" + name
        found: str | None = None
        for f in self.flags:
            if f == prefix:
                found = ""
            elif f.startswith(prefix + "="):
                found = f[len(prefix) + 1 :]
        return found

    def flag_values(self, name: str) -> list[str]:
        """Every value of a repeatable flag such as `--mount`."""
        prefix = "--" + name
        out: list[str] = []
        for f in self.flags:
            if f == prefix:
                out.append("")
            elif f.startswith(prefix + "="):
                out.append(f[len(prefix) + 1 :])
        return out

    def to_dict(self) -> dict[str, object]:
        """The `slimage parse --json` shape (one object per instruction)."""
        return {
            "cmd": self.cmd,
            "sub_cmd": self.sub_cmd,
            "json": self.json,
            "original": self.original,
            "start_line": self.start_line,
            "end_line": self.end_line,
            # ONBUILD: its own flags (BuildKit rejects any) then the trigger's.
            "flags": self.flags + self.child.flags if self.child is not None else list(self.flags),
            "value": list(self.value),
            "heredocs": [
                {"name": h.name, "content": h.content, "expand": h.expand}
                for h in self.effective.heredocs
            ],
        }


@dataclass(slots=True)
class Directives:
    """Parser directives found at the very top of the file (`# syntax=...` etc.)."""

    syntax: str | None = None
    escape: str = "\\"
    check: str | None = None
    # 1-based line of each directive that was present, keyed by name.
    lines: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class ParseWarning:
    """A non-fatal parser finding (BuildKit: empty continuation lines)."""

    message: str
    line: int


@dataclass(slots=True)
class Dockerfile:
    """A parsed Dockerfile: directives, instructions, and the source it came from."""

    path: str
    text: str
    directives: Directives
    instructions: list[Instruction]
    warnings: list[ParseWarning] = field(default_factory=list)
    _lines: list[str] | None = field(default=None, repr=False, compare=False)

    @property
    def escape(self) -> str:
        return self.directives.escape

    @property
    def lines(self) -> list[str]:
        """Physical source lines with their line endings (index 0 is line 1).

        Split on `\\n` only, like BuildKit's scanner (`str.splitlines()` would also split on
        `\\r`, form feeds and Unicode separators and shift every line number)."""
        if self._lines is None:
            parts = self.text.split("\n")
            last = parts.pop()
            out = [p + "\n" for p in parts]
            if last:
                out.append(last)
            self._lines = out
        return self._lines

    def source_of(self, inst: Instruction) -> str:
        """Exact source text of an instruction, continuation lines and heredocs included."""
        return "".join(self.lines[inst.start_line - 1 : inst.end_line])


@dataclass(slots=True)
class Stage:
    """One build stage: a FROM and the instructions up to the next FROM.

    `base` is the image as written; `base_expanded` has global ARGs (and build args)
    substituted the way BuildKit does before resolving it (same for `platform` /
    `platform_expanded`, from `FROM --platform=`). `name` is lowercased as BuildKit does;
    None for an unnamed stage. `instructions` excludes the FROM itself.
    """

    index: int
    name: str | None
    base: str
    base_expanded: str
    platform: str | None
    from_instruction: Instruction
    instructions: list[Instruction] = field(default_factory=list)
    platform_expanded: str | None = None

    @property
    def ref(self) -> str:
        """How other stages refer to this one (`COPY --from=<ref>`)."""
        return self.name if self.name is not None else str(self.index)


# Backwards-compatible name (it shadows the builtin, so prefer ParseWarning).
Warning = ParseWarning  # noqa: A001
