"""Turn a Docker `USER` value into uid/gid/groups by reading the image's own passwd/group.

Docker resolves names inside the container's filesystem, never the host's, and numeric
ids need no entry at all; we follow the same rules (moby's user.GetExecUserPath).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from slimage.errors import BuildError


@dataclass
class ResolvedUser:
    uid: int
    gid: int
    home: str = "/"
    additional_gids: list[int] = field(default_factory=list)


def _read_table(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def _inside(rootfs: Path, path: str) -> Path:
    # /etc/passwd may be a symlink in odd images; resolve it against the rootfs, not the host.
    target = rootfs / path.lstrip("/")
    for _ in range(16):
        if not target.is_symlink():
            return target
        link = target.readlink()
        target = rootfs / str(link).lstrip("/") if link.is_absolute() else target.parent / link
    return target


def resolve_user(rootfs: str | Path, spec: str | None) -> ResolvedUser:
    """`spec` is `user`, `uid`, `user:group`, `uid:gid` or empty (root)."""
    root = Path(rootfs)
    spec = (spec or "").strip()
    user_part, _, group_part = spec.partition(":")
    passwd = _read_table(_inside(root, "/etc/passwd"))
    groups = _read_table(_inside(root, "/etc/group"))
    uid = 0
    gid = 0
    home = "/"
    name = "root"
    found = False
    if user_part == "":
        user_part = "0"
    for row in passwd:
        if len(row) < 4:
            continue
        if row[0] == user_part or (user_part.isdigit() and row[2] == user_part):
            name, uid, gid = row[0], int(row[2] or 0), int(row[3] or 0)
            home = row[5] if len(row) > 5 and row[5] else "/"
            found = True
            break
    if not found:
        if user_part.isdigit():
            uid = int(user_part)
            name = ""
        else:
            raise BuildError(f"unable to find user {user_part}: no matching entries in passwd file")
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            for row in groups:
                if len(row) >= 3 and row[0] == group_part:
                    gid = int(row[2] or 0)
                    break
            else:
                raise BuildError(
                    f"unable to find group {group_part}: no matching entries in group file"
                )
    extra: list[int] = []
    if not group_part and name:
        for row in groups:
            if len(row) >= 4 and name in row[3].split(","):
                g = int(row[2] or 0)
                if g != gid and g not in extra:
                    extra.append(g)
    return ResolvedUser(uid, gid, home, extra)
