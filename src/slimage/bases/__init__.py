"""Distroless-style base images from Debian packages, without Bazel or a registry.

    from slimage.bases import BaseSpec, make_repository, plan, build
    spec = BaseSpec(preset="nodejs", nonroot=True)
    lock, resolution = plan(spec, make_repository(spec))   # signed index -> Lockfile
    lock.write("nodejs.lock.json")
    result = build(lock, Store(root), tags=["local/nodejs"])   # same lock -> same digest

Modules: `repository` (InRelease + gpgv, verified Packages), `resolver` (Depends,
alternatives, Provides, versions, Essential), `debfile` (.deb reading), `cache` (verified
package cache), `presets`, `rootfs` (what distroless adds), `tarstream` (deterministic
layer emission), `lockfile`, `builder` (plan/build), `full` (`debian --full` via
mmdebstrap/debootstrap).
"""

from __future__ import annotations

from slimage.bases.builder import BaseBuildResult, BaseSpec, build, make_repository, plan
from slimage.bases.lockfile import LockedPackage, Lockfile
from slimage.bases.presets import PRESETS, Preset, get_preset

__all__ = [
    "PRESETS",
    "BaseBuildResult",
    "BaseSpec",
    "LockedPackage",
    "Lockfile",
    "Preset",
    "build",
    "get_preset",
    "make_repository",
    "plan",
]
