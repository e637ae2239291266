"""Image references: parsing and normalising names the way Docker shows them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from slimage.errors import UsageError

_NAME_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*(?::[0-9]+)?)"
_NAME_RE = re.compile(rf"^(?:{_DOMAIN}/)?{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Reference:
    """`[registry/]repo[:tag][@digest]`. `repository` keeps the registry part, if any,
    but drops Docker Hub's implicit `docker.io/library/`, as `docker images` does."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """`repo:tag` (the key under which the store keeps the ref)."""
        return f"{self.repository}:{self.tag or 'latest'}"

    @property
    def registry(self) -> str:
        first = self.repository.split("/", 1)[0]
        if "/" in self.repository and ("." in first or ":" in first or first == "localhost"):
            return first
        return "docker.io"

    @property
    def path(self) -> str:
        """The repository path within its registry (`library/x` for Hub's official images)."""
        if self.registry == "docker.io":
            repo = self.repository
            if repo.startswith("docker.io/"):
                repo = repo[len("docker.io/") :]
            return repo if "/" in repo else f"library/{repo}"
        return self.repository.split("/", 1)[1]

    def __str__(self) -> str:
        out = self.repository
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str) -> Reference:
    """Parse an image reference, refusing what Docker would refuse."""
    original = text
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise UsageError(f"invalid reference {original!r}: bad digest")
    tag = None
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        text, tag = text.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise UsageError(f"invalid reference {original!r}: bad tag {tag!r}")
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/"):
        if text.startswith(prefix) and text.count("/") >= 1:
            text = text[len(prefix) :]
            break
    if not text or not _NAME_RE.match(text):
        raise UsageError(
            f"invalid reference format {_shown(original)}: repository name must be lowercase"
        )
    if len(_full_name(text)) > NAME_TOTAL_LENGTH_MAX:
        raise UsageError(
            f"invalid reference format {_shown(original)}: repository name must not be "
            f"more than {NAME_TOTAL_LENGTH_MAX} characters"
        )
    return Reference(text, tag, digest)


# Docker's reference rules (distribution/reference): the fully qualified name, registry
# included, is at most 255 characters.
NAME_TOTAL_LENGTH_MAX = 255


def _full_name(repository: str) -> str:
    """The name as Docker measures it: Hub names get `docker.io/[library/]` in front."""
    first = repository.split("/", 1)[0]
    if "/" in repository and ("." in first or ":" in first or first == "localhost"):
        return repository
    return f"docker.io/{repository}" if "/" in repository else f"docker.io/library/{repository}"


def _shown(text: str) -> str:
    """A reference as quoted in a one-line error: long ones are cut."""
    return repr(text) if len(text) <= 80 else repr(text[:60]) + f"... ({len(text)} characters)"
