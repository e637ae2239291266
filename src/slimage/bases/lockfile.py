"""The lockfile: exact package versions, URLs and SHA256s, per layer group.

A lock pins what a build used, the way package-lock.json or apko's lock do. Building from
it needs no index and no signature (the hashes are the trust anchor), and repeats the
image bit for bit: same .debs, same options, same SOURCE_DATE_EPOCH, same digest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slimage.bases.errors import BaseBuildError

LOCK_VERSION = 1


@dataclass
class LockedPackage:
    name: str
    version: str
    architecture: str
    group: str
    url: str
    sha256: str
    size: int

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


@dataclass
class Lockfile:
    preset: str
    arch: str
    suite: str
    sources: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)
    packages: list[LockedPackage] = field(default_factory=list)

    def by_group(self) -> list[tuple[str, list[LockedPackage]]]:
        out: list[tuple[str, list[LockedPackage]]] = []
        for g in self.groups:
            pkgs = sorted((p for p in self.packages if p.group == g), key=lambda p: p.name)
            out.append((g, pkgs))
        return out

    def dumps(self) -> str:
        data = {
            "lockfileVersion": LOCK_VERSION,
            "preset": self.preset,
            "arch": self.arch,
            "suite": self.suite,
            "sources": self.sources,
            "options": self.options,
            "groups": self.groups,
            "packages": [
                asdict(p)
                for p in sorted(self.packages, key=lambda p: (self.groups.index(p.group), p.name))
            ],
        }
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    def write(self, path: str | Path) -> None:
        from slimage.bases.fetch import atomic_write

        atomic_write(Path(path), self.dumps().encode())

    @classmethod
    def load(cls, path: str | Path) -> Lockfile:
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise BaseBuildError(f"{p}: no such lockfile") from None
        except (OSError, ValueError) as exc:
            raise BaseBuildError(f"{p}: not a readable lockfile ({exc})") from None
        if not isinstance(data, dict) or data.get("lockfileVersion") != LOCK_VERSION:
            raise BaseBuildError(
                f"{p}: unsupported lockfile (lockfileVersion {LOCK_VERSION} expected)"
            )
        try:
            pkgs = [LockedPackage(**item) for item in data["packages"]]
            lock = cls(
                preset=data["preset"],
                arch=data["arch"],
                suite=data["suite"],
                sources=list(data.get("sources", [])),
                options=dict(data.get("options", {})),
                groups=list(data["groups"]),
                packages=pkgs,
            )
        except (KeyError, TypeError) as exc:
            raise BaseBuildError(f"{p}: malformed lockfile ({exc})") from None
        for pkg in pkgs:
            if pkg.group not in lock.groups:
                raise BaseBuildError(f"{p}: package {pkg.name} is in unknown group {pkg.group!r}")
            if len(pkg.sha256) != 64:
                raise BaseBuildError(f"{p}: package {pkg.name} has no valid sha256")
        return lock
