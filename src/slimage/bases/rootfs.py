"""The files distroless adds on top of the packages, since no maintainer script runs:
users and groups, the nonroot home, /tmp, os-release, nsswitch.conf, the CA bundle, and
the dpkg status entries scanners read to know what is installed."""

from __future__ import annotations

import re
from collections.abc import Iterable

NONROOT_UID = 65532
NOBODY_UID = 65534

_SUITE_VERSION = {"bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14"}

NSSWITCH = """\
passwd:         files
group:          files
shadow:         files
gshadow:        files

hosts:          files dns
networks:       files

protocols:      files
services:       files
ethers:         files
rpc:            files
"""


def passwd(root_shell: str = "/sbin/nologin") -> bytes:
    return (
        f"root:x:0:0:root:/root:{root_shell}\n"
        f"nobody:x:{NOBODY_UID}:{NOBODY_UID}:nobody:/nonexistent:/sbin/nologin\n"
        f"nonroot:x:{NONROOT_UID}:{NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin\n"
    ).encode()


def group() -> bytes:
    return (
        f"root:x:0:\ntty:x:5:\nstaff:x:50:\nnonroot:x:{NONROOT_UID}:\nnogroup:x:{NOBODY_UID}:\n"
    ).encode()


def os_release(suite: str, preset: str) -> bytes:
    base = suite.split("-")[0]
    version = _SUITE_VERSION.get(base, "")
    pretty = f"Debian GNU/Linux {version} ({base})" if version else f"Debian GNU/Linux ({base})"
    lines = [
        f'PRETTY_NAME="slimage {preset} on {pretty}"',
        'NAME="Debian GNU/Linux"',
        'ID="debian"',
    ]
    if version:
        lines += [f'VERSION_ID="{version}"', f'VERSION="{version} ({base})"']
    lines += [f'VERSION_CODENAME="{base}"', 'HOME_URL="https://www.debian.org/"']
    return ("\n".join(lines) + "\n").encode()


_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\r?\n.+?-----END CERTIFICATE-----", re.S)


def pem_certificates(data: bytes) -> list[bytes]:
    """The PEM certificate blocks in DATA (a .crt file or a bundle)."""
    return [m.group(0).replace(b"\r\n", b"\n") for m in _PEM.finditer(data)]


def ca_bundle(package_certs: Iterable[tuple[str, bytes]], extra: Iterable[bytes] = ()) -> bytes:
    """What update-ca-certificates would write: the package's certificates in path order,
    then any extra ones (`--add-ca`), each once."""
    seen: set[bytes] = set()
    out: list[bytes] = []
    for _, data in sorted(package_certs):
        for cert in pem_certificates(data):
            if cert not in seen:
                seen.add(cert)
                out.append(cert)
    for data in extra:
        for cert in pem_certificates(data):
            if cert not in seen:
                seen.add(cert)
                out.append(cert)
    return b"\n".join(out) + (b"\n" if out else b"")


def keep_path(path: str) -> bool:
    """Docs, man pages and lintian overrides are not needed to run anything; copyright
    files stay, for license compliance."""
    if path.startswith(("usr/share/man/", "usr/share/info/", "usr/share/lintian/")):
        return False
    if path in ("usr/share/man", "usr/share/info", "usr/share/lintian"):
        return False
    if path.startswith("usr/share/doc/"):
        rest = path[len("usr/share/doc/") :]
        return "/" not in rest or rest.endswith("/copyright")
    return True
