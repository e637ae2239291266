"""How Docker turns an image config plus `docker run` flags into a process.

Kept apart from the container plumbing because the rules are subtle and worth testing on
their own: `--entrypoint` drops the image's Cmd, arguments replace Cmd, `-e` overrides Env
entries in place, PATH/HOSTNAME/HOME get Docker's defaults, and `--user`/`-w` win over
the image's User/WorkingDir.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimage.errors import SlimageError, UsageError
from slimage.runtime.spec import DEFAULT_PATH

SHELLS = {"sh", "bash", "ash", "dash", "zsh", "ksh", "busybox"}


class NoShellError(SlimageError):
    exit_code = 126


@dataclass
class ProcessPlan:
    args: list[str]
    env: list[str]
    user: str
    workdir: str
    extra: dict[str, Any] = field(default_factory=dict)


def merge_env(base: list[str], overrides: list[str]) -> list[str]:
    out = list(base)
    index = {e.partition("=")[0]: i for i, e in enumerate(out)}
    for item in overrides:
        key, eq, _ = item.partition("=")
        if not eq:
            if key in os.environ:
                item = f"{key}={os.environ[key]}"
            else:
                continue
        if key in index:
            out[index[key]] = item
        else:
            index[key] = len(out)
            out.append(item)
    return out


def plan_process(
    config: dict[str, Any],
    *,
    args: list[str] | None = None,
    entrypoint: str | None = None,
    env: list[str] | None = None,
    user: str | None = None,
    workdir: str | None = None,
    hostname: str = "",
) -> ProcessPlan:
    """Docker's rules (daemon/create.go + container/container.go), no daemon needed."""
    if entrypoint is not None:
        ep = [entrypoint] if entrypoint else []
        cmd = list(args or [])
    else:
        ep = list(config.get("Entrypoint") or [])
        cmd = list(args) if args else list(config.get("Cmd") or [])
    argv = ep + cmd
    if not argv:
        raise SlimageError("No command specified (the image has no Entrypoint or Cmd; give one)")
    base = []
    if not any(e.startswith("PATH=") for e in config.get("Env") or []):
        base.append(f"PATH={DEFAULT_PATH}")
    if hostname:
        base.append(f"HOSTNAME={hostname}")
    base += list(config.get("Env") or [])
    envs = merge_env(base, env or [])
    wd = workdir or config.get("WorkingDir") or "/"
    if not wd.startswith("/"):
        raise SlimageError(
            f"the working directory '{wd}' is invalid, it needs to be an absolute path"
        )
    return ProcessPlan(
        argv, envs, user if user is not None else config.get("User") or "", posixpath.normpath(wd)
    )


def find_executable(rootfs: Path, name: str, env: list[str]) -> str | None:
    """Where NAME would be found inside the container (None if nowhere)."""
    from slimage.fs.rootpath import resolve_in_root

    if "/" in name:
        host = resolve_in_root(str(rootfs), name)
        return name if os.path.isfile(host) else None
    path = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
    for d in path.split(":"):
        if not d:
            continue
        cand = posixpath.join(d, name)
        host = resolve_in_root(str(rootfs), cand)
        if os.path.isfile(host) and os.access(host, os.X_OK):
            return cand
    return None


def check_command(rootfs: Path, argv: list[str], env: list[str], container: str) -> None:
    """Fail early, and helpfully, when the command is not in the image (distroless)."""
    if find_executable(rootfs, argv[0], env) is not None:
        return
    name = posixpath.basename(argv[0])
    if name in SHELLS:
        have_shell = any(find_executable(rootfs, s, env) for s in ("sh", "bash", "ash"))
        if not have_shell:
            hint = ""
            for cand in ("node", "python3", "python", "java"):
                if find_executable(rootfs, cand, env):
                    hint = f"; only programs the image ships can run, e.g. `slimage exec -it {container} {cand}`"
                    break
            raise NoShellError(
                f"this image has no shell ({argv[0]} not found): it is distroless-style, so "
                f"`exec {argv[0]}` cannot work{hint}"
            )
    raise NoShellError(f'exec: "{argv[0]}": executable file not found in $PATH')


# ----------------------------------------------------------------------------- docker-run flags
@dataclass(frozen=True)
class MountSpec:
    """One `-v`/`--mount`/`--tmpfs`: a host directory or file bound in, or a tmpfs."""

    kind: str  # "bind" or "tmpfs"
    target: str
    source: str = ""
    readonly: bool = False
    options: tuple[str, ...] = ()  # tmpfs: size=..., mode=...


@dataclass
class ProcessFlags:
    """The `docker run` flags `slimage run` and `slimage minify` share, parsed once
    (`cli.runtime.process_flags`) and applied by both the same way."""

    env: list[str] = field(default_factory=list)
    entrypoint: str | None = None
    user: str | None = None
    workdir: str | None = None
    mounts: list[MountSpec] = field(default_factory=list)


_TRUE = {"", "1", "true", "yes"}
_FALSE = {"0", "false", "no"}


def _target(flag: str, text: str, target: str) -> str:
    if not target.startswith("/"):
        raise UsageError(f"{flag} {text!r}: the container path must be absolute")
    target = posixpath.normpath(target)
    if target == "/":
        raise UsageError(f"{flag} {text!r}: cannot mount over the container's /")
    return target


def _bind_source(flag: str, text: str, source: str) -> str:
    if not source.startswith("/"):
        raise UsageError(
            f"{flag} {text!r}: named volumes are not supported; give an absolute host path"
        )
    if not os.path.exists(source):
        raise UsageError(f"{flag} {text!r}: bind source path does not exist: {source}")
    return os.path.normpath(source)


def _tmpfs_options(flag: str, text: str, pairs: list[tuple[str, str]]) -> tuple[str, ...]:
    out = []
    for key, value in pairs:
        if key == "size" and value and (value[:-1] if value[-1:] in "kmgKMG" else value).isdigit():
            out.append(f"size={value.lower()}")
        elif key == "mode" and value and all(c in "01234567" for c in value):
            out.append(f"mode={value}")
        else:
            raise UsageError(f"{flag} {text!r}: unsupported tmpfs option {key}={value}")
    return tuple(out)


def parse_volume(text: str) -> MountSpec:
    """`-v SRC:DST[:OPTS]` (OPTS: ro, rw, and the SELinux z/Z, which are ignored)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise UsageError(f"-v {text!r}: expected HOST-PATH:CONTAINER-PATH[:ro]")
    readonly = False
    for opt in parts[2].split(",") if len(parts) == 3 else []:
        if opt == "ro":
            readonly = True
        elif opt not in ("rw", "z", "Z", ""):
            raise UsageError(f"-v {text!r}: unsupported option {opt!r} (use ro or rw)")
    return MountSpec(
        "bind", _target("-v", text, parts[1]), _bind_source("-v", text, parts[0]), readonly
    )


def parse_mount(text: str) -> MountSpec:
    """`--mount type=bind,source=/a,target=/b[,readonly]` or
    `--mount type=tmpfs,target=/b[,tmpfs-size=64m][,tmpfs-mode=1777]`, Docker's keys."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, _, value = item.partition("=")
        key = {"src": "source", "dst": "target", "destination": "target", "ro": "readonly"}.get(
            key.strip(), key.strip()
        )
        if not key or key in fields:
            raise UsageError(f"--mount {text!r}: empty or repeated field {key!r}")
        fields[key] = value.strip()
    kind = fields.pop("type", "volume")
    target = fields.pop("target", "")
    if not target:
        raise UsageError(f"--mount {text!r}: target= is required")
    target = _target("--mount", text, target)
    if kind == "bind":
        source = _bind_source("--mount", text, fields.pop("source", ""))
        ro = fields.pop("readonly", "false").lower()
        if ro not in _TRUE | _FALSE:
            raise UsageError(f"--mount {text!r}: readonly={ro} is not a boolean")
        fields.pop("bind-propagation", None)
        if fields:
            raise UsageError(f"--mount {text!r}: unsupported field {sorted(fields)[0]!r}")
        return MountSpec("bind", target, source, ro in _TRUE)
    if kind == "tmpfs":
        pairs = [(k.removeprefix("tmpfs-"), v) for k, v in fields.items()]
        if any(not k.startswith("tmpfs-") for k in fields):
            bad = next(k for k in fields if not k.startswith("tmpfs-"))
            raise UsageError(f"--mount {text!r}: unsupported field {bad!r} for a tmpfs")
        return MountSpec("tmpfs", target, options=_tmpfs_options("--mount", text, pairs))
    raise UsageError(f"--mount {text!r}: type={kind} is not supported (use bind or tmpfs)")


def parse_tmpfs(text: str) -> MountSpec:
    """`--tmpfs DST[:size=64m,mode=1777]`."""
    target, _, opts = text.partition(":")
    pairs = [(k, v) for k, _, v in (o.partition("=") for o in opts.split(",") if o)]
    return MountSpec(
        "tmpfs", _target("--tmpfs", text, target), options=_tmpfs_options("--tmpfs", text, pairs)
    )


def oci_mounts(mounts: list[MountSpec]) -> list[dict[str, Any]]:
    """The OCI spec's mounts for MOUNTS, with Docker's defaults (a tmpfs is
    nosuid,nodev,noexec and mode 1777 unless given)."""
    out: list[dict[str, Any]] = []
    for m in mounts:
        if m.kind == "bind":
            opts = ["rbind", "rprivate"] + (["ro"] if m.readonly else [])
            out.append(
                {"destination": m.target, "type": "bind", "source": m.source, "options": opts}
            )
        else:
            opts = ["nosuid", "nodev", "noexec", *m.options]
            if not any(o.startswith("mode=") for o in m.options):
                opts.append("mode=1777")
            out.append(
                {"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": opts}
            )
    return out
