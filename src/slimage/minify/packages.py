"""`--keep-packages`: a touched file keeps its whole package.

A trace sees only the code paths the probes reached. The commonest way a minified image
breaks later is a module imported lazily, inside a handler nobody probed. Application
packages are small next to the runtime, so when one file of a package was touched we keep
the package directory whole:

- Python: `.../site-packages/<pkg>/` or `.../dist-packages/<pkg>/` (and the package's
  `*.dist-info`/`*.egg-info`, which `importlib.metadata` reads). Byte-code caches
  (`__pycache__`) are not kept for files never touched: the `.py` sources are enough to
  import, and keeping both would double the package.
- Node: `.../node_modules/<pkg>/` or `.../node_modules/@scope/<pkg>/`, the outermost one,
  so a package's own nested `node_modules` comes with it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from slimage.minify.closure import Closure

_PY = re.compile(r"^(.*/(?:site|dist)-packages)/([^/]+)/")
_NODE = re.compile(r"^(.*?/node_modules)/(@[^/]+/[^/]+|[^/]+)/")


@dataclass
class PackageAdditions:
    """What the guard added on top of the trace, for the report."""

    packages: dict[str, int] = field(default_factory=dict)  # package dir -> files added
    bytes_added: int = 0


def package_roots(paths: Iterable[str]) -> dict[str, str]:
    """Package directory -> kind ("python" or "node") for every path inside one."""
    roots: dict[str, str] = {}
    for p in paths:
        m = _NODE.match(p)
        if m:
            roots[f"{m.group(1)}/{m.group(2)}"] = "node"
            continue
        m = _PY.match(p)
        if (
            m
            and m.group(2) != "__pycache__"
            and not m.group(2).endswith((".dist-info", ".egg-info"))
        ):
            roots[f"{m.group(1)}/{m.group(2)}"] = "python"
    return roots


def _dist_info(closure: Closure, pkg_dir: str) -> list[str]:
    site, name = pkg_dir.rsplit("/", 1)
    norm = name.lower().replace("-", "_")
    out: list[str] = []
    try:
        entries = os.listdir(closure.host(site))
    except OSError:
        return out
    for e in sorted(entries):
        if e.endswith((".dist-info", ".egg-info")):
            dist = e.rsplit(".", 1)[0].split("-", 1)[0].lower().replace("-", "_")
            if dist == norm:
                out.append(f"{site}/{e}")
    return out


def keep_packages(closure: Closure, traced: Iterable[str]) -> PackageAdditions:
    """Add the whole package of every traced path; returns what was added."""
    before = set(closure.keep)
    adds = PackageAdditions()
    roots = package_roots(traced)
    for root, kind in sorted(roots.items()):
        if closure.resolve(root) is None:
            continue
        if kind == "python":
            # Caches of files never touched stay out; touched ones are already kept.
            closure.add_tree(root, "keep-packages", skip=[f"{root}/*__pycache__"])
            for extra in _dist_info(closure, root):
                closure.add_tree(extra, "keep-packages")
        else:
            closure.add_tree(root, "keep-packages")
        added = [p for p in closure.keep if p not in before and p.startswith(root + "/")]
        adds.packages[root] = len(added)
        before |= set(added)
    for p in closure.keep:
        if closure.keep[p] == "keep-packages":
            try:
                st = os.lstat(closure.host(p))
            except OSError:
                continue
            if os.path.isfile(closure.host(p)) and not os.path.islink(closure.host(p)):
                adds.bytes_added += st.st_size
    return adds
