"""Shared knowledge the rules consult: package-manager command shapes and base images.

Kept apart from the rules so that the linter and the fixer agree on what counts as
"an apt-get install", "a pip cache" or "a slim base" — a fix must make exactly the finding
it addresses disappear, or running `fix` twice would not be a no-op.
"""

from __future__ import annotations

import re

from slimage.dockerfile.model import Instruction
from slimage.dockerfile.shell import Script, SimpleCommand

# Options of apt-get/apt that take a separate value (`-o X=Y`, `-t bookworm`).
_APT_VALUE_OPTS = frozenset({"-o", "-t", "-c", "--option", "--target-release", "--config-file"})


def subcommand(argv: list[str], value_opts: frozenset[str] = _APT_VALUE_OPTS) -> tuple[str, int]:
    """First non-option argument after the program, and its index in argv."""
    i = 1
    n = len(argv)
    while i < n:
        word = argv[i]
        if word in value_opts:
            i += 2
            continue
        if word.startswith("-"):
            i += 1
            continue
        return word, i
    return "", -1


def _prog(cmd: SimpleCommand) -> tuple[str, list[str]]:
    argv = cmd.unwrapped()
    if not argv:
        return "", argv
    return argv[0].rsplit("/", 1)[-1], argv


def apt_commands(script: Script, *subs: str) -> list[SimpleCommand]:
    """`apt-get <sub>` / `apt <sub>` commands, for any of the given subcommands."""
    out = []
    for cmd in script.commands:
        prog, argv = _prog(cmd)
        if prog in ("apt-get", "apt") and subcommand(argv)[0] in subs:
            out.append(cmd)
    return out


def has_no_recommends(cmd: SimpleCommand) -> bool:
    for i, word in enumerate(cmd.words):
        if word.startswith("--no-install-recommends"):
            return True
        if "Install-Recommends" in word:
            return True
        if word == "-o" and i + 1 < len(cmd.words) and "Install-Recommends" in cmd.words[i + 1]:
            return True
    return False


def removes(script: Script, prefix: str) -> bool:
    """Does some `rm` in the script delete `prefix` or something below it?"""
    for cmd in script.find("rm"):
        for word in cmd.unwrapped()[1:]:
            if not word.startswith("-") and path_covers(word, prefix):
                return True
    return False


def path_covers(word: str, prefix: str) -> bool:
    word = word.replace("${HOME}", "/root").replace("$HOME", "/root").replace("~", "/root", 1)
    word = word.rstrip("*").rstrip("/")
    target = prefix.rstrip("/")
    return word == target or word.startswith(target + "/") or target.startswith(word + "/")


def cache_mounted(inst: Instruction, *paths: str) -> bool:
    """A `--mount=type=cache|tmpfs` over one of the paths keeps that cache out of the layer."""
    for mount in inst.flag_values("mount"):
        fields: dict[str, str] = {}
        for part in mount.split(","):
            key, _, value = part.partition("=")
            fields[key.strip().lower()] = value.strip()
        if fields.get("type") not in ("cache", "tmpfs"):
            continue
        target = fields.get("target") or fields.get("dst") or fields.get("destination") or ""
        target = target.rstrip("/")
        if not target:
            continue
        for path in paths:
            if path.rstrip("/") == target or path.startswith(target + "/"):
                return True
    return False


def pip_installs(script: Script) -> list[tuple[SimpleCommand, int]]:
    """`pip install ...` commands and the index of the word `install` in `cmd.words`."""
    out = []
    for cmd in script.commands:
        argv = cmd.unwrapped()
        if not argv:
            continue
        offset = cmd.unwrap_index()
        prog = argv[0].rsplit("/", 1)[-1]
        start = -1
        if re.fullmatch(r"pip[0-9.]*", prog):
            start = 1
        elif re.fullmatch(r"python[0-9.]*", prog) and argv[1:3] == ["-m", "pip"]:
            start = 3
        if start < 0:
            continue
        sub, idx = subcommand(argv[start - 1 :], frozenset())
        if sub == "install":
            out.append((cmd, offset + start - 1 + idx))
    return out


def pip_no_cache(cmd: SimpleCommand) -> bool:
    return any(w.startswith("--no-cache-dir") for w in cmd.words)


_NPM_INSTALL = frozenset({"install", "i", "ci", "add", "isntall", "in", "ins", "inst"})


def npm_installs(script: Script) -> list[SimpleCommand]:
    out = []
    for cmd in script.commands:
        prog, argv = _prog(cmd)
        if prog == "npm" and subcommand(argv, frozenset())[0] in _NPM_INSTALL:
            out.append(cmd)
    return out


def yarn_installs(script: Script) -> list[SimpleCommand]:
    out = []
    for cmd in script.commands:
        prog, argv = _prog(cmd)
        if prog == "yarn":
            sub = subcommand(argv, frozenset())[0]
            if sub in ("", "install", "add"):
                out.append(cmd)
    return out


def npm_cache_cleaned(script: Script) -> bool:
    for cmd in script.find("npm"):
        argv = cmd.unwrapped()
        if "cache" in argv and ("clean" in argv or "rm" in argv):
            return True
    return removes(script, "/root/.npm")


# ---------------------------------------------------------------------------------------
# Base images


def split_image(ref: str) -> tuple[str, str, str, str | None]:
    """`registry/path:tag@digest` -> (registry, path, tag, digest); Docker Hub defaults.

    `registry` is "" for Docker Hub references written without one."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    registry = ""
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry = first.lower()
        ref = rest
    tag = ""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref, tag = ref[:colon], ref[colon + 1 :]
    return registry, ref.lower(), tag, digest


_SLIM_TAG = re.compile(r"slim|alpine|distroless|minimal|micro|busybox|nano|chiseled|static")
_SLIM_REPOS = (
    "gcr.io/distroless/",
    "cgr.dev/chainguard/",
    "distroless/",
    "scratch",
    "busybox",
    "alpine",
)

# Full images and what would do instead. Keys are Docker Hub repository names.
FULL_BASES: dict[str, str] = {
    "node": "node:<version>-slim, or gcr.io/distroless/nodejs for the runtime stage",
    "python": "python:<version>-slim, or gcr.io/distroless/python3 for the runtime stage",
    "golang": "gcr.io/distroless/static (or scratch) for the runtime stage",
    "rust": "gcr.io/distroless/cc (or static) for the runtime stage",
    "gcc": "gcr.io/distroless/cc for the runtime stage",
    "openjdk": "a JRE-only base such as eclipse-temurin:<version>-jre or gcr.io/distroless/java",
    "maven": "eclipse-temurin:<version>-jre or gcr.io/distroless/java for the runtime stage",
    "gradle": "eclipse-temurin:<version>-jre or gcr.io/distroless/java for the runtime stage",
    "ruby": "ruby:<version>-slim",
    "buildpack-deps": "debian:<release>-slim",
    "debian": "debian:<release>-slim, or a distroless base",
    "ubuntu": "debian:<release>-slim, or a distroless base",
    "fedora": "a ubi-minimal/micro or distroless base",
    "centos": "a ubi-minimal/micro or distroless base",
    "rockylinux": "rockylinux:<version>-minimal, or a distroless base",
    "almalinux": "almalinux:<version>-minimal, or a distroless base",
    "amazonlinux": "a distroless base",
    "oraclelinux": "oraclelinux:<version>-slim",
    "elixir": "a slim Erlang/OTP release base",
    "haskell": "gcr.io/distroless/cc for the runtime stage",
    "swift": "swift:<version>-slim",
}
# Images whose whole point is a toolchain (compiler or SDK) — never a runtime base.
SDK_BASES = frozenset(
    {"golang", "rust", "gcc", "maven", "gradle", "buildpack-deps", "haskell", "openjdk", "swift"}
)


def hub_repo(path: str) -> str:
    return path[len("library/") :] if path.startswith("library/") else path


def full_base_advice(image: str) -> str | None:
    """What to use instead, when `image` is a full distribution/SDK image; else None."""
    if not image or "$" in image:
        return None
    low = image.lower()
    if any(low.startswith(p) or low == p.rstrip("/") for p in _SLIM_REPOS):
        return None
    registry, path, tag, _ = split_image(image)
    if registry not in ("", "docker.io", "index.docker.io", "registry-1.docker.io"):
        return None
    repo = hub_repo(path)
    if repo not in FULL_BASES:
        return None
    if tag and _SLIM_TAG.search(tag.lower()):
        return None
    return FULL_BASES[repo]


def is_slim_base(image: str) -> bool:
    low = image.lower()
    if any(low.startswith(p) for p in _SLIM_REPOS):
        return True
    tag = split_image(image)[2]
    return bool(tag and _SLIM_TAG.search(tag.lower()))


def runs_as_nonroot_by_default(image: str) -> bool:
    """Bases documented to default to a non-root user (distroless :nonroot, chainguard)."""
    low = image.lower()
    return "nonroot" in low or low.startswith("cgr.dev/chainguard/")


# Packages that are compilers, build systems or headers: they belong in a build stage.
BUILD_PACKAGES = re.compile(
    r"^(build-essential|gcc(-[0-9.]+)?|g\+\+(-[0-9.]+)?|clang(-[0-9.]+)?|make|cmake|"
    r"autoconf|automake|libtool|pkg-config|pkgconf|git|golang(-go)?|rustc|cargo|"
    r"default-jdk(-headless)?|openjdk-[0-9]+-jdk(-headless)?|maven|gradle|musl-dev|"
    r"libc6?-dev|linux-headers|python3?-dev|.*-dev|.*-devel|alpine-sdk|build-base)"
    r"(=.*)?$"
)


def package_args(cmd: SimpleCommand) -> list[str]:
    """Package names of an install command (options and the subcommand dropped)."""
    argv = cmd.unwrapped()
    sub, idx = subcommand(argv)
    if idx < 0:
        return []
    return [w for w in argv[idx + 1 :] if not w.startswith("-")]


def installs_packages(script: Script) -> list[tuple[SimpleCommand, list[str]]]:
    """(command, packages) for apt-get/apt/apk/yum/dnf/microdnf install commands."""
    out = []
    for cmd in script.commands:
        prog, argv = _prog(cmd)
        if prog in ("apt-get", "apt", "yum", "dnf", "microdnf", "zypper"):
            if subcommand(argv)[0] in ("install", "in"):
                out.append((cmd, package_args(cmd)))
        elif (
            prog == "apk" and subcommand(argv, frozenset({"-X", "--repository", "-t"}))[0] == "add"
        ):
            words = argv[1:]
            pkgs = []
            skip = False
            seen_add = False
            for w in words:
                if skip:
                    skip = False
                    continue
                if w in ("-X", "--repository", "-t", "--virtual"):
                    skip = True
                    continue
                if w.startswith("-"):
                    continue
                if not seen_add and w == "add":
                    seen_add = True
                    continue
                pkgs.append(w)
            out.append((cmd, pkgs))
    return out


SECRET_DENY = frozenset(
    {
        "password",
        "passwd",
        "pword",
        "secret",
        "secrets",
        "token",
        "credential",
        "credentials",
        "apikey",
        "passphrase",
        "privatekey",
    }
)
_KEY_QUALIFIERS = frozenset({"api", "private", "secret", "access", "signing", "encryption", "ssh"})
_SECRET_ALLOW = frozenset({"public", "file", "path", "dir", "url", "id", "length", "type", "name"})
_TOKENS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def looks_secret(name: str) -> bool:
    """Does an ARG/ENV name say it holds a secret? (`DB_PASSWORD`, `apiKey`, `NPM_TOKEN`)"""
    tokens = {t.lower() for t in _TOKENS.findall(name)}
    if tokens & _SECRET_ALLOW:
        return False
    if tokens & SECRET_DENY:
        return True
    return "key" in tokens and bool(tokens & _KEY_QUALIFIERS)
