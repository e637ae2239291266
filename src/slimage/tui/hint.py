"""The "what would `slimage fix` change" hint for a layer's instruction.

An image does not carry its Dockerfile, but its history does carry every instruction, in
the text BuildKit (or the legacy builder) wrote: `RUN /bin/sh -c npm install # buildkit`,
`CMD ["npm" "start"]`, `EXPOSE map[3000/tcp:{}]`, `/bin/sh -c #(nop)  WORKDIR /app`.
We turn that back into a Dockerfile (one line per step, `FROM scratch` on top), run the
real `lint` and `fix` over it, and report for each layer the findings on its line and the
lines `fix` would rewrite there. So the hint is exactly what the linter and fixer say on
the same instruction written by hand, with no second set of rules to keep in step.

Steps that cannot be written back faithfully (heredoc bodies, imported layers, empty
history) get no line and therefore no hint; an instruction that no longer parses on its
own is dropped the same way, so one odd step never hides the hints of the others.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field

from slimage.oci.model import HistoryEntry

_BUILDKIT = " # buildkit"
_RUN_ARGS = re.compile(r"^\|(\d+)\s+")
_SHELL = ("/bin/sh -c ", "/bin/bash -c ", "cmd /S /C ")
_GO_LIST = re.compile(r'^\[((?:"(?:[^"\\]|\\.)*"\s*)*)\]$')
_GO_STR = re.compile(r'"((?:[^"\\]|\\.)*)"')
_KEYWORDS = frozenset(
    "ADD ARG CMD COPY ENTRYPOINT ENV EXPOSE HEALTHCHECK LABEL MAINTAINER ONBUILD RUN SHELL "
    "STOPSIGNAL USER VOLUME WORKDIR".split()
)


@dataclass
class Hint:
    """Lint's findings on one layer's instruction and what `fix` would make of it."""

    instruction: str
    findings: list[tuple[str, str, str]] = field(default_factory=list)  # rule, severity, msg
    fixes: list[tuple[str, str]] = field(default_factory=list)  # rule, description
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)


def _strip_run_args(text: str) -> str:
    """`|2 A=1 B=2 /bin/sh -c cmd` -> `/bin/sh -c cmd` (BuildKit's build-arg prefix)."""
    m = _RUN_ARGS.match(text)
    if not m:
        return text
    rest = text[m.end() :]
    for _ in range(int(m.group(1))):
        rest = rest.split(" ", 1)[1] if " " in rest else ""
    return rest


def _go_list_to_json(text: str) -> str:
    """`["npm" "start"]` (Go's %q of a []string) -> `["npm", "start"]`; else unchanged."""
    m = _GO_LIST.match(text.strip())
    if not m:
        return text
    try:
        items = [json.loads(f'"{s}"') for s in _GO_STR.findall(m.group(1))]
    except ValueError:
        return text
    return json.dumps(items)


def instruction_of(created_by: str) -> str | None:
    """The Dockerfile line a history entry came from, or None when it cannot be said."""
    text = created_by.strip()
    if not text or "\n" in text:
        return None
    if text.endswith(_BUILDKIT):
        text = text[: -len(_BUILDKIT)]
    if "#(nop)" in text:  # legacy builder: `/bin/sh -c #(nop)  CMD ["node"]`
        text = text.split("#(nop)", 1)[1].strip()
        text = re.sub(r"^(COPY|ADD) (\S+) in ", r"\1 \2 ", text)
    elif text.startswith(("|", *_SHELL)):  # legacy RUN
        text = "RUN " + text
    keyword, _, rest = text.partition(" ")
    keyword = keyword.upper()
    if keyword not in _KEYWORDS:
        return None
    if keyword == "RUN":
        rest = _strip_run_args(rest)
        for shell in _SHELL:
            if rest.startswith(shell):
                rest = rest[len(shell) :]
                break
        else:
            rest = _go_list_to_json(rest)
    elif keyword in ("CMD", "ENTRYPOINT", "SHELL", "VOLUME"):
        rest = _go_list_to_json(rest)
    elif keyword == "EXPOSE" and rest.startswith("map["):
        rest = " ".join(p.split(":", 1)[0] for p in rest[4:-1].split())
    if not rest.strip():
        return None
    return f"{keyword} {rest}"


Steps = list[tuple[HistoryEntry, int | None]]


def reconstruct(steps: Steps) -> tuple[str, dict[int, int]]:
    """(Dockerfile text, layer index -> its 1-based line) from an image's history: STEPS
    pairs each entry with the layer it made (None for metadata steps), as
    `ImageConfig.layer_history()` does."""
    lines = ["FROM scratch"]
    where: dict[int, int] = {}
    for entry, layer in steps:
        inst = instruction_of(entry.created_by)
        if inst is None or not _parses(inst):
            continue
        lines.append(inst)
        if layer is not None:
            where[layer] = len(lines)
    return "\n".join(lines) + "\n", where


def _parses(line: str) -> bool:
    from slimage.dockerfile.frontend import parse
    from slimage.errors import SlimageError

    try:
        parse(f"FROM scratch\n{line}\n")
    except SlimageError:
        return False
    return True


def hints(steps: Steps) -> dict[int, Hint]:
    """Layer index -> its hint, for the layers whose instruction `lint` has a finding on."""
    from slimage.dockerfile.fix import fix_text
    from slimage.dockerfile.lint import lint_text
    from slimage.errors import SlimageError

    text, where = reconstruct(steps)
    if not where:
        return {}
    try:
        findings = lint_text(text, path="history")
        fixed = fix_text(text, path="history")
    except SlimageError:
        return {}
    old = text.split("\n")
    new = fixed.fixed.split("\n")
    ops = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
    out: dict[int, Hint] = {}
    for layer, line in where.items():
        mine = [f for f in findings if f.line <= line <= f.end_line]
        if not mine:
            continue
        hint = Hint(instruction=old[line - 1])
        hint.findings = [(f.rule, f.severity, f.message) for f in mine]
        hint.fixes = [(a.rule, a.description) for a in fixed.applied if a.line == line]
        for tag, i1, i2, j1, j2 in ops:
            if tag != "equal" and i1 <= line - 1 < max(i2, i1 + 1):
                hint.before = old[i1:i2]
                hint.after = new[j1:j2]
        out[layer] = hint
    return out
