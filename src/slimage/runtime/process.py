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

from slimage.errors import SlimageError
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
