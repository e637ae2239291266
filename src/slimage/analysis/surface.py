"""Attack surface of an image: what an attacker who gets code execution would find.

Distroless's case is that a shell and a package manager are gifts to an attacker, and that
every executable, setuid bit, file capability, world-writable path, login account and stray
key widens what a compromise can do (OWASP: minimise attack surface). This module counts exactly those
things from the merged filesystem, so images can be put side by side.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import time
from dataclasses import dataclass, field

from slimage.analysis.compat import ImageFiles, read_image
from slimage.image import Image

SHELLS = frozenset(
    {"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox"}
)
# family -> basename patterns of its command-line tools
PACKAGE_MANAGERS: dict[str, tuple[str, ...]] = {
    "apt": ("apt", "apt-get"),
    "dpkg": ("dpkg",),
    "apk": ("apk",),
    "pip": ("pip", "pip3", "pip3.*", "pip2*"),
    "npm": ("npm", "npx"),
    "yarn": ("yarn",),
    "gem": ("gem",),
    "rpm": ("rpm", "yum", "dnf", "microdnf"),
}
NO_LOGIN = frozenset(
    {"", "/sbin/nologin", "/usr/sbin/nologin", "/bin/false", "/usr/bin/false", "/bin/sync"}
)

# Names worth opening to look for secrets (small files only).
CREDENTIAL_NAMES = (
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    "*.key",
    "*.pem",
    "*.p12",
    "*.pfx",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".git-credentials",
    ".pgpass",
    "credentials",
    "config.json",
    ".env",
    "shadow",
)
_PRIVATE_KEY = re.compile(rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----")


@dataclass
class Credential:
    path: str
    kind: str  # private-key, token, password-hash, credentials-file
    detail: str = ""


@dataclass
class SurfaceReport:
    image: str
    shells: list[str] = field(default_factory=list)
    package_managers: dict[str, list[str]] = field(default_factory=dict)
    setuid: list[str] = field(default_factory=list)
    setgid: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)  # files with security.capability
    world_writable: list[str] = field(default_factory=list)
    world_writable_sticky: list[str] = field(default_factory=list)
    executables: int = 0
    default_user: str = "root"
    login_users: list[str] = field(default_factory=list)
    credentials: list[Credential] = field(default_factory=list)
    files: int = 0
    seconds: float = 0.0

    @property
    def has_shell(self) -> bool:
        return bool(self.shells)


def _is_exec_file(files: ImageFiles, path: str) -> bool:
    real = files.resolve(path)
    if real is None:
        return False
    node = files.tree.get(real)
    return node is not None and node.kind == "file" and bool(node.mode & 0o111)


def _want(path: str, size: int) -> bool:
    if path in ("etc/passwd", "etc/shadow"):
        return True
    base = path.rsplit("/", 1)[-1]
    if size > 256 << 10:
        return False
    if base == "config.json" and "/.docker/" not in "/" + path:
        return False
    if base == "credentials" and "/.aws/" not in "/" + path:
        return False
    if path.startswith(("usr/share/", "usr/lib/python3", "usr/include/")) and base not in (
        ".npmrc",
    ):
        # Test fixtures and docs in distribution packages are not secrets of this image.
        return False
    if "/node_modules/" in "/" + path and base.endswith((".pem", ".key")):
        return False  # test certificates shipped inside npm packages
    return any(fnmatch.fnmatchcase(base, pat) for pat in CREDENTIAL_NAMES)


def _credentials(files: ImageFiles) -> list[Credential]:
    found: list[Credential] = []
    for path in sorted(files.contents):
        data = files.contents[path]
        base = path.rsplit("/", 1)[-1]
        if path == "etc/passwd":
            continue
        if path == "etc/shadow":
            users = []
            for line in data.decode("utf-8", "replace").splitlines():
                parts = line.split(":")
                if len(parts) > 1 and parts[1] and parts[1][0] not in "*!":
                    users.append(parts[0])
            if users:
                found.append(
                    Credential("/" + path, "password-hash", "password set for " + ", ".join(users))
                )
            continue
        m = _PRIVATE_KEY.search(data)
        if m:
            found.append(
                Credential(
                    "/" + path,
                    "private-key",
                    (m.group(1).decode().strip() + " private key").strip(),
                )
            )
            continue
        text = data.decode("utf-8", "replace")
        if base == ".npmrc" and ("_authToken" in text or "_auth=" in text or "_password" in text):
            found.append(Credential("/" + path, "token", "npm registry credentials"))
        elif base == ".pypirc" and "password" in text:
            found.append(Credential("/" + path, "token", "PyPI password"))
        elif base in (".netrc", ".git-credentials", ".pgpass") and text.strip():
            found.append(Credential("/" + path, "credentials-file", f"{base} with entries"))
        elif base == "credentials" and "aws_secret_access_key" in text:
            found.append(Credential("/" + path, "credentials-file", "AWS secret access key"))
        elif base == "config.json" and '"auth"' in text:
            found.append(Credential("/" + path, "token", "registry auth in Docker config"))
        elif base == ".env" and re.search(
            r"(?im)^\s*[A-Z0-9_]*(SECRET|TOKEN|PASSWORD|API_KEY)[A-Z0-9_]*\s*=\s*\S", text
        ):
            found.append(Credential("/" + path, "token", "secret-looking variable in .env"))
    return found


def surface_of(files: ImageFiles, name: str) -> SurfaceReport:
    rep = SurfaceReport(image=name)
    tree = files.tree
    shells: set[str] = set()
    managers: dict[str, set[str]] = {}
    for path, node in tree.walk():
        rep.files += node.kind != "dir"
        base = path.rsplit("/", 1)[-1]
        if node.kind == "file":
            if node.mode & 0o111:
                rep.executables += 1
            if node.mode & 0o4000 and node.mode & 0o111:
                rep.setuid.append("/" + path)
            if node.mode & 0o2000 and node.mode & 0o010:
                rep.setgid.append("/" + path)
        if node.kind in ("file", "dir") and node.mode & 0o002:
            if node.kind == "dir" and node.mode & 0o1000:
                rep.world_writable_sticky.append("/" + path)
            else:
                rep.world_writable.append("/" + path)
        if node.kind in ("file", "symlink"):
            if base in SHELLS and _is_exec_file(files, path):
                shells.add("/" + path)
            else:
                for family, patterns in PACKAGE_MANAGERS.items():
                    if any(fnmatch.fnmatchcase(base, p) for p in patterns) and _is_exec_file(
                        files, path
                    ):
                        dirname = posixpath.dirname(path)
                        if dirname.endswith(("bin", "sbin")):
                            managers.setdefault(family, set()).add("/" + path)
    rep.capabilities = sorted(
        "/" + p for p, names in files.xattrs.items() if "security.capability" in names
    )
    rep.shells = sorted(shells)
    rep.package_managers = {k: sorted(v) for k, v in sorted(managers.items())}
    user = (files.config.get("User") or "").strip()
    rep.default_user = user or "root"
    if rep.default_user in ("0", "0:0"):
        rep.default_user = "root (0)"
    passwd = files.contents.get("etc/passwd")
    if passwd is not None:
        for line in passwd.decode("utf-8", "replace").splitlines():
            parts = line.split(":")
            if len(parts) >= 7 and parts[6].strip() not in NO_LOGIN:
                shell = parts[6].strip()
                present = _is_exec_file(files, shell)
                rep.login_users.append(f"{parts[0]} ({shell}{'' if present else ', absent'})")
    rep.credentials = _credentials(files)
    return rep


def analyze_surface(image: Image, name: str = "") -> SurfaceReport:
    t0 = time.monotonic()
    files = read_image(image, elf=None, want=_want, want_limit=256 << 10)
    rep = surface_of(files, name or image.source)
    rep.seconds = round(time.monotonic() - t0, 3)
    return rep


def table_rows(reports: list[SurfaceReport]) -> tuple[list[str], list[list[str]]]:
    """Side by side: one row per measure, one column per image."""

    def short(items: list[str], n: int = 3) -> str:
        if not items:
            return "none"
        text = ", ".join(items[:n])
        return f"{len(items)}: {text}{', …' if len(items) > n else ''}"

    headers = ["", *[r.image for r in reports]]
    rows = [
        ["SHELLS", *[short(r.shells) for r in reports]],
        [
            "PACKAGE MANAGERS",
            *[", ".join(r.package_managers) if r.package_managers else "none" for r in reports],
        ],
        ["SETUID", *[short(r.setuid, 2) for r in reports]],
        ["SETGID", *[short(r.setgid, 2) for r in reports]],
        ["CAPABILITIES", *[short(r.capabilities, 2) for r in reports]],
        ["WORLD-WRITABLE", *[short(r.world_writable, 2) for r in reports]],
        ["STICKY WORLD-WRITABLE", *[short(r.world_writable_sticky, 2) for r in reports]],
        ["EXECUTABLES", *[str(r.executables) for r in reports]],
        ["DEFAULT USER", *[r.default_user for r in reports]],
        ["LOGIN USERS", *[short(r.login_users, 2) for r in reports]],
        ["CREDENTIALS", *[short([c.path for c in r.credentials], 2) for r in reports]],
        ["FILES", *[str(r.files) for r in reports]],
    ]
    return headers, rows
