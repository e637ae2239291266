"""ShellCheck on RUN: real Debian `shellcheck`, one batch, lines mapped, pragmas and
`.hadolint.yaml` honoured, and a clear notice when shellcheck is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slimage.dockerfile import shellcheck
from slimage.dockerfile.config import ConfigError, find_config, load_config
from slimage.dockerfile.lint import lint_paths, lint_text

pytestmark = pytest.mark.skipif(shutil.which("shellcheck") is None, reason="needs shellcheck")

MULTI = """FROM debian:12
ENV TARGET=/opt
RUN set -eux; \\
    # a Dockerfile comment inside the continuation
    echo $foo; \\
    cp a $TARGET
"""


def _sc(text: str, **kw: object) -> list[tuple[str, int, str]]:
    return [(f.rule, f.line, f.message) for f in lint_text(text, **kw) if f.rule.startswith("SC")]


def test_finding_is_at_the_run_and_names_the_exact_line() -> None:
    found = _sc(MULTI)
    assert [(r, line) for r, line, _ in found] == [("SC2086", 3)]
    assert found[0][2].startswith("line 5: ")  # $foo, not the ENV-exported $TARGET


def test_inline_pragma_and_file_ignore() -> None:
    text = MULTI.replace("RUN set", "# hadolint ignore=SC2086\nRUN set")
    assert _sc(text) == []
    assert _sc("# hadolint global ignore=SC2086\n" + MULTI) == []


def test_heredoc_body_is_checked_with_the_stage_shell() -> None:
    text = 'FROM debian:12\nSHELL ["/bin/bash", "-c"]\nRUN <<EOF\necho $x\n[[ -n "$y" ]]\nEOF\n'
    findings = [f for f in lint_text(text) if f.rule.startswith("SC")]
    assert [f.rule for f in findings] == ["SC2086"]  # bash: [[ ]] is fine
    assert "line 4" in findings[0].message and findings[0].beyond
    sh = text.replace('SHELL ["/bin/bash", "-c"]\n', "")
    assert "SC3010" in {f.rule for f in lint_text(sh)}  # [[ ]] is not POSIX sh


def test_exec_form_and_powershell_are_not_checked() -> None:
    assert _sc('FROM debian:12\nRUN ["echo", "$x"]\n') == []
    assert _sc('FROM debian:12\nSHELL ["pwsh", "-c"]\nRUN echo $x\n') == []


def test_one_process_for_many_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = []
    for i in range(5):
        p = tmp_path / f"{i}.Dockerfile"
        p.write_text(f"FROM debian:12\nRUN echo $v{i}\nRUN echo ok\n")
        files.append(str(p))
    calls: list[list[str]] = []
    real = subprocess.Popen

    def spy(cmd: list[str], *a: object, **kw: object) -> object:
        calls.append(cmd)
        return real(cmd, *a, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(shellcheck.subprocess, "Popen", spy)
    results = lint_paths(files)
    assert len(calls) == 1 and sum(c.endswith(".sh") for c in calls[0]) == 10
    assert all([f.line for f in r.findings if f.rule == "SC2086"] == [2] for r in results)


def test_missing_shellcheck_is_said_once(tmp_path: Path) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text("FROM debian:12\nRUN echo $x\n")
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "slimage.cli.main",
            "lint",
            "--no-config",
            "-t",
            "none",
            "--json",
            str(df),
            str(df),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("shellcheck not found") == 1 and "Traceback" not in proc.stderr
    assert not [f for f in json.loads(proc.stdout)["findings"] if f["rule"].startswith("SC")]


def test_hadolint_yaml_gives_hadolint_pass_fail(tmp_path: Path) -> None:
    (tmp_path / ".hadolint.yaml").write_text(
        "ignored: [DL3008, SC2086]\nfailure-threshold: warning\n"
        "override:\n  error: [DL3003]\ntrustedRegistries: [docker.io]\n"
    )
    df = tmp_path / "Dockerfile"
    df.write_text("FROM quay.io/x/y:1\nRUN apt-get update && apt-get install -y curl && echo $a\n")
    found = find_config(tmp_path)
    assert found is not None and found.name == ".hadolint.yaml"
    cfg = load_config(found)
    assert cfg.profile == "hadolint" and cfg.failure_threshold == "warning"
    rules = {f.rule: f for r in lint_paths([str(df)], cfg) for f in r.findings}
    assert "DL3008" not in rules and "SC2086" not in rules
    assert "DL3026" in rules and all(r.startswith(("DL", "SC")) for r in rules)
    cd = tmp_path / "cd.Dockerfile"
    cd.write_text("FROM debian:12\nRUN cd /tmp && ls\n")
    assert {f.severity for r in lint_paths([str(cd)], cfg) for f in r.findings} == {"error"}
    # Same pass/fail as hadolint itself, when it is installed.
    if shutil.which("hadolint"):
        for path in (df, cd):
            ours = subprocess.run(
                [sys.executable, "-m", "slimage.cli.main", "lint", str(path)],
                capture_output=True,
                text=True,
                cwd=tmp_path,
            )
            theirs = subprocess.run(["hadolint", str(path)], capture_output=True, cwd=tmp_path)
            assert (ours.returncode == 0) == (theirs.returncode == 0), ours.stdout


def test_bad_hadolint_yaml_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / ".hadolint.yaml"
    bad.write_text("ignored: DL3008\n")
    with pytest.raises(ConfigError, match=r"\.hadolint\.yaml: ignored: must be a list"):
        load_config(bad)
    bad.write_text("override:\n  fatal: [DL3008]\n")
    with pytest.raises(ConfigError, match="override.fatal: unknown severity"):
        load_config(bad)
