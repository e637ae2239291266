"""Who owns a piece of on-disk state (a container, a half-extracted layer), and is it alive.

A process killed outright (SIGKILL, OOM, power loss) runs no cleanup, so whatever it had
made stays behind. Each such thing records its owner as `<pid>.<start time>`: the next
command that finds it can tell for sure whether the owner still runs. The start time (from
/proc/<pid>/stat, in clock ticks since boot) defeats pid reuse: a new process that got the
same pid has a different start time. Stdlib only.
"""

from __future__ import annotations

import os


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses: count from the last ')'.
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return None  # a zombie has run its last instruction: it cleans up nothing more
    return fields[19].decode()


def token(pid: int | None = None) -> str:
    """This process's (or PID's) owner token."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}.{_start_time(pid) or 0}"


def alive(owner: str) -> bool:
    """Whether the process that wrote OWNER still runs (a malformed token counts as alive:
    what we cannot attribute, we do not delete)."""
    pid_text, dot, start = owner.partition(".")
    if not dot or not pid_text.isdigit() or not start.isdigit():
        return True
    now = _start_time(int(pid_text))
    return now is not None and now == start
