"""`--seccomp-profile FILE`: the syscalls the app made, as a Docker seccomp profile.

Docker's format (`docker run --security-opt seccomp=FILE`): `defaultAction`
SCMP_ACT_ERRNO (EPERM) for anything not listed, one SCMP_ACT_ALLOW rule naming every
syscall seen, and the architectures of the host's ABI family (a 64-bit x86 host also
runs 32-bit and x32 code, as Docker's own default profile allows).

The names come from strace tracing *every* call (minify's fast mode stops only at file
calls, so it cannot tell), in both runs, of the app and of the OCI runtime's init from its
start: the calls runc makes between installing the profile and its execve of the app
are in the trace too. `BASELINE` adds what a runtime's init needs at that point that
another runc version than ours may call (Docker's engine ships its own).
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Iterable

from slimage.errors import UsageError

ARCHES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}
# What runc's (or crun's) init does after the filter is in place and before the app runs:
# drop capabilities, switch user, check that /proc is procfs (fstatfs), close inherited
# fds, signal its parent, look the program up (stat, faccessat2), exec. The trace cannot tell these from the runtime's earlier
# setup calls (mount, pivot_root...), which the profile must not allow.
BASELINE = (
    "capget", "capset", "chdir", "close", "close_range", "execve", "exit", "exit_group",
    "fchdir", "fcntl", "fstat", "newfstatat", "futex", "getdents64", "getpid", "getppid",
    "gettid", "openat", "prctl", "read", "write", "rt_sigaction", "rt_sigprocmask",
    "rt_sigreturn", "sched_yield", "setgid", "setgroups", "setresgid", "setresuid",
    "setuid", "sigaltstack", "tgkill", "nanosleep", "mmap", "munmap", "madvise", "brk",
    "mprotect", "arch_prctl", "set_tid_address", "set_robust_list", "rseq", "getrandom",
    "epoll_ctl", "epoll_pwait", "epoll_create1", "pipe2", "dup3",
    "fstatfs", "statfs", "readlinkat", "getcwd", "umask", "sched_getaffinity",
    "faccessat", "faccessat2", "access", "stat", "lstat", "statx",
)  # fmt: skip


def profile(syscalls: Iterable[str]) -> dict[str, object]:
    """The profile allowing SYSCALLS (plus BASELINE), everything else EPERM."""
    names = sorted({s for s in syscalls if s and not s.startswith("syscall_")} | set(BASELINE))
    out: dict[str, object] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1}
    arches = ARCHES.get(platform.machine())
    if arches:
        out["architectures"] = arches
    out["syscalls"] = [{"names": names, "action": "SCMP_ACT_ALLOW"}]
    return out


def check_target(path: str) -> None:
    """Fail before any run when FILE cannot be written (its directory is missing)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise UsageError(f"--seccomp-profile {path}: directory {parent} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"--seccomp-profile {path}: is a directory")


def write_profile(path: str, syscalls: Iterable[str]) -> int:
    """Write the profile to PATH whole or not at all (temp file + rename); returns how
    many syscalls it allows."""
    data = profile(syscalls)
    parent = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".seccomp-", dir=parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    rules = data["syscalls"]
    assert isinstance(rules, list)
    return len(rules[0]["names"])
