"""Registry references as the distribution API needs them (host, repository path, tag
or digest), kept apart from pull/push so that importing them stays cheap."""

from __future__ import annotations

from dataclasses import dataclass

from slimage.store.refs import Reference, parse_reference

DEFAULT_JOBS = 4


@dataclass(frozen=True)
class RemoteRef:
    """A registry reference split the way the API needs it."""

    ref: Reference

    @classmethod
    def parse(cls, text: str) -> RemoteRef:
        return cls(parse_reference(text.removeprefix("docker://")))

    @property
    def registry(self) -> str:
        return self.ref.registry

    @property
    def repository(self) -> str:
        return self.ref.path

    @property
    def reference(self) -> str:
        return self.ref.digest or self.ref.tag or "latest"

    @property
    def display(self) -> str:
        return str(self.ref) if (self.ref.tag or self.ref.digest) else self.ref.name

    def __str__(self) -> str:
        return self.display
