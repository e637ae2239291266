"""What lets minify overlap its phases, without a container: the trace parsed as strace
writes it, and the closure computed from the trace as it stood when the probes ended."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from slimage.errors import UsageError
from slimage.minify.api import _Speculation
from slimage.minify.trace import STRACE_FLAGS, Trace, parse_file


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_follower_reads_what_strace_appends(tmp_path: Path) -> None:
    """The traced run parses its trace as strace writes it: fed in pieces cut anywhere
    (mid-line too), the result is the whole file's parse."""
    from slimage.minify.session import _Follower

    out = tmp_path / "trace.txt"
    script = "cat /etc/hostname >/dev/null; ls /nonexistent-slimage 2>/dev/null; cd /etc; cat ./os-release"
    subprocess.run(
        ["strace", *STRACE_FLAGS, "-o", str(out), "sh", "-c", script],
        check=True,
        capture_output=True,
    )
    data = out.read_bytes().rstrip(b"\n")  # the last line without its newline, as a cut file
    growing = tmp_path / "growing.txt"
    growing.write_bytes(b"")
    fol = _Follower(growing, str(tmp_path), root_prefix="", runtime_paths=())
    for i in range(0, len(data), 997):
        with open(growing, "ab") as fh:
            fh.write(data[i : i + 997])
        fol.read()
    fol.read(final=True)
    whole = parse_file(str(out), str(tmp_path))
    got = fol.parser.trace
    assert (got.found, got.missing, got.execs, got.lines) == (
        whole.found,
        whole.missing,
        whole.execs,
        whole.lines,
    )
    assert "/etc/os-release" in got.found and "/nonexistent-slimage" in got.missing


def _trace(*found: str, execs: tuple[str, ...] = ()) -> Trace:
    return Trace(found=set(found), execs=list(execs))


def test_speculative_closure_is_used_only_for_the_same_trace() -> None:
    """The closure computed during the app's shutdown is the result only if the complete
    trace names the same paths and execs; otherwise the caller computes it again."""
    done = threading.Event()

    def compute(trace: Trace, run: object) -> object:
        done.set()
        return sorted(trace.found)

    spec = _Speculation(compute, None)  # type: ignore[arg-type]
    assert spec.result(_trace("/a")) is None  # never started: the app exited by itself
    spec.start(_trace("/a", "/b", execs=("/bin/app",)), None)  # type: ignore[arg-type]
    assert spec.result(_trace("/a", "/b", execs=("/bin/app",))) == ["/a", "/b"]
    assert done.is_set()
    assert spec.result(_trace("/a", "/b", "/c", execs=("/bin/app",))) is None
    assert spec.result(_trace("/a", "/b", execs=("/bin/app", "/bin/sh"))) is None


def test_speculative_error_is_raised_for_the_same_trace_only() -> None:
    def compute(trace: Trace, run: object) -> object:
        raise UsageError("--include-path /x: no such path")

    spec = _Speculation(compute, None)  # type: ignore[arg-type]
    spec.start(_trace("/a"), None)  # type: ignore[arg-type]
    assert spec.result(_trace("/a", "/b")) is None  # computed again, in the caller
    with pytest.raises(UsageError, match="--include-path"):
        spec.result(_trace("/a"))
