"""OCI runtime spec (config.json) for one process, shared by the builder's RUN and `run`.

Both need the same container shape Docker gives: the default capability set, masked
/proc paths, /dev as tmpfs, the host's resolv.conf/hosts, and the host network unless
isolation was asked for (no network namespace means the host's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Docker's default capability set (moby oci/caps/defaults.go).
DEFAULT_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]

MASKED_PATHS = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
]
READONLY_PATHS = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class ProcessSpec:
    """What to run and as whom; the caller has already resolved user names to ids."""

    args: list[str]
    env: list[str]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    terminal: bool = False


def _nofile() -> int:
    """Docker's 1048576, capped by what this process may grant."""
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1048576 if hard == resource.RLIM_INFINITY else min(1048576, hard)


def bind(source: str, target: str, *, readonly: bool = False) -> dict[str, Any]:
    opts = ["rbind", "rprivate"]
    if readonly:
        opts.append("ro")
    return {"destination": target, "type": "bind", "source": source, "options": opts}


def make_spec(
    rootfs: str,
    process: ProcessSpec,
    *,
    network: str = "host",
    hostname: str = "slimage",
    mounts: list[dict[str, Any]] | None = None,
    readonly_rootfs: bool = False,
) -> dict[str, Any]:
    """The config.json of a bundle whose rootfs is already prepared (an overlay mount)."""
    namespaces = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    if network == "none":
        namespaces.append({"type": "network"})
    elif network != "host":
        from slimage.errors import UsageError

        raise UsageError(f"unsupported network mode {network!r} (use host or none)")
    base_mounts: list[dict[str, Any]] = [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        },
    ]
    caps = list(DEFAULT_CAPS)
    proc: dict[str, Any] = {
        "terminal": process.terminal,
        "user": {"uid": process.uid, "gid": process.gid},
        "args": process.args,
        "env": process.env,
        "cwd": process.cwd or "/",
        "capabilities": {
            "bounding": caps,
            "effective": caps if process.uid == 0 else [],
            "permitted": caps if process.uid == 0 else [],
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": _nofile(), "soft": _nofile()}],
        "noNewPrivileges": False,
    }
    if process.additional_gids:
        proc["user"]["additionalGids"] = process.additional_gids
    return {
        "ociVersion": "1.0.2",
        "process": proc,
        "root": {"path": rootfs, "readonly": readonly_rootfs},
        "hostname": hostname,
        "mounts": base_mounts + list(mounts or []),
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        },
    }
