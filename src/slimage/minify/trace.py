"""What a traced container looked at: strace's output, turned into paths.

The tracer is Debian's strace (well kept, and it sees every path-taking syscall). It
starts the OCI runtime and follows it (-f) into the container's init, which runc holds
before its `execve` of the app, so nothing the program does escapes it. It catches what
fanotify cannot: `stat`, `access`, `readlink`, the `execve` of a script and its
interpreter, directory listings (`getdents64` with `-y`, which names the directory), and
failed lookups (ENOENT), which verification needs.

Why there is no fanotify tracer next to it: everything fanotify reports on a mount
(FAN_OPEN, FAN_OPEN_EXEC, FAN_ACCESS) starts with a path-taking syscall strace already
records, in every process of the container, threads included: a file is opened
(open/openat/openat2, or execve/execveat, or uselib) before it can be read, executed or
mapped, and `mmap` of an fd maps a file that was opened under a path we have. The only
things fanotify would add are opens that do not name a path: `open_by_handle_at`, and an
fd passed in over a unix socket from outside the container. Neither is how programs load
code or data from their own image, so a second tracer (and its event queue, overflow
handling and mount marks) would cost more than it can find. If it were ever needed, its
place is a `Trace` merged in `TracedRun.traces`.

The parser here reads strace's `-f -y` text format: `PID syscall(args) = result`, with
calls split into `<unfinished ...>` / `<... NAME resumed>` halves when processes
interleave, and `+++ exited with N +++` lines that give us the app's exit code (runc has
already exited, so nobody else can tell us).

Only what a process does after its first real `execve` counts: before that, it is runc's
own init (or `runc exec`) getting ready, in paths that are not the image's.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

# The syscalls strace is asked for: every call that names a file (%file), process
# creation and exec (%process, for cwd inheritance and exec marks), and the two calls
# that read a directory or move into one by fd.
STRACE_FILTER = "trace=%file,%process,getdents64,getdents,fchdir"


def strace_flags(*, all_syscalls: bool = False) -> list[str]:
    """strace's options besides -p/-o: follow forks, keep long paths whole, name fds (-y),
    flags as raw numbers (-X raw: less formatting, and the parser reads no flags). Not
    -qq: that would hide the `+++ exited with N +++` lines the app's exit code comes from.

    ALL_SYSCALLS (for --seccomp-profile) stops the tracee at every call, to learn every
    syscall's name. Otherwise only STRACE_FILTER's calls are asked for, and with
    `--seccomp-bpf` the app's other calls (futex, read, epoll_wait, mmap...) never stop
    it at all: that was most of the cost of running npm and node under ptrace. strace
    installs that filter only in a command it starts itself (never with -p), so the
    tracer starts `runc create` rather than attaching to its init; the filter sets
    no_new_privs, which the container inherits (a setuid program the app runs gains no
    privileges in the traced runs, as with Docker's `no-new-privileges`)."""
    flags = ["-f", "-q", "--pidns-translation", "-s", "8192", "-y", "-X", "raw"]
    if all_syscalls:
        return [*flags, "-e", "trace=all", "-e", "signal=none"]
    return [*flags, "--seccomp-bpf", "-e", STRACE_FILTER, "-e", "signal=none"]


# The default (kept for callers that just want a trace of a host command).
STRACE_FLAGS = strace_flags()

_LINE = re.compile(r"^(\d+)\s+(.*)$")
_CALL = re.compile(r"^([a-z_0-9]+)\((.*)$", re.S)
_RESUMED = re.compile(r"^<\.\.\. ([a-z_0-9]+) resumed>(.*)$", re.S)
_RESULT = re.compile(
    r"\)\s+=\s+(-?\d+|\?|0x[0-9a-f]+)(?:<([^>]*)>)?"
    r"(?:\s+/\* (\d+) in strace's PID NS \*/)?(?:\s+([A-Z][A-Z0-9_]+))?"
)
_EXIT = re.compile(r"^\+\+\+ (exited with (\d+)|killed by (SIG[A-Z0-9]+).*) \+\+\+$")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_FD = re.compile(r"^(-?\d+|AT_FDCWD)(?:<([^>]*)>)?$")

# syscall -> (index of the dirfd argument or None, index of the path argument)
PATH_ARGS: dict[str, tuple[int | None, int]] = {
    "open": (None, 0),
    "creat": (None, 0),
    "stat": (None, 0),
    "lstat": (None, 0),
    "stat64": (None, 0),
    "lstat64": (None, 0),
    "access": (None, 0),
    "readlink": (None, 0),
    "execve": (None, 0),
    "chdir": (None, 0),
    "truncate": (None, 0),
    "statfs": (None, 0),
    "getxattr": (None, 0),
    "lgetxattr": (None, 0),
    "listxattr": (None, 0),
    "llistxattr": (None, 0),
    "uselib": (None, 0),
    "chroot": (None, 0),
    "openat": (0, 1),
    "openat2": (0, 1),
    "newfstatat": (0, 1),
    "fstatat64": (0, 1),
    "statx": (0, 1),
    "faccessat": (0, 1),
    "faccessat2": (0, 1),
    "readlinkat": (0, 1),
    "execveat": (0, 1),
    "name_to_handle_at": (0, 1),
}
# Calls whose success means the program *used* the path's content or type.
EXEC_CALLS = {"execve", "execveat"}


def unescape(text: str) -> str:
    """strace's C-style string escapes back to the path's text (bytes as surrogates)."""
    if "\\" not in text:
        return text
    out = bytearray()
    i = 0
    raw = text.encode("utf-8", "surrogateescape")
    while i < len(raw):
        c = raw[i]
        if c != 0x5C or i + 1 >= len(raw):
            out.append(c)
            i += 1
            continue
        n = chr(raw[i + 1])
        simple = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, "\\": 92, '"': 34, "'": 39}
        if n in simple:
            out.append(simple[n])
            i += 2
        elif n == "x":
            out.append(int(raw[i + 2 : i + 4], 16))
            i += 4
        elif n.isdigit():
            j = i + 1
            while j < len(raw) and j < i + 4 and chr(raw[j]).isdigit():
                j += 1
            out.append(int(raw[i + 1 : j], 8) & 0xFF)
            i = j
        else:
            out.append(c)
            i += 1
    return out.decode("utf-8", "surrogateescape")


def _split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments (strings, arrays and structs kept whole)."""
    args: list[str] = []
    depth = 0
    cur: list[str] = []
    i = 0
    in_str = False
    while i < len(text):
        ch = text[i]
        if in_str:
            cur.append(ch)
            if ch == "\\" and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
            cur.append(ch)
        elif ch in "[{(<":
            depth += 1
            cur.append(ch)
        elif ch in "]})>":
            depth -= 1
            cur.append(ch)
        elif ch == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    if cur:
        args.append("".join(cur).strip())
    return args


@dataclass
class Trace:
    """Paths a run looked at, as the container saw them (absolute, not yet resolved)."""

    found: set[str] = field(default_factory=set)  # lookups that succeeded
    missing: set[str] = field(default_factory=set)  # lookups that failed with ENOENT
    execs: list[str] = field(default_factory=list)  # successful execve paths, in order
    listed: set[str] = field(default_factory=set)  # directories read with getdents
    syscalls: set[str] = field(default_factory=set)
    exit_codes: dict[int, str] = field(default_factory=dict)  # pid -> "0" / "SIGKILL"
    lines: int = 0

    def merge(self, other: Trace) -> None:
        self.found |= other.found
        self.missing |= other.missing
        self.execs += [e for e in other.execs if e not in self.execs]
        self.listed |= other.listed
        self.syscalls |= other.syscalls
        self.lines += other.lines


class StraceParser:
    """Feed it strace `-f -y` output line by line; `trace` accumulates the result.

    ROOT_PREFIX is the host path of the container's rootfs: `-y` names fds by the
    tracer's view, which is the container's own for a pivoted root, but a host path
    would start with ROOT_PREFIX, and is cut back to the container's."""

    def __init__(
        self,
        initial_cwd: str = "/",
        *,
        root_prefix: str = "",
        runtime_paths: tuple[str, ...] = (),
        in_container: bool = False,
    ):
        self.trace = Trace()
        self.cwd: dict[int, str] = {}
        self.active: set[int] = set()
        self.initial_cwd = initial_cwd
        self.root_prefix = root_prefix.rstrip("/")
        self.runtime_paths = set(runtime_paths) | {"/proc/self/exe"}
        self.pending: dict[int, str] = {}
        self.held: dict[int, list[str]] = {}
        self.all_active = in_container

    # ------------------------------------------------------------------ helpers
    def _host_to_container(self, path: str) -> str:
        if self.root_prefix and (
            path == self.root_prefix or path.startswith(self.root_prefix + "/")
        ):
            return path[len(self.root_prefix) :] or "/"
        return path

    def _absolute(self, pid: int, dirfd: str | None, path: str) -> str | None:
        if path.startswith("/"):
            return posixpath.normpath(path).replace("//", "/")
        base: str | None
        if dirfd is None or dirfd.startswith("AT_FDCWD"):
            m = _FD.match(dirfd or "")
            base = (m.group(2) if m and m.group(2) else None) or self.cwd.get(pid, self.initial_cwd)
        else:
            m = _FD.match(dirfd)
            base = m.group(2) if m else None
        if not base or not base.startswith("/"):
            return None
        base = self._host_to_container(base)
        return posixpath.normpath(posixpath.join(base, path)) if path else base

    def _mark_active(self, pid: int) -> None:
        self.active.add(pid)

    def is_active(self, pid: int) -> bool:
        return self.all_active or pid in self.active

    # ------------------------------------------------------------------ parsing
    def feed(self, line: str) -> None:
        line = line.rstrip("\n")
        m = _LINE.match(line)
        if not m:
            return
        pid, rest = int(m.group(1)), m.group(2)
        self.trace.lines += 1
        if rest.startswith("+++"):
            em = _EXIT.match(rest)
            if em:
                self.trace.exit_codes[pid] = em.group(2) or em.group(3) or "?"
            return
        if rest.startswith("---"):
            return
        if rest.endswith("<unfinished ...>"):
            self.pending[pid] = rest[: -len("<unfinished ...>")].rstrip()
            call = _CALL.match(rest)
            if call and call.group(1) in EXEC_CALLS:
                # The exec path, in case the call resumes in another pid (a thread's exec).
                self.pending[-1] = self.pending[pid]
            return
        rm = _RESUMED.match(rest)
        if rm:
            head = self.pending.pop(pid, None)
            if head is None and rm.group(1) in EXEC_CALLS:
                head = self.pending.get(-1)
            if head is None:
                head = f"{rm.group(1)}("
            rest = head + rm.group(2)
        self._complete(pid, rest)

    def _complete(self, pid: int, text: str) -> None:
        cm = _CALL.match(text)
        if not cm:
            return
        name, body = cm.group(1), cm.group(2)
        found = list(_RESULT.finditer(body))
        res = found[-1] if found else None
        if res is None:
            return
        result, errno = res.group(1), res.group(4)
        if res.group(3):
            # --pidns-translation: the child's pid as strace (and its line prefixes) see it.
            result = res.group(3)
        args = _split_args(body[: res.start()])
        ok = result not in ("?",) and not result.startswith("-")
        if self.is_active(pid):
            # The app's syscalls only (the seccomp profile's allowlist), not the runtime's.
            self.trace.syscalls.add(name)
        if name in ("clone", "clone3", "fork", "vfork") and ok and result.isdigit():
            child = int(result)
            self.cwd.setdefault(child, self.cwd.get(pid, self.initial_cwd))
            if self.is_active(pid) and child not in self.active:
                # The child may have run before its parent's clone returned: its calls
                # were held back until now.
                self.active.add(child)
                for held in self.held.pop(child, []):
                    self._complete(child, held)
            return
        if name in EXEC_CALLS:
            path = self._path_arg(pid, name, args)
            if ok:
                if path is not None and path in self.runtime_paths:
                    return
                if path is None and not self.is_active(pid):
                    # `execveat(fd, "", AT_EMPTY_PATH)` before any real exec: runc init
                    # re-executing itself from a sealed memfd copy. The runtime starts the
                    # app by path, so a process is never made active by an exec of an fd.
                    return
                if pid not in self.active:
                    self.held.pop(pid, None)  # the runtime's own calls before the exec
                    self._mark_active(pid)
                    self.trace.syscalls.add(name)
                if path is None:
                    return
            if not self.is_active(pid):
                return
            if path:
                if ok:
                    self.trace.found.add(path)
                    self.trace.execs.append(path)
                elif errno == "ENOENT":
                    self.trace.missing.add(path)
                elif errno not in ("ENOTDIR",):
                    self.trace.found.add(path)
            return
        if not self.is_active(pid):
            # Not known yet: a runtime process (dropped at its exec) or a child whose
            # parent's clone has not returned yet (replayed when it does).
            self.held.setdefault(pid, []).append(text)
            return
        if name in ("getdents64", "getdents"):
            if args:
                fm = _FD.match(args[0])
                if fm and fm.group(2):
                    self.trace.listed.add(self._host_to_container(fm.group(2)))
            return
        if name == "fchdir":
            if ok and args:
                fm = _FD.match(args[0])
                if fm and fm.group(2):
                    self.cwd[pid] = self._host_to_container(fm.group(2))
            return
        if name not in PATH_ARGS:
            return
        path = self._path_arg(pid, name, args)
        if path is None:
            return
        if name == "chdir" and ok:
            self.cwd[pid] = path
        if ok:
            self.trace.found.add(path)
        elif errno == "ENOENT":
            self.trace.missing.add(path)
        elif errno in ("EACCES", "EPERM", "ELOOP", "EISDIR", "ENXIO", "EEXIST", "ENOEXEC"):
            # The path exists; the program saw it (and may behave differently without it).
            self.trace.found.add(path)

    def _path_arg(self, pid: int, name: str, args: list[str]) -> str | None:
        dir_i, path_i = PATH_ARGS.get(name, (None, 0))
        if path_i >= len(args):
            return None
        sm = _STRING.fullmatch(args[path_i].split(" ", 1)[0]) or _STRING.match(args[path_i])
        if not sm:
            return None
        path = unescape(sm.group(1))
        if not path:
            return None  # AT_EMPTY_PATH: the fd itself, already counted when opened
        dirfd = args[dir_i] if dir_i is not None and dir_i < len(args) else None
        return self._absolute(pid, dirfd, path)


def parse_file(
    path: str,
    initial_cwd: str = "/",
    *,
    root_prefix: str = "",
    runtime_paths: tuple[str, ...] = (),
) -> Trace:
    parser = StraceParser(initial_cwd, root_prefix=root_prefix, runtime_paths=runtime_paths)
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            parser.feed(line)
    return parser.trace
