"""`slimage lint`: find what makes an image big, slow to rebuild or risky to run.

The API is `lint(dockerfile, config) -> list[Finding]` over a parsed `Dockerfile`, plus
`lint_paths()` for the CLI (one result per file, parse errors kept as data so one bad
file does not hide the findings of the others). Findings are plain data: the CLI renders
them as text, JSON or SARIF, and the optimizer can put them in its report.

Suppressions, in order of scope:
- `# slimage ignore=SL101,SL103` in the comment block right above an instruction;
- `# slimage ignore-file=SL302` anywhere in the file (also `# slimage global ignore=`);
- `ignore = [...]` in the config file, or `--ignore` on the command line.
hadolint's own `# hadolint ignore=DL3009` pragmas are honoured for the rules that have a
hadolint equivalent, so a project moving over keeps its decisions.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from slimage.dockerfile import shellcheck
from slimage.dockerfile.config import LintConfig
from slimage.dockerfile.frontend import parse
from slimage.dockerfile.model import Dockerfile, Instruction
from slimage.dockerfile.parser import read_text
from slimage.dockerfile.rules import RULES, Rule, resolve_rule_id
from slimage.dockerfile.rules.base import LintContext, Severity, StageInfo
from slimage.dockerfile.stages import stages as split_stages
from slimage.errors import DockerfileError

_INLINE = re.compile(r"^(slimage|hadolint)\s+ignore\s*=\s*(.+)$", re.I)
_FILE_WIDE = re.compile(
    r"^[ \t]*#[ \t]*(?:slimage[ \t]+ignore-file|(?:slimage|hadolint)[ \t]+global[ \t]+ignore)"
    r"[ \t]*=[ \t]*([^\r\n]+)",
    re.I | re.M,
)


@dataclass(slots=True)
class Finding:
    """One rule firing at one place. `message` is specific to this place; `why` and `fix`
    come from the rule (what it costs, what to do)."""

    rule: str
    severity: str
    file: str
    line: int
    end_line: int
    column: int
    message: str
    why: str
    fix: str
    hadolint: str | None
    category: str
    fixable: bool = False
    # Why hadolint would not report this (a heredoc body it never reads), if so.
    beyond: str | None = None

    @property
    def level(self) -> Severity:
        return Severity.parse(self.severity)


@dataclass(slots=True)
class LintResult:
    """Findings for one file, or the parse error that stopped it."""

    file: str
    findings: list[Finding] = field(default_factory=list)
    error: DockerfileError | None = None


def _stage_infos(dockerfile: Dockerfile, build_args: dict[str, str]) -> list[StageInfo]:
    infos: list[StageInfo] = []
    by_name: dict[str, StageInfo] = {}
    # `ARG BASE` + `FROM ${BASE}` needs a build arg to build, but is fine to lint.
    for st in split_stages(dockerfile, build_args, strict=False):
        info = StageInfo(
            index=st.index,
            name=st.name,
            base=st.base_expanded,
            from_inst=st.from_instruction,
            instructions=st.instructions,
            platform=st.platform_expanded,
        )
        parent = by_name.get(info.base.lower())
        if parent is not None:
            info.parent = parent
        infos.append(info)
        if st.name is not None:
            by_name.setdefault(st.name, info)
    if infos:
        infos[-1].final = True
        for shipped in infos[-1].chain():
            shipped.ships = True
    return infos


def context(dockerfile: Dockerfile, config: LintConfig | None = None) -> LintContext:
    """Precomputed facts about a Dockerfile (shared with the fixer)."""
    config = config or LintConfig()
    return LintContext(dockerfile, _stage_infos(dockerfile, config.build_args), config)


def _ids(text: str) -> set[str]:
    out: set[str] = set()
    for item in re.split(r"[,\s]+", text.strip()):
        if item:
            out.update(resolve_rule_id(item))
    return out


def _inline_ignores(inst: Instruction) -> set[str]:
    out: set[str] = set()
    for comment in inst.comments:
        m = _INLINE.match(comment.strip())
        if m:
            out |= _ids(m.group(2))
    return out


def file_ignores(dockerfile: Dockerfile) -> set[str]:
    out: set[str] = set()
    if "ignore" not in dockerfile.text:
        return out
    for m in _FILE_WIDE.finditer(dockerfile.text):
        out |= _ids(m.group(1))
    return out


def _selected(config: LintConfig, rules: Iterable[Rule] | None) -> list[Rule]:
    if rules is not None:
        return list(rules)
    if config.profile == "hadolint":
        # What a `.hadolint.yaml` asks for: hadolint's rules (and ShellCheck), nothing else.
        return [r for r in RULES.values() if r.id.startswith("DL")]
    return list(RULES.values())


def _check(
    dockerfile: Dockerfile, config: LintConfig, rules: Iterable[Rule] | None
) -> tuple[LintContext, list[Finding]]:
    """Run the rules; suppressions and severity overrides applied, not yet sorted."""
    ctx = context(dockerfile, config)
    skip = set(config.ignore) | file_ignores(dockerfile)
    inline: dict[int, set[str]] = {}
    findings: list[Finding] = []
    for r in _selected(config, rules):
        if r.id in skip:
            continue
        severity = config.severity.get(r.id, r.severity.label)
        seen: set[tuple[int, str]] = set()
        for hit in r.check(ctx):
            inst = hit.inst
            key = id(inst)
            if key not in inline:
                inline[key] = _inline_ignores(inst) if inst.comments else set()
            if r.id in inline[key]:
                continue
            line = hit.line or inst.start_line
            if (line, hit.detail) in seen:
                continue
            seen.add((line, hit.detail))
            findings.append(
                Finding(
                    rule=r.id,
                    severity=severity,
                    file=dockerfile.path,
                    line=line,
                    end_line=max(inst.end_line, line),
                    column=1,
                    message=hit.detail,
                    why=r.why,
                    fix=r.fix,
                    hadolint=r.hadolint,
                    category=r.category,
                    fixable=r.fixable,
                    beyond=hit.beyond,
                )
            )
    return ctx, _dedupe(findings)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """A DL rule and the SL rule mapped to it firing on the same line are one finding:
    keep slimage's (it says more and may be fixable; it carries the DL id)."""
    covered = {(f.hadolint, f.line) for f in findings if f.hadolint and not f.rule.startswith("DL")}
    if not covered:
        return findings
    return [f for f in findings if not (f.rule.startswith("DL") and (f.rule, f.line) in covered)]


def _shellcheck_findings(
    ctx: LintContext, comments: Iterable[shellcheck.Comment], config: LintConfig
) -> list[Finding]:
    skip = set(config.ignore) | file_ignores(ctx.dockerfile)
    out: list[Finding] = []
    for c in comments:
        if c.code in skip or c.code in _inline_ignores(c.inst):
            continue
        where = f"line {c.line}: " if c.line != c.inst.start_line else ""
        out.append(
            Finding(
                rule=c.code,
                severity=config.severity.get(c.code, _SC_LEVEL.get(c.level, "warning")),
                file=ctx.dockerfile.path,
                line=c.inst.start_line,
                end_line=max(c.inst.end_line, c.line),
                column=1,
                message=f"{where}{c.message}",
                why="ShellCheck: the RUN script has a shell pitfall that can break the build "
                "or make it do something else than it says",
                fix=f"see https://www.shellcheck.net/wiki/{c.code}",
                hadolint=c.code,
                category="correctness",
                beyond=shellcheck.HEREDOC_REASON if c.heredoc else None,
            )
        )
    return out


_SC_LEVEL = {"error": "error", "warning": "warning", "info": "info", "style": "style"}


def lint(
    dockerfile: Dockerfile,
    config: LintConfig | None = None,
    *,
    rules: Iterable[Rule] | None = None,
    cache: bool = True,
) -> list[Finding]:
    """All findings for a parsed Dockerfile, suppressions and severity overrides applied,
    sorted by line. ShellCheck runs on the RUNs when `config.shellcheck` is on and no
    explicit rule list is given; `cache=False` re-checks every script instead of reusing
    the on-disk ShellCheck results."""
    config = config or LintConfig()
    ctx, findings = _check(dockerfile, config, rules)
    if config.shellcheck and rules is None:
        jobs = shellcheck.jobs_for(ctx)
        comments = [c for per in shellcheck.run(jobs, cache=cache) for c in per]
        findings.extend(_shellcheck_findings(ctx, comments, config))
    findings.sort(key=lambda f: (f.line, f.rule))
    return findings


def lint_text(
    text: str, *, path: str = "Dockerfile", config: LintConfig | None = None
) -> list[Finding]:
    """Parse and lint; a malformed Dockerfile raises DockerfileError (FILE:LINE:COL)."""
    return lint(parse(text, path=path), config)


def lint_paths(
    paths: Sequence[str], config: LintConfig | None = None, *, cache: bool = True
) -> list[LintResult]:
    """Lint several files (`-` is stdin). Each file's parse error is kept in its result.
    ShellCheck sees the RUNs of all files in one batch (results cached on disk unless
    `cache` is off)."""
    config = config or LintConfig()
    results: list[LintResult] = []
    pending: list[tuple[LintResult, LintContext, list[shellcheck.Job]]] = []
    for path in paths:
        try:
            if path == "-":
                text = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
                shown = "<stdin>"
            else:
                text = read_text(path)
                shown = path
            ctx, findings = _check(parse(text, path=shown), config, None)
            result = LintResult(shown, findings)
            results.append(result)
            if config.shellcheck:
                pending.append((result, ctx, shellcheck.jobs_for(ctx)))
        except DockerfileError as err:
            results.append(LintResult(path, error=err))
    if pending:
        all_jobs = [job for _r, _c, jobs in pending for job in jobs]
        comments = shellcheck.run(all_jobs, cache=cache)
        pos = 0
        for result, ctx, jobs in pending:
            mine = [c for per in comments[pos : pos + len(jobs)] for c in per]
            pos += len(jobs)
            result.findings.extend(_shellcheck_findings(ctx, mine, config))
    for result in results:
        result.findings.sort(key=lambda f: (f.line, f.rule))
    return results


def fails(findings: Iterable[Finding], threshold: str) -> bool:
    """Does any finding reach the failure threshold (`none` never fails)?"""
    if threshold == "none":
        return False
    level = Severity.parse(threshold)
    return any(f.level >= level for f in findings)


def finding_dict(f: Finding) -> dict[str, object]:
    return {
        "rule": f.rule,
        "severity": f.severity,
        "file": f.file,
        "line": f.line,
        "end_line": f.end_line,
        "column": f.column,
        "message": f.message,
        "why": f.why,
        "fix": f.fix,
        "hadolint": f.hadolint,
        "category": f.category,
        "fixable": f.fixable,
        "beyond_hadolint": f.beyond,
    }


def rules_table() -> list[dict[str, object]]:
    """Every rule as data (for `slimage lint --list-rules` and the docs)."""
    return [
        {
            "id": r.id,
            "name": r.slug,
            "severity": r.severity.label,
            "category": r.category,
            "hadolint": r.hadolint,
            "summary": r.summary,
            "why": r.why,
            "fix": r.fix,
            "fixable": r.fixable,
            "differs_from_hadolint": r.differs,
        }
        for r in RULES.values()
    ]


def render_text(results: Sequence[LintResult], *, color: bool | None = None) -> str:
    """Human output: one line per finding (FILE:LINE RULE severity: message), then the
    rule's why/fix indented; rich colours when writing to a terminal."""
    lines: list[str] = []
    styles = {"error": "bold red", "warning": "yellow", "info": "cyan", "style": "dim"}
    for res in results:
        if res.error is not None:
            lines.append(f"[bold red]{_esc(str(res.error))}[/]")
            continue
        for f in res.findings:
            hd = f" ({f.hadolint})" if f.hadolint else ""
            lines.append(
                f"[bold]{_esc(f.file)}:{f.line}[/] [magenta]{f.rule}[/]{hd} "
                f"[{styles.get(f.severity, '')}]{f.severity}[/]: {_esc(f.message)}"
            )
            lines.append(f"    [dim]why:[/] {_esc(f.why)}")
            lines.append(
                f"    [dim]fix:[/] {_esc(f.fix)}{' [green](fixable: slimage fix)[/]' if f.fixable else ''}"
            )
    total = sum(len(r.findings) for r in results)
    errors = sum(1 for r in results if r.error is not None)
    summary = f"{total} finding{'s' if total != 1 else ''} in {len(results)} file"
    summary += "s" if len(results) != 1 else ""
    if errors:
        summary += f", {errors} could not be parsed"
    lines.append(summary)
    markup = "\n".join(lines)
    if color is False or (color is None and not sys.stdout.isatty()):
        return _strip_markup(markup) + "\n"
    from io import StringIO

    from rich.console import Console

    buf = StringIO()
    Console(file=buf, force_terminal=True, highlight=False, soft_wrap=True).print(markup)
    return buf.getvalue()


_MARKUP = re.compile(r"\[(?:/|bold|dim|yellow|cyan|magenta|green|bold red|red)\]")


def _esc(text: str) -> str:
    return text.replace("[", "\\[")


def _strip_markup(text: str) -> str:
    return _MARKUP.sub("", text).replace("\\[", "[")
