"""`slimage fix`: safe, mechanical Dockerfile rewrites that keep what the image does.

Every rewrite is an edit of the original text (offsets into the file), never a
re-rendering of the parse tree, so comments, indentation, line continuations and the
user's quoting survive byte for byte outside the edited spans. Each rewrite has a
precondition strict enough that the build result is the same apart from removed caches
(the differential test builds both with Docker and compares the filesystems):

- SL111: `COPY src /dest` + `RUN chown -R u:g /dest` -> `COPY --chown=u:g src /dest`, only
  when /dest did not exist before (BuildKit then creates it with that owner, exactly what
  the chown produced) and nothing else under /dest was touched;
- SL101/SL102: consecutive RUNs with the same flags joined with `&&`, only when the first
  RUN cannot change the shell state the second one sees (`cd`, `export`, `set`, ...), has
  no comment or background job, and neither uses a heredoc;
- SL103/SL104: `--no-install-recommends` after `apt-get install`, and `apt-get clean &&
  rm -rf /var/lib/apt/lists/*` at the end of a RUN that updates and installs (never when a
  later RUN still needs the lists);
  `--no-install-recommends` is the one rewrite that can change what is installed: a
  package's Recommends are no longer pulled in. Build and test once after it, or keep
  recommends with `--skip SL104`;
- SL106: `--no-cache-dir` after `pip install`;
- SL107: `npm cache clean --force` at the end of a RUN that runs `npm install`/`npm ci`
  as root;
- SL303: shell-form CMD/ENTRYPOINT -> exec form when the command uses no shell feature at
  all (no variables, globs, operators, redirections, escapes). ENTRYPOINT only when no
  CMD is set (it would become the entrypoint's arguments); note that arguments given to
  `docker run IMAGE args` are ignored by a shell-form ENTRYPOINT and passed to an
  exec-form one.

Fixes run in passes (each on a fresh parse) until nothing changes, so the output is a
fixed point: running `fix` on it again changes nothing. The result is parsed again before
it is returned; a file that cannot be parsed is never written.
"""

from __future__ import annotations

import bisect
import difflib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from slimage.dockerfile import shell
from slimage.dockerfile.expand import GO_SPACE
from slimage.dockerfile.frontend import parse
from slimage.dockerfile.lint import context
from slimage.dockerfile.model import Dockerfile, Instruction
from slimage.dockerfile.parser import read_text
from slimage.dockerfile.rules import facts, resolve_rule_id
from slimage.dockerfile.rules.base import LintContext, StageInfo, join_path
from slimage.errors import SlimageError, UsageError
from slimage.streams import atomic_write

FIX_RULES = ("SL101", "SL103", "SL104", "SL106", "SL107", "SL111", "SL303")
_MAX_PASSES = 6
# Shell builtins whose effect outlives the command: after them, `a && b` is not `a; b`
# run in two fresh shells.
_STATEFUL = frozenset(
    {
        "cd",
        "pushd",
        "popd",
        "export",
        "set",
        "unset",
        "source",
        ".",
        "alias",
        "unalias",
        "umask",
        "shopt",
        "exit",
        "return",
        "exec",
        "eval",
        "trap",
        "ulimit",
        "readonly",
        "local",
        "declare",
        "typeset",
        "hash",
        "shift",
        "wait",
        "break",
        "continue",
    }
)
# Directories every Linux base has: a COPY into them does not create them.
_STANDARD_DIRS = frozenset(
    {
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib64",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/usr/bin",
        "/usr/lib",
        "/usr/local",
        "/usr/local/bin",
        "/usr/local/lib",
        "/usr/local/sbin",
        "/usr/local/share",
        "/usr/sbin",
        "/usr/share",
        "/var",
        "/var/lib",
        "/var/log",
        "/var/tmp",
        "/var/cache",
    }
)
_OWNER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*:[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class FixError(SlimageError):
    """A fix could not be applied safely (the file is left untouched)."""


@dataclass(slots=True)
class AppliedFix:
    rule: str
    line: int  # line in the original file
    description: str


@dataclass(slots=True)
class FixResult:
    path: str
    original: str
    fixed: str
    applied: list[AppliedFix] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.fixed != self.original

    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.original.splitlines(keepends=True),
                self.fixed.splitlines(keepends=True),
                fromfile=f"a/{self.path}",
                tofile=f"b/{self.path}",
            )
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.path,
            "changed": self.changed,
            "fixes": [
                {"rule": a.rule, "line": a.line, "description": a.description} for a in self.applied
            ],
            "diff": self.diff(),
            "fixed": self.fixed,
        }


def parse_rule_list(items: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for item in items:
        for part in item.split(","):
            ids = resolve_rule_id(part)
            if not ids:
                raise UsageError(f"unknown rule {part!r} (see slimage lint --list-rules)")
            out.update(ids)
    return out


# ---------------------------------------------------------------------------------------
# Text geometry: physical lines, and logical (continuation-joined) text -> file offsets


class _Text:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.starts: list[int] = []
        pos = 0
        for line in self.lines:
            self.starts.append(pos)
            pos += len(line) + 1

    def line_start(self, lineno: int) -> int:
        return self.starts[lineno - 1]

    def line_end(self, lineno: int) -> int:
        """Offset just past the content of a line (before `\\r\\n` / `\\n`)."""
        content = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(content.rstrip("\r"))

    def newline(self, lineno: int) -> str:
        return "\r\n" if self.lines[lineno - 1].endswith("\r") else "\n"


@dataclass(slots=True)
class _Logical:
    """An instruction's logical line and a map from its offsets to file offsets."""

    text: str
    seg_logical: list[int]
    seg_file: list[int]

    def to_file(self, pos: int) -> int:
        i = bisect.bisect_right(self.seg_logical, pos) - 1
        return self.seg_file[i] + (pos - self.seg_logical[i])

    def to_file_end(self, pos: int) -> int:
        """File offset just after logical character `pos - 1` (for span ends)."""
        return self.to_file(pos - 1) + 1


def _logical(txt: _Text, inst: Instruction, esc: str) -> _Logical | None:
    """Rebuild the logical line as the parser did (continuations joined, comment and
    blank lines inside them dropped), remembering where each piece came from."""
    parts: list[str] = []
    seg_l: list[int] = []
    seg_f: list[int] = []
    length = 0
    lineno = inst.start_line
    first = True
    while lineno <= inst.end_line:
        raw = txt.lines[lineno - 1].rstrip("\r")
        offset = txt.line_start(lineno)
        if first:
            stripped = raw.lstrip(GO_SPACE)
            offset += len(raw) - len(stripped)
            raw = stripped
        else:
            s = raw.lstrip(GO_SPACE)
            if s.startswith("#") or not s:
                lineno += 1
                continue
        t = raw.rstrip(" \t")
        cont = bool(t) and t[-1] == esc and (len(t) == 1 or t[-2] != esc)
        piece = t[:-1] if cont else raw
        seg_l.append(length)
        seg_f.append(offset)
        parts.append(piece)
        length += len(piece)
        first = False
        lineno += 1
        if not cont:
            break
    if not seg_l:
        return None
    return _Logical("".join(parts), seg_l, seg_f)


def _script_span(logical: _Logical, inst: Instruction) -> int | None:
    """Offset of the shell script (value[0] of a shell-form RUN/CMD) in the logical line."""
    if inst.json or not inst.value:
        return None
    text = logical.text.rstrip(GO_SPACE)
    script = inst.value[0]
    start = len(text) - len(script)
    if start < 0 or text[start:] != script:
        return None
    return start


# ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Edit:
    start: int
    end: int
    text: str
    rule: str
    line: int
    description: str


def _apply(text: str, edits: list[_Edit]) -> str:
    edits = sorted(edits, key=lambda e: (e.start, e.end))
    out: list[str] = []
    pos = 0
    for e in edits:
        if e.start < pos:
            raise FixError(f"internal: overlapping fixes at offset {e.start}")
        out.append(text[pos : e.start])
        out.append(e.text)
        pos = e.end
    out.append(text[pos:])
    return "".join(out)


class _Pass:
    """One pass of one fixer over one parse of the text."""

    def __init__(self, df: Dockerfile, ctx: LintContext, context_dir: Path | None) -> None:
        self.df = df
        self.ctx = ctx
        self.txt = _Text(df.text)
        self.esc = df.escape
        self.context_dir = context_dir
        self.edits: list[_Edit] = []
        # Scripts the joined RUNs must have after the edit (checked on the new parse).
        self.expected_runs: list[str] = []

    def line_at(self, pos: int) -> int:
        return bisect.bisect_right(self.txt.starts, pos)

    def ignored(self, inst: Instruction, rule_id: str) -> bool:
        for comment in inst.comments:
            m = re.match(r"^(slimage|hadolint)\s+ignore\s*=\s*(.+)$", comment.strip(), re.I)
            if m:
                for item in re.split(r"[,\s]+", m.group(2)):
                    if rule_id in resolve_rule_id(item):
                        return True
        return False

    def indent_of(self, inst: Instruction) -> str:
        """Indentation of the instruction's continuation lines (4 spaces if none)."""
        for lineno in range(inst.start_line + 1, inst.end_line + 1):
            line = self.txt.lines[lineno - 1].rstrip("\r")
            stripped = line.lstrip(" \t")
            if stripped and not stripped.startswith("#"):
                return line[: len(line) - len(stripped)]
        return "    "

    def leading_and(self, inst: Instruction) -> bool:
        """Does this RUN put `&&` at the start of its continuation lines?"""
        for lineno in range(inst.start_line + 1, inst.end_line + 1):
            if self.txt.lines[lineno - 1].lstrip(" \t").startswith("&&"):
                return True
        return False

    def plain_run(self, inst: Instruction) -> tuple[_Logical, int, shell.Script] | None:
        """A shell-form RUN without heredocs under a POSIX shell, with its script."""
        if inst.cmd != "run" or inst.json or inst.heredocs or self.esc != "\\":
            return None
        if not self.ctx.posix_shell(inst):
            return None
        logical = _logical(self.txt, inst, self.esc)
        if logical is None:
            return None
        start = _script_span(logical, inst)
        if start is None:
            return None
        script = shell.split(inst.value[0])
        if not script.ok:
            return None
        return logical, start, script

    # -- SL111: COPY + RUN chown -> COPY --chown ----------------------------------------

    def copy_chown(self) -> None:
        for st in self.ctx.stages:
            insts = st.instructions
            for i in range(len(insts) - 1):
                copy, run = insts[i], insts[i + 1]
                if copy.cmd != "copy" or copy.json or copy.heredocs or len(copy.value) < 2:
                    continue
                if copy.flag("chown") is not None or self.ignored(run, "SL111"):
                    continue
                plain = self.plain_run(run)
                if plain is None or run.flags:
                    continue
                _logical_run, _start, script = plain
                if len(script.commands) != 1 or script.has_comment or script.background:
                    continue
                argv = script.commands[0].words
                if not argv or argv[0] != "chown" or script.commands[0].redirects:
                    continue
                opts = [w for w in argv[1:] if w.startswith("-")]
                args = [w for w in argv[1:] if not w.startswith("-")]
                if any(o not in ("-R", "--recursive") for o in opts) or len(args) != 2:
                    continue
                owner, target = args
                if not _OWNER.match(owner) or "$" in target or "*" in target:
                    continue
                wd = self.ctx.workdir_before(copy)
                dest_raw = copy.value[-1]
                if "$" in dest_raw or any("$" in s for s in copy.value[:-1]):
                    continue
                dest = join_path(wd, dest_raw)
                if join_path(self.ctx.workdir_before(run), target) != dest:
                    continue
                if not self._copy_creates(st, copy, dest, recursive=bool(opts)):
                    continue
                line = self.txt.lines[copy.start_line - 1]
                kw_at = self.txt.line_start(copy.start_line) + (
                    len(line) - len(line.lstrip(GO_SPACE))
                )
                kw_end = kw_at + len(copy.keyword)
                self.edits.append(
                    _Edit(
                        kw_end,
                        kw_end,
                        f" --chown={owner}",
                        "SL111",
                        copy.start_line,
                        f"COPY --chown={owner} replaces `chown` on line {run.start_line}",
                    )
                )
                start = self.txt.line_start(run.start_line)
                end = (
                    self.txt.line_start(run.end_line + 1)
                    if run.end_line < len(self.txt.lines)
                    else len(self.df.text)
                )
                self.edits.append(_Edit(start, end, "", "SL111", run.start_line, "removed"))

    def _copy_creates(self, st: StageInfo, copy: Instruction, dest: str, recursive: bool) -> bool:
        """Is `dest` certainly created by this COPY (so that COPY --chown gives it, and only
        it, the owner), with its parent directory already present?"""
        if dest in _STANDARD_DIRS:
            return False
        parent = dest.rsplit("/", 1)[0] or "/"
        known_dirs = set(_STANDARD_DIRS)
        for inst in st.all_instructions():
            if inst is copy:
                break
            if inst.cmd == "workdir":
                wd = self.ctx.workdir_before(inst)
                path = join_path(wd, inst.value[0]) if inst.value else wd
                while path != "/":
                    if path == dest or path.startswith(dest + "/"):
                        return False  # WORKDIR made (part of) dest already
                    known_dirs.add(path)
                    path = path.rsplit("/", 1)[0] or "/"
            elif inst.cmd in ("copy", "add"):
                if not inst.value:
                    return False
                other = join_path(self.ctx.workdir_before(inst), inst.value[-1])
                if other == dest or other.startswith(dest + "/") or dest.startswith(other + "/"):
                    return False
            elif inst.cmd == "run" and dest in inst.original:
                return False
        if parent not in known_dirs:
            return False
        if recursive:
            return True
        # Without -R, chown only changes the top: equal only if the COPY made one file.
        sources = copy.value[:-1]
        if len(sources) != 1 or copy.flag("from") is not None or self.context_dir is None:
            return False
        src = self.context_dir / sources[0]
        return not any(ch in sources[0] for ch in "*?[") and src.is_file() and not src.is_symlink()

    # -- SL101: merge consecutive RUNs --------------------------------------------------

    def merge_runs(self) -> None:
        for st in self.ctx.stages:
            if not st.ships:
                continue
            insts = st.instructions
            i = 0
            while i < len(insts) - 1:
                head = insts[i]
                group = [head]
                while i + len(group) < len(insts) and self._mergeable(
                    group[-1], insts[i + len(group)]
                ):
                    group.append(insts[i + len(group)])
                if len(group) > 1:
                    self._merge(group)
                i += len(group)

    def _mergeable(self, a: Instruction, b: Instruction) -> bool:
        if b.cmd != "run" or self.ignored(b, "SL101"):
            return False
        pa, pb = self.plain_run(a), self.plain_run(b)
        if pa is None or pb is None:
            return False
        if sorted(a.flags) != sorted(b.flags):
            return False
        for script in (pa[2], pb[2]):
            if script.has_comment or script.background or not script.commands:
                return False
            if script.commands[-1].op != "":
                return False  # ends with `;`, `&&`, `|`: joining would change the grammar
        # `a && b1; b2` would run b2 even when `a` fails: the joined RUN must only chain
        # with `&&` and pipes at the top level of `b` (`a` may use anything: `a1; a2 && b`
        # and `a1 || a2 && b` group to the left, as two RUNs did).
        for cmd in pb[2].commands[:-1]:
            if cmd.op not in ("&&", "|", "|&"):
                return False
        for cmd in pa[2].commands:
            if cmd.op in ("(", ")") or cmd.prev_op in ("(", ")"):
                return False
            if cmd.words and not cmd.argv():
                return False  # a bare assignment changes the shell's variables
            if cmd.name in _STATEFUL:
                return False
        # The last line of `a` must not already continue (EOF continuation).
        last = self.txt.lines[a.end_line - 1].rstrip("\r").rstrip(" \t")
        return not last.endswith(self.esc)

    def _merge(self, group: list[Instruction]) -> None:
        head = group[0]
        self.expected_runs.append(" && ".join(inst.value[0] for inst in group))
        indent = self.indent_of(head)
        leading = self.leading_and(head)
        nl = self.txt.newline(head.end_line)
        for prev, inst in zip(group, group[1:], strict=False):
            # Join `prev`'s last line to `inst`: continuation, kept comments, then the script.
            prev_end = self.txt.line_end(prev.end_line)
            logical = _logical(self.txt, inst, self.esc)
            if logical is None:
                return
            start = _script_span(logical, inst)
            if start is None:
                return
            script_at = logical.to_file(start)
            between: list[str] = []
            for lineno in range(prev.end_line + 1, inst.start_line):
                raw = self.txt.lines[lineno - 1].rstrip("\r")
                if raw.strip(" \t"):
                    between.append(raw + nl)  # comment lines stay, inside the continuation
            joiner = f" {self.esc}{nl}" if leading else f" && {self.esc}{nl}"
            lead = f"{indent}&& " if leading else indent
            text = joiner + "".join(between) + lead
            self.edits.append(
                _Edit(
                    prev_end,
                    script_at,
                    text,
                    "SL101",
                    inst.start_line,
                    f"RUN joined to the RUN on line {head.start_line}",
                )
            )

    # -- SL103/SL104/SL106: apt and pip -----------------------------------------------

    def package_flags(self) -> None:
        for st in self.ctx.stages:
            if not st.ships:
                continue
            later_runs = [i for i in st.all_instructions() if i.cmd == "run"]
            for inst in st.instructions:
                plain = self.plain_run(inst)
                if plain is None:
                    continue
                logical, start, script = plain
                if not self.ignored(inst, "SL104") and "Install-Recommends" not in self.df.text:
                    for cmd in facts.apt_commands(script, "install"):
                        if facts.has_no_recommends(cmd):
                            continue
                        sub, idx = facts.subcommand(cmd.unwrapped())
                        widx = cmd.unwrap_index() + idx
                        pos = logical.to_file_end(start + cmd.spans[widx][1])
                        self.edits.append(
                            _Edit(
                                pos,
                                pos,
                                " --no-install-recommends",
                                "SL104",
                                self.line_at(pos),
                                "added --no-install-recommends",
                            )
                        )
                env = self.ctx.env_before(inst)
                if not self.ignored(inst, "SL106") and "PIP_NO_CACHE_DIR" not in env:
                    for cmd, widx in facts.pip_installs(script):
                        if facts.pip_no_cache(cmd):
                            continue
                        pos = logical.to_file_end(start + cmd.spans[widx][1])
                        self.edits.append(
                            _Edit(
                                pos,
                                pos,
                                " --no-cache-dir",
                                "SL106",
                                self.line_at(pos),
                                "added --no-cache-dir",
                            )
                        )
                if not self.ignored(inst, "SL103"):
                    self._apt_cleanup(inst, script, later_runs)

    def _apt_cleanup(
        self, inst: Instruction, script: shell.Script, runs: list[Instruction]
    ) -> None:
        if not facts.apt_commands(script, "update") or not facts.apt_commands(script, "install"):
            return
        if facts.removes(script, "/var/lib/apt/lists") or facts.cache_mounted(
            inst, "/var/lib/apt/lists", "/var/lib/apt"
        ):
            return
        if script.has_comment or script.background or script.commands[-1].op != "":
            return
        # A later RUN (in this stage or a stage built FROM it) that uses apt without its
        # own `apt-get update` still needs these lists; so does one we cannot read.
        mine = self.ctx.stage_of(inst)
        later: list[Instruction] = []
        after = False
        for other in runs:
            if other is inst:
                after = True
            elif after:
                later.append(other)
        for st in self.ctx.stages:
            if st.parent is not None and any(s is mine for s in list(st.chain())[1:]):
                later.extend(i for i in st.instructions if i.cmd == "run")
        for other in later:
            other_script = self.ctx.script(other)
            if other_script is None:
                return
            if _needs_apt_lists(other_script) and not facts.apt_commands(other_script, "update"):
                return
        clean = (
            ""
            if any(
                facts.subcommand(c.unwrapped())[0] == "clean"
                for c in facts.apt_commands(script, "clean")
            )
            else "apt-get clean && "
        )
        self._append(inst, f"{clean}rm -rf /var/lib/apt/lists/*", "SL103")

    def _append(self, inst: Instruction, command: str, rule_id: str) -> None:
        """Add `&& command` at the end of a RUN, in the RUN's own line style."""
        last_line = self.txt.lines[inst.end_line - 1].rstrip("\r").rstrip(" \t")
        if last_line.endswith(self.esc):
            return  # continuation at end of file: nothing safe to append to
        end = self.txt.line_end(inst.end_line)
        # Trailing blanks on the last line stay after the inserted text.
        content = self.txt.lines[inst.end_line - 1].rstrip("\r")
        end -= len(content) - len(content.rstrip(" \t"))
        nl = self.txt.newline(inst.end_line)
        if inst.end_line == inst.start_line:
            text = f" && {command}"
        elif self.leading_and(inst):
            text = f" {self.esc}{nl}{self.indent_of(inst)}&& {command}"
        else:
            text = f" && {self.esc}{nl}{self.indent_of(inst)}{command}"
        self.edits.append(_Edit(end, end, text, rule_id, inst.start_line, f"added `{command}`"))

    # -- SL107: npm cache -----------------------------------------------------------------

    def npm_cleanup(self) -> None:
        for st in self.ctx.stages:
            if not st.ships:
                continue
            for inst in st.instructions:
                plain = self.plain_run(inst)
                if plain is None or self.ignored(inst, "SL107"):
                    continue
                script = plain[2]
                if not facts.npm_installs(script) or facts.npm_cache_cleaned(script):
                    continue
                if facts.cache_mounted(inst, "/root/.npm"):
                    continue
                env = self.ctx.env_before(inst)
                if "npm_config_cache" in env or "NPM_CONFIG_CACHE" in env:
                    continue
                if script.has_comment or script.background or script.commands[-1].op != "":
                    continue
                # Only root's cache is known to be ~/.npm = /root/.npm.
                if self.ctx.user_before(inst) not in ("", "root", "0"):
                    continue
                self._append(inst, "npm cache clean --force", "SL107")

    # -- SL303: exec-form CMD/ENTRYPOINT ------------------------------------------------

    def exec_form(self) -> None:
        final = self.ctx.final
        if final is None:
            return
        chain = list(final.chain())
        has_cmd = any(i.cmd == "cmd" for st in chain for i in st.instructions)
        for st in chain:
            for inst in st.instructions:
                if inst.cmd not in ("cmd", "entrypoint") or inst.json or not inst.value:
                    continue
                if self.ignored(inst, "SL303") or not self.ctx.posix_shell(inst):
                    continue
                if inst.cmd == "entrypoint" and has_cmd:
                    continue  # exec-form ENTRYPOINT would start taking CMD as arguments
                words = shell.exec_form_words(inst.value[0])
                if words is None:
                    continue
                line = self.txt.lines[inst.start_line - 1]
                begin = self.txt.line_start(inst.start_line) + (
                    len(line) - len(line.lstrip(GO_SPACE))
                )
                end = self.txt.line_end(inst.end_line)
                text = f"{inst.keyword} {json.dumps(words, ensure_ascii=False)}"
                self.edits.append(
                    _Edit(
                        begin, end, text, "SL303", inst.start_line, f"{inst.keyword} in exec form"
                    )
                )


_STEPS = (
    ("SL111", "copy_chown"),
    ("SL101", "merge_runs"),
    ("SL103", "package_flags"),
    ("SL107", "npm_cleanup"),
    ("SL303", "exec_form"),
)


def _line_map(before: str, after: str) -> list[int]:
    """For each line of `after` (0-based), the 1-based line of `before` it comes from."""
    a = before.split("\n")
    b = after.split("\n")
    out = [0] * len(b)
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, _i2, j1, j2 in sm.get_opcodes():
        for j in range(j1, j2):
            if tag == "equal":
                out[j] = i1 + (j - j1) + 1
            else:
                out[j] = min(i1 + 1, len(a))
    return out


_APT_NO_LISTS = frozenset({"update", "clean", "autoclean", "autoremove", "purge", "remove"})


def _needs_apt_lists(script: shell.Script) -> bool:
    """Does the script run an apt command that reads the package lists?"""
    for cmd in script.commands:
        argv = cmd.unwrapped()
        prog = argv[0].rsplit("/", 1)[-1] if argv else ""
        if prog in ("apt-cache", "aptitude", "apt-file"):
            return True
        if prog in ("apt-get", "apt") and facts.subcommand(argv)[0] not in _APT_NO_LISTS:
            return True
    return False


def _shape(script: str) -> list[tuple[tuple[str, ...], str]]:
    return [(tuple(c.words), c.op) for c in shell.split(script).commands]


def _joins_verified(expected: list[str], new_text: str, path: str) -> bool:
    """Every joined RUN must run exactly the commands of its parts, chained with `&&`."""
    if not expected:
        return True
    shapes = {
        tuple(_shape(i.value[0]))
        for i in parse(new_text, path=path).instructions
        if i.cmd == "run" and not i.json and i.value
    }
    return all(tuple(_shape(script)) in shapes for script in expected)


def fix_text(
    text: str,
    *,
    path: str = "Dockerfile",
    context_dir: str | Path | None = None,
    only: set[str] | None = None,
    skip: Iterable[str] = (),
) -> FixResult:
    """Fixed text and the list of fixes applied. Raises DockerfileError when `text` does
    not parse (nothing is changed then)."""
    skip = set(skip)
    enabled = {r for r in FIX_RULES if (only is None or r in only) and r not in skip}
    ctx_dir = Path(context_dir) if context_dir is not None else None
    parse(text, path=path)  # refuse early, with FILE:LINE:COL
    current = text
    applied: list[AppliedFix] = []
    for _ in range(_MAX_PASSES):
        changed = False
        for rule_id, method in _STEPS:
            if rule_id == "SL103":
                if not enabled & {"SL103", "SL104", "SL106"}:
                    continue
            elif rule_id not in enabled:
                continue
            df = parse(current, path=path)
            step = _Pass(df, context(df), ctx_dir)
            getattr(step, method)()
            edits = [e for e in step.edits if e.rule in enabled]
            if not edits:
                continue
            new = _apply(current, edits)
            try:
                parse(new, path=path)
            except SlimageError as err:
                raise FixError(
                    f"{path}: internal error: fix {rule_id} produced a Dockerfile that does not "
                    f"parse ({err}); nothing was written"
                ) from None
            if not _joins_verified(step.expected_runs, new, path):
                continue  # a join we cannot prove equivalent is not made
            back = _line_map(text, current)
            for e in edits:
                if e.description == "removed":
                    continue
                orig_line = back[e.line - 1] if 0 < e.line <= len(back) else e.line
                applied.append(AppliedFix(e.rule, orig_line, e.description))
            current = new
            changed = True
        if not changed:
            break
    applied.sort(key=lambda a: (a.line, a.rule))
    return FixResult(path, text, current, applied)


def fix_file(
    path: str | Path,
    *,
    write: bool = False,
    context_dir: str | Path | None = None,
    only: set[str] | None = None,
    skip: Iterable[str] = (),
) -> FixResult:
    """Fix a Dockerfile on disk; with `write`, replace it atomically (same mode)."""
    p = Path(path)
    text = read_text(p)
    result = fix_text(
        text,
        path=str(path),
        context_dir=context_dir if context_dir is not None else p.parent,
        only=only,
        skip=skip,
    )
    if write and result.changed:
        # Write through a symlinked Dockerfile instead of replacing the link.
        _atomic_write(Path(os.path.realpath(p)), result.fixed)
    return result


def _atomic_write(path: Path, text: str) -> None:
    """Replace the Dockerfile whole, keeping its permission bits."""
    atomic_write(path, text.encode("utf-8", "surrogateescape"), mode=path.stat().st_mode & 0o7777)
