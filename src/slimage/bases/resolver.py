"""Dependency resolution the way a distroless base needs it.

Roots come from a preset or `--packages`. Depends and Pre-Depends are followed (not
Recommends: an image is not an interactive system), alternatives are tried in order, an
alternative already chosen wins, virtual names go through Provides, and version
constraints are checked with Debian ordering. Essential packages (dpkg, bash, coreutils,
...) are assumed by Debian packages but are exactly what a distroless image leaves out, so
they are skipped unless named. Each choice remembers who pulled it in, so a failure can
show the whole chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from slimage.bases.control import Relation, format_group, parse_relations
from slimage.bases.errors import ResolutionError, UnknownPackageError
from slimage.bases.repository import PackageIndex, PackageRecord
from slimage.bases.version import satisfies

_PRIORITY = {"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}


@dataclass
class Resolution:
    """The chosen packages (by name), why each is there, and what was left out."""

    packages: dict[str, PackageRecord] = field(default_factory=dict)
    reasons: dict[str, list[str]] = field(default_factory=dict)  # name -> chain from a root
    skipped_essential: dict[str, list[str]] = field(default_factory=dict)
    excluded: dict[str, list[str]] = field(default_factory=dict)

    def ordered(self) -> list[PackageRecord]:
        return [self.packages[n] for n in sorted(self.packages)]


def _chain_text(chain: list[str]) -> str:
    return " -> ".join(chain)


class Resolver:
    def __init__(
        self,
        index: PackageIndex,
        *,
        exclude: Iterable[str] = (),
        no_deps: Iterable[str] = (),
        pinned: dict[str, str] | None = None,
    ):
        self.index = index
        self.exclude = set(exclude)
        self.no_deps = set(no_deps)
        self.pinned = dict(pinned or {})
        self.explicit: set[str] = set()

    def _provided(self, rel: Relation, chosen: dict[str, PackageRecord]) -> PackageRecord | None:
        """A chosen package that satisfies REL directly or through Provides."""
        rec = chosen.get(rel.name)
        if rec is not None and (not rel.op or satisfies(rec.version, rel.op, rel.version)):
            return rec
        for prov, pversion in self.index.providers(rel.name):
            got = chosen.get(prov.name)
            if got is None or got.version != prov.version:
                continue
            if not rel.op or (pversion and satisfies(pversion, rel.op, rel.version)):
                return got
        return None

    def _candidates(self, rel: Relation) -> list[PackageRecord]:
        out = [
            c
            for c in self.index.candidates(rel.name)
            if not rel.op or satisfies(c.version, rel.op, rel.version)
        ]
        pin = self.pinned.get(rel.name)
        if pin:
            out = [c for c in out if c.version == pin]
        if out:
            return out
        provs = [
            prov
            for prov, pversion in self.index.providers(rel.name)
            if not rel.op or (pversion and satisfies(pversion, rel.op, rel.version))
        ]
        provs.sort(key=lambda r: (_PRIORITY.get(r.priority, 5), r.name))
        return provs

    def _why_not(self, rel: Relation) -> str:
        versions = [c.version for c in self.index.candidates(rel.name)]
        if rel.name in self.exclude:
            return "excluded"
        if versions:
            return f"only {', '.join(versions[:3])} available"
        if self.index.has_provider(rel.name):
            return "no provider has a matching version"
        return f"no such package for {self.index.arch}"

    def resolve(self, roots: Iterable[str], res: Resolution | None = None) -> Resolution:
        """Add ROOTS and their dependencies to RES (a fresh resolution if None); what
        RES already holds satisfies dependencies first, which is how groups stack."""
        res = res if res is not None else Resolution()
        chosen = res.packages
        # (relation group, chain of names that led here)
        queue: list[tuple[list[Relation], list[str]]] = []
        for root in roots:
            name, _, version = root.partition("=")
            rel = Relation(name.strip(), "=" if version else "", version.strip())
            if rel.name not in self.index:
                raise UnknownPackageError(
                    f"package {rel.name!r} not found in the index ({self.index.arch})"
                    + _suggest(rel.name, self.index)
                )
            queue.append(([rel], []))
        explicit = self.explicit
        explicit.update(g[0].name for g, _ in queue)
        while queue:
            group, chain = queue.pop(0)
            if any(self._provided(rel, chosen) for rel in group):
                continue
            picked: PackageRecord | None = None
            picked_rel: Relation | None = None
            for rel in group:
                if rel.name in self.exclude and rel.name not in explicit:
                    res.excluded.setdefault(rel.name, chain)
                    continue
                cands = [
                    c
                    for c in self._candidates(rel)
                    if c.name not in self.exclude or c.name in explicit
                ]
                if cands:
                    picked, picked_rel = cands[0], rel
                    break
            if picked is None or picked_rel is None:
                if all(r.name in self.exclude for r in group):
                    continue  # deliberately left out; recorded in `excluded`
                why = "; ".join(f"{r}: {self._why_not(r)}" for r in group)
                where = _chain_text(chain) if chain else "the requested packages"
                raise ResolutionError(
                    f"cannot satisfy {format_group(group)} needed by {where} ({why})"
                )
            existing = chosen.get(picked.name)
            if existing is not None:
                # The name is taken by a version that does not meet this constraint.
                raise ResolutionError(
                    f"conflict: {_chain_text(chain)} needs {picked_rel}, but "
                    f"{existing.name} {existing.version} was chosen for "
                    f"{_chain_text(res.reasons[existing.name])}"
                )
            if picked.essential and picked.name not in explicit:
                res.skipped_essential.setdefault(picked.name, chain + [picked.name])
                continue
            chosen[picked.name] = picked
            here = chain + [f"{picked.name} {picked.version}" if not chain else picked.name]
            res.reasons[picked.name] = here
            if picked.name in self.no_deps:
                continue
            for text in (picked.pre_depends, picked.depends):
                if not text:
                    continue
                try:
                    groups = parse_relations(text, arch=self.index.arch)
                except ValueError as exc:
                    raise ResolutionError(f"{picked}: {exc}") from None
                for g in groups:
                    queue.append((g, here))
        self._check_conflicts(res)
        return res

    def _check_conflicts(self, res: Resolution) -> None:
        """Conflicts and Breaks among the chosen packages: dpkg would refuse to install
        them together, so an image holding both is not a Debian system we can vouch for."""
        chosen = res.packages
        for rec in chosen.values():
            if not rec.conflicts:
                continue
            try:
                groups = parse_relations(rec.conflicts, arch=self.index.arch)
            except ValueError:
                continue
            for group in groups:
                for rel in group:
                    other = self._provided(rel, chosen)
                    if other is None or other.name == rec.name:
                        continue
                    raise ResolutionError(
                        f"{rec.name} {rec.version} conflicts with {other.name} {other.version} "
                        f"({rel}); {other.name} is there for "
                        f"{_chain_text(res.reasons.get(other.name, [other.name]))}; "
                        "leave one out with --exclude"
                    )


def _suggest(name: str, index: PackageIndex) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(index.packages), n=3, cutoff=0.75)
    return f"; did you mean {', '.join(close)}?" if close else ""
