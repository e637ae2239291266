"""The strace parser on real strace output (a host shell, no container needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from slimage.errors import UsageError
from slimage.minify.probe import parse_http_probe, parse_probe_file
from slimage.minify.trace import STRACE_FLAGS, StraceParser, parse_file, unescape

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")


def test_trace_of_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "trace.txt"
    weird = tmp_path / "a b\tc"
    weird.write_text("x")
    script = (
        f"cat /etc/hostname >/dev/null; ls /nonexistent-slimage >/dev/null 2>&1; "
        f"cd /etc && cat ./os-release >/dev/null; cat '{weird}' >/dev/null; "
        "(cd /usr/share && test -e ./no-such-thing-here) ; true"
    )
    subprocess.run(["strace", *STRACE_FLAGS, "-o", str(out), "sh", "-c", script], check=True)
    tr = parse_file(str(out), str(tmp_path))
    assert "/etc/hostname" in tr.found
    assert "/etc/os-release" in tr.found  # relative to the cwd after `cd /etc`
    assert str(weird) in tr.found  # strace's \t escape undone
    assert "/nonexistent-slimage" in tr.missing
    assert "/usr/share/no-such-thing-here" in tr.missing  # a subshell's cwd
    assert any(e.endswith("/cat") for e in tr.execs)
    assert "openat" in tr.syscalls or "open" in tr.syscalls


def test_only_calls_after_the_first_exec_count() -> None:
    """runc's own calls before the app's exec, and held-back calls of a child whose
    parent's clone had not returned yet."""
    lines = [
        '10  openat(AT_FDCWD</>, "/proc/self/fd", O_RDONLY) = 3</proc/1/fd>',
        '10  openat(AT_FDCWD</>, "/runc-only", O_RDONLY) = 3</runc-only>',
        '10  execve("/usr/bin/app", ["app"], 0x1 /* 3 vars */ <unfinished ...>',
        "10  <... execve resumed>)             = 0",
        '11  openat(AT_FDCWD</srv>, "early.txt", O_RDONLY) = 3</srv/early.txt>',
        "10  clone3({flags=CLONE_VM}, 88) = 2 /* 11 in strace's PID NS */",
        '11  newfstatat(AT_FDCWD</srv>, "gone", 0x7f, 0) = -1 ENOENT (No such file or directory)',
        "11  +++ exited with 0 +++",
        "10  +++ exited with 3 +++",
    ]
    p = StraceParser("/srv")
    for line in lines:
        p.feed(line)
    tr = p.trace
    assert "/runc-only" not in tr.found
    assert tr.execs == ["/usr/bin/app"]
    assert "/srv/early.txt" in tr.found
    assert tr.missing == {"/srv/gone"}
    assert tr.exit_codes[10] == "3"


def test_runtime_reexec_from_a_memfd_is_not_the_app() -> None:
    """runc init re-executes itself from a sealed memfd (`execveat(fd, "", AT_EMPTY_PATH)`)
    and sets up the rootfs before the app's execve: none of that is the app's."""
    lines = [
        '20  execve("/proc/self/exe", ["runc", "init"], 0x1 /* 7 vars */) = 0',
        '20  execveat(6</>, "", ["runc", "init"], 0x2 /* 8 vars */, 0x1000) = 0',
        '20  openat(-100</>, "/var/lib/store/rootfs/dev/null", 0x80000) = 3</dev/null>',
        '20  newfstatat(-100</>, "/etc/hosts", 0x7f, 0) = 0',
        '20  execve("/usr/bin/app", ["app"], 0x3 /* 3 vars */) = 0',
        '20  openat(-100</>, "/etc/app.conf", 0x80000) = 3</etc/app.conf>',
    ]
    p = StraceParser("/", runtime_paths=("/usr/sbin/runc",))
    for line in lines:
        p.feed(line)
    assert p.trace.found == {"/usr/bin/app", "/etc/app.conf"}
    assert p.trace.execs == ["/usr/bin/app"]


def test_unescape() -> None:
    assert unescape(r"a\tb\\c\"d\x41\101") == 'a\tb\\c"dAA'


def test_probe_specs(tmp_path: Path) -> None:
    probes = parse_http_probe("POST:/api/x:201", [8080, 9090])
    assert [(p.method, p.path, p.port, p.expect) for p in probes] == [
        ("POST", "/api/x", 8080, 201),
        ("POST", "/api/x", 9090, 201),
    ]
    assert parse_http_probe("/health", [1])[0].method == "GET"
    with pytest.raises(UsageError, match="EXPOSEs no port"):
        parse_http_probe("GET:/", [])
    f = tmp_path / "probes.txt"
    f.write_text("# comment\nGET /a 200\nHEAD /b\nbogus line here x\n")
    with pytest.raises(UsageError, match=r"probes.txt:4: expected"):
        parse_probe_file(str(f), [80])
