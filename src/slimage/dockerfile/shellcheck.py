"""ShellCheck on every RUN, the way hadolint runs it, in one batched process.

hadolint links ShellCheck in and checks each shell-form RUN as a script that starts with
`#!<the stage's SHELL>` and `export NAME=1` for every ARG/ENV name in force, excluding SC1090, SC1091 and SC2187
(and reports no SC2154). Teams rely on those SCxxxx warnings, so `slimage lint` reproduces them with
Debian's `shellcheck` binary.

Design:
- One `shellcheck -f json1` process per CPU for all RUNs of all files (never one per
  RUN: start-up would dominate small scripts).
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
            header = [f"#!{prog}", *(f"export {k}=1" for k in names)]
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
            jobs.append(
                Job(inst, "\n".join(header) + "\n" + text + "\n", len(header), first, heredoc)
            )
    return jobs


def run(jobs: list[Job], exe: str | None = None) -> list[list[Comment]]:
    """Check all scripts with as few ShellCheck processes as the command line allows;
    one list of comments per job, in order."""
    results: list[list[Comment]] = [[] for _ in jobs]
    if not jobs:
        return results
    exe = exe or available()
    if exe is None:
        warn_missing()
        return results
    with tempfile.TemporaryDirectory(prefix="slimage-sc-") as tmp:
        paths = []
        for i, job in enumerate(jobs):
            path = os.path.join(tmp, f"{i}.sh")
            with open(path, "w", encoding="utf-8", errors="surrogateescape") as fh:
                fh.write(job.script)
            paths.append(path)
        by_path = {p: i for i, p in enumerate(paths)}
        # ShellCheck checks files one after another: one process per CPU (each with its
        # share of the scripts, cut to keep the command line short) uses the machine.
        procs = max(1, min(os.cpu_count() or 1, len(paths) // 20 or 1))
        chunks = [paths[i::procs] for i in range(procs)]
        chunks = [c[j : j + 1000] for c in chunks for j in range(0, len(c), 1000)]
        running = [
            subprocess.Popen(
                [exe, "--norc", "-f", "json1", "-S", "style", "-e", EXCLUDED, *part],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for part in chunks
        ]
        for proc in running:
            out, _ = proc.communicate()
            try:
                data = json.loads(out or "{}")
            except json.JSONDecodeError:
                continue
            for c in data.get("comments", []):
                idx = by_path.get(c.get("file", ""))
                if idx is None:
                    continue
                job = jobs[idx]
                own = int(c.get("line", 1)) - job.header_lines
                line = job.first_line + max(own, 1) - 1
                results[idx].append(
                    Comment(
                        job.inst,
                        f"SC{c.get('code')}",
                        str(c.get("level", "warning")),
                        str(c.get("message", "")),
                        line,
                        job.heredoc,
                    )
                )
    return results
