"""SARIF 2.1.0 output for lint findings.

SARIF is what code-scanning UIs (GitHub, GitLab, VS Code's SARIF viewer) ingest, so
`slimage lint --format sarif` lets findings show up as annotations on the Dockerfile
lines. Each rule is described once in `tool.driver.rules` (with its hadolint equivalent
and the why/fix text); each finding is a `result` pointing at its lines. Files that could
not be parsed are reported as `toolExecutionNotifications`, as the spec intends for
problems of the tool run rather than of the code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slimage.dockerfile.lint import Finding
    from slimage.dockerfile.rules.base import Rule

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
_LEVEL = {"error": "error", "warning": "warning", "info": "note", "style": "note"}


def artifact_uri(path: str) -> str:
    """A SARIF `uri`: relative paths stay relative (resolved against %SRCROOT%), absolute
    ones become file:// URIs; `<stdin>` is kept as a plain name."""
    if path.startswith("<"):
        return path.strip("<>")
    p = Path(path)
    if p.is_absolute():
        return p.as_uri()
    return p.as_posix().replace(" ", "%20").replace("#", "%23")


def _location(path: str, line: int, end_line: int | None = None, col: int = 1) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": max(line, 1), "startColumn": max(col, 1)}
    if end_line and end_line > line:
        region["endLine"] = end_line
    artifact: dict[str, Any] = {"uri": artifact_uri(path)}
    if not Path(path).is_absolute() and not path.startswith("<"):
        artifact["uriBaseId"] = "%SRCROOT%"
    return {"physicalLocation": {"artifactLocation": artifact, "region": region}}


def rule_descriptor(rule: Rule) -> dict[str, Any]:
    props: dict[str, Any] = {"tags": [rule.category], "fixable": rule.fixable}
    if rule.hadolint:
        props["hadolint"] = rule.hadolint
    return {
        "id": rule.id,
        "name": "".join(part.capitalize() for part in rule.slug.split("-")),
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": f"{rule.summary}: {rule.why}."},
        "help": {"text": f"Why: {rule.why}. Fix: {rule.fix}."},
        "defaultConfiguration": {"level": _LEVEL[rule.severity.label]},
        "properties": props,
    }


def to_sarif(
    findings: Iterable[Finding],
    rules: Sequence[Rule],
    *,
    errors: Iterable[tuple[str, int, int, str]] = (),
    tool_version: str = "0",
    information_uri: str | None = None,
) -> dict[str, Any]:
    """A complete SARIF log (one run). `errors` are (file, line, col, message) for files
    that could not be linted."""
    index = {r.id: i for i, r in enumerate(rules)}
    results = []
    for f in findings:
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "level": _LEVEL.get(f.severity, "warning"),
            "message": {"text": f"{f.message}. Fix: {f.fix}."},
            "locations": [_location(f.file, f.line, f.end_line, f.column)],
        }
        if f.rule in index:
            result["ruleIndex"] = index[f.rule]
        results.append(result)
    notifications = []
    for path, line, col, message in errors:
        note: dict[str, Any] = {"level": "error", "message": {"text": message}}
        note["locations"] = [_location(path, line or 1, None, col or 1)]
        notifications.append(note)
    driver: dict[str, Any] = {
        "name": "slimage",
        "version": tool_version,
        "rules": [rule_descriptor(r) for r in rules],
    }
    if information_uri:
        driver["informationUri"] = information_uri
    invocation: dict[str, Any] = {"executionSuccessful": not notifications}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {"driver": driver},
                "invocations": [invocation],
                "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
                "results": results,
            }
        ],
    }
