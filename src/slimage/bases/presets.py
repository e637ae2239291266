"""The base images slimage can assemble, following distroless's package lists.

Each preset is a stack of package groups; each group becomes one layer (unless a single
layer is asked for). Groups are resolved in order and a package belongs to the first group
that pulls it in, so `cc` shares its lower layers with `nodejs` and `python3`, the way
distroless's images share theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slimage.bases.errors import UnknownPackageError

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Packages whose files distroless takes without their dependencies: their maintainer
# scripts (and so debconf, perl, openssl for c_rehash, awk) never run in an image.
DATA_ONLY = frozenset({"base-files", "netbase", "tzdata", "media-types", "ca-certificates"})

STATIC_GROUP = ("static", ("base-files", "netbase", "tzdata", "media-types", "ca-certificates"))
BASE_GROUP = ("base", ("libc6", "libssl3"))
CC_GROUP = ("cc", ("libgcc-s1", "libgomp1", "libstdc++6"))

# What --debug and the musl preset put on top: one static busybox, and a link per applet.
BUSYBOX_PACKAGE = "busybox-static"
BUSYBOX_APPLETS = (
    "[ [[ ash awk base64 basename cat chgrp chmod chown cksum clear cmp cp cut date dd df "
    "diff dirname du echo egrep env expr false fgrep find free grep gunzip gzip head "
    "hostname id install kill killall less ln ls md5sum mkdir mktemp more mv nc netstat "
    "nslookup od pidof ping printenv printf ps pwd readlink realpath rm rmdir sed seq sh "
    "sha1sum sha256sum sleep sort stat strings tail tar tee test time top touch tr true "
    "tty uname uniq unzip uptime vi wc wget which whoami xargs yes zcat"
).split()


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    groups: tuple[tuple[str, tuple[str, ...]], ...]
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    # "glibc", "musl" or "none": which dynamic loader the image offers (for messages).
    libc: str = "glibc"
    # Busybox applets linked into /bin and /bin/sh present (the Alpine shape), instead of
    # the distroless :debug shape (/busybox/sh, only with --debug).
    busybox_in_bin: bool = False
    root_shell: str = "/sbin/nologin"
    # Extra symlinks (path -> target) the preset adds, e.g. python3 -> python3.11.
    links: tuple[tuple[str, str], ...] = ()

    def roots(self) -> list[str]:
        return [p for _, pkgs in self.groups for p in pkgs]


_ENV = {"PATH": PATH, "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "static",
            "for statically linked binaries: files, users, CA certificates, tzdata",
            (STATIC_GROUP,),
            env=_ENV,
            libc="none",
        ),
        Preset(
            "base",
            "static + glibc and OpenSSL (distroless/base)",
            (STATIC_GROUP, BASE_GROUP),
            env=_ENV,
        ),
        Preset(
            "cc",
            "base + the C++ runtime (libstdc++, libgcc, libgomp)",
            (STATIC_GROUP, BASE_GROUP, CC_GROUP),
            env=_ENV,
        ),
        Preset(
            "nodejs",
            'cc + Debian\'s Node.js; ENTRYPOINT node, so CMD ["index.js"] runs an app',
            (STATIC_GROUP, BASE_GROUP, CC_GROUP, ("nodejs", ("nodejs",))),
            entrypoint=["/usr/bin/node"],
            env=_ENV,
        ),
        Preset(
            "python3",
            "cc + Debian's Python 3.11; ENTRYPOINT python3",
            (
                STATIC_GROUP,
                BASE_GROUP,
                CC_GROUP,
                ("python3", ("python3.11-minimal", "libpython3.11-stdlib")),
            ),
            entrypoint=["/usr/bin/python3.11"],
            env={**_ENV, "LANG": "C.UTF-8"},
            links=(("usr/bin/python3", "python3.11"), ("usr/bin/python", "python3.11")),
        ),
        Preset(
            "musl",
            "musl libc + busybox (an Alpine-like small image with a shell)",
            (STATIC_GROUP, ("musl", ("musl", BUSYBOX_PACKAGE))),
            cmd=["/bin/sh"],
            env={"PATH": PATH},
            libc="musl",
            busybox_in_bin=True,
            root_shell="/bin/sh",
        ),
        Preset(
            "custom",
            "static + the packages given with --packages",
            (STATIC_GROUP,),
            env=_ENV,
        ),
    )
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(n for n in PRESETS if n != "custom")
        raise UnknownPackageError(
            f"unknown base preset {name!r} (known: {known}, and `debian --full`)"
        ) from None
