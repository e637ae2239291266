""" ""ShellCheck on RUN: real Debian `shellcheck`, batched, lines mapped, pragmas and
`.hadolint.yaml` honoured, a clear notice when shellcheck is missing, and the on-disk
result cache (hit, miss on change, corrupt entries, --no-cache)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from slimage.dockerfile import shellcheck
from slimage.dockerfile.config import ConfigError, find_config, load_config
from slimage.dockerfile.frontend import parse
from slimage.dockerfile.lint import LintResult, context, lint_paths, lint_text

pytestmark = pytest.mark.skipif(shutil.which("shellcheck") is None, reason="needs shellcheck")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test (and every CLI it starts) caches under its tmp_path, never ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


MULTI = """FROM debian:12
ENV TARGET=/opt
RUN set -eux; \\
    # a Dockerfile comment inside the continuation
    echo $foo; \\
    cp a $TARGET
"""


def _sc(text: str, **kw: Any) -> list[tuple[str, int, str]]:
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


class _Spy:
    """Records the shellcheck command lines while the real processes run."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[list[str]] = []
        real = subprocess.Popen

        def spy(cmd: list[str], *a: object, **kw: object) -> object:
            self.calls.append(list(cmd))
            return real(cmd, *a, **kw)  # type: ignore[call-overload]

        monkeypatch.setattr(shellcheck.subprocess, "Popen", spy)

    def scripts(self) -> list[str]:
        return [arg for cmd in self.calls for arg in cmd if arg.endswith(".sh")]


def _files(tmp_path: Path, n: int = 5) -> list[str]:
    files = []
    for i in range(n):
        p = tmp_path / f"{i}.Dockerfile"
        p.write_text(f"FROM debian:12\nRUN echo $v{i}\nRUN echo ok\n")
        files.append(str(p))
    return files


def _found(results: list[LintResult]) -> list[tuple[str, str, int, str]]:
    return [(r.file, f.rule, f.line, f.message) for r in results for f in r.findings]


def test_batched_per_cpu_and_identical_scripts_checked_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _Spy(monkeypatch)
    results = lint_paths(_files(tmp_path), cache=False)
    # 10 RUNs, 6 distinct scripts (`echo ok` is the same in every file): each checked once,
    # in at most one process per CPU.
    assert len(spy.scripts()) == 6
    assert 1 <= len(spy.calls) <= (os.cpu_count() or 1)
    assert all([f.line for f in r.findings if f.rule == "SC2086"] == [2] for r in results)


def test_exports_only_for_names_that_can_change_a_finding() -> None:
    # Unused ENV names are not exported (they cost ShellCheck time, change nothing); a
    # referenced one is (no SC2086 on $APP, which holds a word), and so is a name one typo
    # away from a referenced upper-case one (SC2153 needs it).
    text = "FROM debian:12\nENV APP=x UNUSED_ONE=1 PROJECT_DIR=/srv\nRUN cp $APP $PROJECT_IDR /x\n"
    df = parse(text)
    (job,) = shellcheck.jobs_for(context(df))
    assert "export APP=1" in job.script and "export PROJECT_DIR=1" in job.script
    assert "UNUSED_ONE" not in job.script and "http_proxy" not in job.script
    rules = {f.rule: f.message for f in lint_text(text)}
    assert "SC2153" in rules and "PROJECT_DIR" in rules["SC2153"]
    assert [f.rule for f in lint_text(text) if f.rule == "SC2086"] == ["SC2086"]  # $PROJECT_IDR
    assert not [f for f in lint_text(text.replace(" $PROJECT_IDR", "")) if f.rule.startswith("SC")]


def _entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*.json"))


def test_cache_hit_gives_identical_findings_without_shellcheck(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path)
    cold = lint_paths(files)
    cache = tmp_path / "xdg" / "slimage" / "shellcheck"
    assert len(_entries(cache)) == 6
    spy = _Spy(monkeypatch)
    warm = lint_paths(files)
    assert spy.calls == []  # every script answered from disk, no process started
    assert _found(warm) == _found(cold) and any(f[1] == "SC2086" for f in _found(cold))


def test_changed_script_misses_and_only_it_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _files(tmp_path)
    lint_paths(files)
    Path(files[0]).write_text("FROM debian:12\nRUN echo $v0\nRUN echo `date`\n")
    spy = _Spy(monkeypatch)
    results = lint_paths(files)
    assert len(spy.scripts()) == 1  # the edited RUN, nothing else
    assert ("SC2006", 3) in {(f.rule, f.line) for f in results[0].findings}


@pytest.mark.parametrize(
    "garbage",
    [b"", b"{not json", b'{"comments": [[1, "SC1", "x"]]}', b'{"comments": 5}', b"\xff\xfe"],
)
def test_corrupt_entry_is_ignored_and_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, garbage: bytes
) -> None:
    files = _files(tmp_path)
    cold = lint_paths(files)
    entries = _entries(tmp_path / "xdg")
    for entry in entries:
        entry.write_bytes(garbage)
    spy = _Spy(monkeypatch)
    again = lint_paths(files)
    assert _found(again) == _found(cold)
    assert len(spy.scripts()) == 6  # all re-checked...
    for entry in entries:  # ...and the entries are whole again
        assert isinstance(json.loads(entry.read_text())["comments"], list)
    assert not list((tmp_path / "xdg").rglob(".tmp-*"))  # no half-written file left


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "slimage.cli.main", "lint", "--no-config", "-t", "none"]
    return subprocess.run([*cmd, "--json", *args], capture_output=True, text=True, cwd=cwd)


def test_no_cache_flag_bypasses_the_cache(tmp_path: Path) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text("FROM debian:12\nRUN echo $x\n")
    # --no-cache: nothing read, nothing written.
    proc = _cli("--no-cache", str(df), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not _entries(tmp_path / "xdg")
    plain = _cli(str(df), cwd=tmp_path)
    (entry,) = _entries(tmp_path / "xdg")
    # Poison the entry: a cached run believes it, a --no-cache run does not read it.
    entry.write_text(json.dumps({"comments": [[2, "SC9999", "error", "poisoned"]]}))
    cached = [f["rule"] for f in json.loads(_cli(str(df), cwd=tmp_path).stdout)["findings"]]
    fresh = [
        f["rule"] for f in json.loads(_cli("--no-cache", str(df), cwd=tmp_path).stdout)["findings"]
    ]
    assert "SC9999" in cached and "SC9999" not in fresh
    assert fresh == [f["rule"] for f in json.loads(plain.stdout)["findings"]] and "SC2086" in fresh


def test_cache_key_covers_version_options_and_text(tmp_path: Path) -> None:
    exe = shutil.which("shellcheck")
    assert exe is not None
    store = shellcheck.ResultCache(exe)
    assert store.root == str(tmp_path / "xdg" / "slimage" / "shellcheck")
    a = "#!/bin/sh\necho $x\n"
    assert store.key(a) == shellcheck.ResultCache(exe).key(a)
    assert store.key(a) != store.key(a.replace("/bin/sh", "/bin/bash"))  # the shell
    assert store.key(a) != store.key(a + " ")
    assert shellcheck.version(exe).startswith("shellcheck 0.")
    # An unwritable cache is not an error: the findings are still there.
    ro = tmp_path / "ro"
    ro.write_text("a file where the cache directory should be")
    assert shellcheck.ResultCache(exe, root=str(ro / "sub")).get(a) is None
    shellcheck.ResultCache(exe, root=str(ro / "sub")).put(a, [])


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
