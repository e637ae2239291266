"""Reading Debian control data: deb822 paragraphs (Release, Packages, control files) and
relation fields (`Depends: a (>= 1) | b, c:any`).

Packages indexes are ~50 MB of text; `iter_paragraphs` keeps only the fields the caller
names, which is what makes a cold index parse take about a second instead of several.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


def parse_paragraph(text: str) -> dict[str, str]:
    """One deb822 paragraph; continuation lines are joined with newlines."""
    fields: dict[str, str] = {}
    key = ""
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        if line[0] in " \t":
            if key:
                fields[key] += "\n" + line[1:]
            continue
        key, sep, value = line.partition(":")
        if not sep:
            key = ""
            continue
        fields[key] = value.strip()
    return fields


def iter_paragraphs(data: bytes, keep: Iterable[str] | None = None) -> Iterator[dict[str, str]]:
    """Paragraphs of a Packages-style file; with KEEP, only those fields (single-line)."""
    wanted = {k.encode() for k in keep} if keep is not None else None
    for para in data.split(b"\n\n"):
        if not para.strip():
            continue
        if wanted is None:
            yield parse_paragraph(para.decode("utf-8", "replace"))
            continue
        out: dict[str, str] = {}
        for line in para.split(b"\n"):
            if not line or line[0] in (32, 9):
                continue
            key, _, value = line.partition(b":")
            if key in wanted:
                out[key.decode()] = value.strip().decode("utf-8", "replace")
        if out:
            yield out


@dataclass(frozen=True, slots=True)
class Relation:
    """One alternative of a dependency: `name[:arch] [(op version)]`."""

    name: str
    op: str = ""
    version: str = ""
    arch: str = ""  # the ":any" / ":native" / ":amd64" qualifier, if any

    def __str__(self) -> str:
        text = self.name + (f":{self.arch}" if self.arch else "")
        if self.op:
            text += f" ({self.op} {self.version})"
        return text


_REL = re.compile(
    r"^\s*(?P<name>[a-z0-9][a-z0-9+.\-]*)(?::(?P<arch>[a-z0-9\-]+))?\s*"
    r"(?:\(\s*(?P<op><<|<=|=|>=|>>|<|>)\s*(?P<version>[0-9A-Za-z.+~:-]+)\s*\))?\s*"
    r"(?:\[(?P<archs>[^\]]*)\])?\s*(?:<[^>]*>\s*)*$"
)


def parse_relations(text: str, *, arch: str = "") -> list[list[Relation]]:
    """`a (>= 1) | b, c` -> [[a>=1, b], [c]]. Alternatives restricted to other
    architectures (`[!amd64]`, only in source stanzas) are dropped for ARCH."""
    groups: list[list[Relation]] = []
    for clause in text.replace("\n", " ").split(","):
        if not clause.strip():
            continue
        alts: list[Relation] = []
        for alt in clause.split("|"):
            m = _REL.match(alt)
            if m is None:
                raise ValueError(f"cannot parse relation {alt.strip()!r}")
            archs = m.group("archs")
            if archs and arch:
                names = archs.split()
                negated = all(n.startswith("!") for n in names)
                if negated and f"!{arch}" in names:
                    continue
                if not negated and arch not in names:
                    continue
            alts.append(
                Relation(
                    m.group("name"),
                    m.group("op") or "",
                    m.group("version") or "",
                    m.group("arch") or "",
                )
            )
        if alts:
            groups.append(alts)
    return groups


def format_group(group: list[Relation]) -> str:
    return " | ".join(str(r) for r in group)
