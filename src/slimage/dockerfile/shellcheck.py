"""ShellCheck on every RUN, the way hadolint runs it, in one batched process.

hadolint links ShellCheck in and checks each shell-form RUN as a script that starts with
`#!<the stage's SHELL>` and `export NAME=1` for every ARG/ENV name in force, excluding SC1090, SC1091 and SC2187
(and reports no SC2154). Teams rely on those SCxxxx warnings, so `slimage lint` reproduces them with
Debian's `shellcheck` binary.

Design (ShellCheck's own analysis is nearly all the time; start-up is ~10 ms):
- One `shellcheck -f json1` process per CPU for all RUNs of all files (never one per
  RUN), longest scripts dealt first to the least loaded process.
- Only the `export NAME=1` lines that can change a finding are written (see `_needed`):
  on real Dockerfiles the full list was half of ShellCheck's CPU time.
- Identical scripts are checked once per run, and every result is kept in a
  content-addressed on-disk cache (`ResultCache`), so an unchanged RUN is never analysed
  twice.
- Each script is the RUN's own source lines (the keyword and flags blanked, Dockerfile
  comment lines inside a continuation replaced by a bare `\\`), so ShellCheck's line
  numbers map straight back to the Dockerfile. A `RUN <<EOF` body is checked as the
  script it is (hadolint never looks there).
- Findings are reported at the RUN's first line, as hadolint does, so `# hadolint
  ignore=SC2086` above the RUN and the parity comparison work; the message names the exact
  line.
- No `shellcheck` on PATH: one notice on stderr, and linting goes on without SC findings.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from slimage.dockerfile.model import Instruction
from slimage.dockerfile.rules.base import WINDOWS_SHELL, LintContext

# hadolint's exclusions, plus SC2154 ("referenced but not assigned"), which hadolint never
# reports either: a variable may come from the base image's ENV, invisible here.
EXCLUDED = "2187,1090,1091,2154"
_PROXIES: tuple[str, ...] = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy")
_PROXIES += ("FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NON_POSIX = ("pwsh", "powershell", "cmd")
_OK_SHEBANGS = (
    "#!/bin/sh",
    "#!/bin/bash",
    "#!/bin/ksh",
    "#!/usr/bin/env sh",
    "#!/usr/bin/env bash",
    "#!/usr/bin/env ksh",
)
_warned = False
HEREDOC_REASON = "hadolint does not run ShellCheck on RUN heredoc bodies; slimage does"


@dataclass(slots=True)
class Job:
    """One script to check: where it came from and how its lines map back."""

    inst: Instruction
    script: str
    header_lines: int  # lines we prepended (shebang, exports)
    first_line: int  # Dockerfile line of the script's first own line
    heredoc: bool


@dataclass(slots=True)
class Comment:
    """One ShellCheck finding, mapped to the Dockerfile."""

    inst: Instruction
    code: str  # "SC2086"
    level: str  # error | warning | info | style
    message: str
    line: int  # exact Dockerfile line
    heredoc: bool


def available() -> str | None:
    return shutil.which("shellcheck")


def warn_missing() -> None:
    """Say once per process that SC checks are skipped."""
    global _warned
    if not _warned:
        _warned = True
        print(
            "slimage: shellcheck not found on PATH; RUN scripts are not checked (SCxxxx). "
            "Install it (apt-get install shellcheck) to get them.",
            file=sys.stderr,
        )


def _blank_prefix(text: str) -> str:
    """Blank the `RUN` keyword and its `--flags` (newlines kept, so lines still match)."""
    i = 0
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    while i < n and not text[i].isspace():
        i += 1  # the keyword
    while i < n:
        if text[i] in " \t":
            i += 1
        elif text.startswith("\\\n", i):
            i += 2
        elif text.startswith("--", i):
            quote = ""
            while i < n and (quote or not text[i].isspace()):
                if text[i] in "\"'":
                    quote = "" if quote == text[i] else (quote or text[i])
                i += 1
        else:
            break
    return re.sub(r"[^\n]", " ", text[:i]) + text[i:]


def _shell_text(ctx: LintContext, inst: Instruction) -> str:
    lines = ctx.dockerfile.lines[inst.start_line - 1 : inst.end_line]
    text = _blank_prefix("".join(lines).replace("\r\n", "\n").rstrip("\n"))
    out: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if out and out[-1].rstrip().endswith("\\") and (not stripped or stripped[0] == "#"):
            # BuildKit drops comment and empty lines inside a continuation.
            out.append("\\")
            continue
        out.append(line)
    return "\n".join(out)


def jobs_for(ctx: LintContext) -> list[Job]:
    """The scripts ShellCheck should see for one Dockerfile."""
    jobs: list[Job] = []
    for st in ctx.stages:
        for inst in st.instructions:
            if inst.cmd != "run" or inst.json or not inst.value:
                continue
            shell = ctx.shell_of(inst)
            prog = shell[0]
            if shell == WINDOWS_SHELL or any(p in prog.lower() for p in _NON_POSIX):
                continue
            if not ctx.posix_shell(inst):
                continue
            env = ctx.env_before(inst)
            names = sorted({*_PROXIES, *(k for k in env if _NAME.fullmatch(k))})
            script = ctx.script(inst)
            heredoc = bool(inst.heredocs) and script is not None and script.text != inst.value[0]
            if heredoc:
                body = inst.heredocs[0].content
                if body.startswith("#!") and not body.startswith(_OK_SHEBANGS):
                    continue
                if inst.start_line == inst.end_line or len(inst.heredocs) != 1:
                    continue
                text, first = body, inst.start_line + 1
            else:
                text, first = _shell_text(ctx, inst), inst.start_line
            header = [f"#!{prog}", *(f"export {k}=1" for k in _needed(names, text))]
            jobs.append(
                Job(inst, "\n".join(header) + "\n" + text + "\n", len(header), first, heredoc)
            )
    return jobs


@functools.lru_cache(maxsize=65536)
def _close(a: str, b: str, limit: int = 2) -> bool:
    """Would ShellCheck score a and b at most `limit` (equal but for case, or an edit
    distance of at most `limit`)? Memoised: the same ENV names and words recur in
    every RUN of a file."""
    if a.lower() == b.lower():
        return True
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        if min(cur) > limit:
            return False
        prev = cur
    return prev[-1] <= limit


def _needed(names: list[str], text: str) -> list[str]:
    """The `export NAME=1` lines that can change what ShellCheck says about `text`.

    Every header line costs ShellCheck 0.9 data-flow time (on real Dockerfiles the
    exports were half of all its CPU), yet a name matters only if the script mentions
    it (a reference, or an assignment it would shadow), or through SC2153: an all-upper-case
    name the script references but never assigns is compared with every assigned name,
    and a score of at most 2 (edit distance, or 1 for a case-only difference) names it.
    So a name is kept when it occurs anywhere in the text, or when any upper-case word
    of the text is that close to it; dropping the others gives the same findings.
    """
    keep: list[str] = []
    upper: list[str] | None = None
    for name in names:
        if name in text:
            keep.append(name)
            continue
        if upper is None:
            upper = [w for w in set(_NAME.findall(text)) if w == w.upper()]
        n = len(name)
        if any(_close(w, name) for w in upper if n - 2 <= len(w) <= n + 2):
            keep.append(name)
    return keep


def cache_dir() -> str:
    """Where results are kept: $XDG_CACHE_HOME/slimage/shellcheck (an absolute
    XDG_CACHE_HOME only, as the XDG spec says), else ~/.cache/slimage/shellcheck."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "slimage", "shellcheck")


_versions: dict[str, str] = {}


def version(exe: str) -> str:
    """`shellcheck --version` of this binary (part of every cache key: a new ShellCheck
    may say other things about the same script). Remembered per binary identity (path,
    size, mtime) in the cache directory, so a warm run starts no process at all."""
    real = os.path.realpath(exe)
    try:
        st = os.stat(real)
    except OSError:
        return "unknown"
    ident = f"{real}\0{st.st_size}\0{st.st_mtime_ns}"
    if ident in _versions:
        return _versions[ident]
    memo = os.path.join(
        cache_dir(), "exe-" + hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()
    )
    try:
        with open(memo, encoding="utf-8") as fh:
            text = fh.read()
        if text.startswith("shellcheck "):
            _versions[ident] = text
            return text
    except (OSError, UnicodeDecodeError):
        pass
    try:
        out = subprocess.run(
            [exe, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    m = re.search(r"^version:\s*(\S+)", out, re.M)
    text = f"shellcheck {m.group(1) if m else 'unknown'}"
    _versions[ident] = text
    if m:
        _write_atomic(memo, text)
    return text


def _write_atomic(path: str, data: str) -> None:
    """Write to a temporary file beside `path`, then rename: a reader sees the old entry,
    no entry, or the whole new one. A cache that cannot be written is just not used."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        pass


# One raw ShellCheck comment: (script line, code, level, message).
Raw = tuple[int, str, str, str]


class ResultCache:
    """ShellCheck's comments per script, content-addressed on disk.

    Key: sha256 of the cache format, ShellCheck's version, the options and the script
    text (whose first line is the shell's `#!`). An entry is one JSON file written
    atomically; one that does not parse or has the wrong shape is a miss (and is
    overwritten), never an error."""

    FORMAT = "slimage-shellcheck-cache-1"

    def __init__(self, exe: str, root: str | None = None) -> None:
        self.root = root or cache_dir()
        self._prefix = "\0".join([self.FORMAT, version(exe), " ".join(OPTIONS), ""])

    def key(self, script: str) -> str:
        data = (self._prefix + script).encode("utf-8", "surrogateescape")
        return hashlib.sha256(data).hexdigest()

    def path(self, script: str) -> str:
        k = self.key(script)
        return os.path.join(self.root, k[:2], k[2:] + ".json")

    def get(self, script: str) -> list[Raw] | None:
        try:
            with open(self.path(script), encoding="utf-8") as fh:
                data = json.load(fh)
            out: list[Raw] = []
            for line, code, level, message in data["comments"]:
                if not (
                    isinstance(line, int)
                    and isinstance(code, str)
                    and isinstance(level, str)
                    and isinstance(message, str)
                ):
                    return None
                out.append((line, code, level, message))
            return out
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, script: str, comments: list[Raw]) -> None:
        _write_atomic(self.path(script), json.dumps({"comments": comments}))


# The options every check runs with (part of the cache key).
OPTIONS: tuple[str, ...] = ("--norc", "-f", "json1", "-S", "style", "-e", EXCLUDED)
_MAX_ARGS = 1000  # scripts per command line


def _check(exe: str, scripts: list[str], procs: int | None = None) -> dict[str, list[Raw]]:
    """ShellCheck's comments for each script, for the scripts it checked (a batch whose
    process failed is left out: not cached, no findings)."""
    out: dict[str, list[Raw]] = {}
    with tempfile.TemporaryDirectory(prefix="slimage-sc-") as tmp:
        paths: list[str] = []
        for i, script in enumerate(scripts):
            path = os.path.join(tmp, f"{i}.sh")
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as fh:
                fh.write(script)
            paths.append(path)
        # ShellCheck checks its files one after another, ~10 ms to start and 15-100 ms
        # per RUN script: one process per CPU, the longest scripts dealt first to the
        # least loaded process (time grows with length), output to files so that no
        # process waits on a full pipe.
        ncpu = procs or os.cpu_count() or 1
        nbins = max(min(ncpu, len(paths)), -(-len(paths) // _MAX_ARGS))
        bins: list[list[int]] = [[] for _ in range(nbins)]
        load = [0] * nbins
        for i in sorted(range(len(scripts)), key=lambda i: -len(scripts[i])):
            b = load.index(min(load))
            bins[b].append(i)
            load[b] += len(scripts[i]) + 200
        running: list[tuple[subprocess.Popen[bytes], str, list[int]]] = []
        pending = [b for b in bins if b]
        results: list[tuple[int, str, list[int]]] = []
        started = 0
        while pending or running:
            while pending and len(running) < ncpu:
                part = pending.pop(0)
                started += 1
                outpath = os.path.join(tmp, f"out{started}.json")
                with open(outpath, "wb") as fh:
                    proc = subprocess.Popen(
                        [exe, *OPTIONS, *(paths[i] for i in part)],
                        stdout=fh,
                        stderr=subprocess.DEVNULL,
                    )
                running.append((proc, outpath, part))
            proc, outpath, part = running.pop(0)
            results.append((proc.wait(), outpath, part))
        for code, outpath, part in results:
            if code not in (0, 1):  # 1: findings; 2+: ShellCheck itself failed
                continue
            try:
                with open(outpath, encoding="utf-8", errors="surrogateescape") as fh:
                    data = json.load(fh)
                comments = data["comments"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            mine = {paths[i]: i for i in part}
            got: dict[int, list[Raw]] = {i: [] for i in part}
            for c in comments:
                idx = mine.get(c.get("file", ""))
                if idx is not None:
                    got[idx].append(
                        (
                            int(c.get("line", 1)),
                            f"SC{c.get('code')}",
                            str(c.get("level", "warning")),
                            str(c.get("message", "")),
                        )
                    )
            for i, found in got.items():
                out[scripts[i]] = found
    return out


def run(jobs: list[Job], exe: str | None = None, *, cache: bool = True) -> list[list[Comment]]:
    """Check all scripts with as few ShellCheck processes as the command line allows;
    one list of comments per job, in order.

    The same script text (same shell, same exports: the `#!` and header are part of it)
    is checked once per run, and with `cache` its comments come from, and go to, the
    on-disk `ResultCache`, so an unchanged RUN is never analysed twice."""
    results: list[list[Comment]] = [[] for _ in jobs]
    if not jobs:
        return results
    exe = exe or available()
    if exe is None:
        warn_missing()
        return results
    by_text: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        by_text.setdefault(job.script, []).append(i)
    store = ResultCache(exe) if cache else None
    raw: dict[str, list[Raw]] = {}
    todo: list[str] = []
    for text in by_text:
        hit = store.get(text) if store is not None else None
        if hit is None:
            todo.append(text)
        else:
            raw[text] = hit
    if todo:
        fresh = _check(exe, todo)
        raw.update(fresh)
        if store is not None:
            for text, found in fresh.items():
                store.put(text, found)
    for text, idxs in by_text.items():
        for idx in idxs:
            job = jobs[idx]
            results[idx] = [
                Comment(
                    job.inst,
                    code,
                    level,
                    message,
                    job.first_line + max(line - job.header_lines, 1) - 1,
                    job.heredoc,
                )
                for line, code, level, message in raw.get(text, ())
            ]
    return results
