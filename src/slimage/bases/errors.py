"""Errors of the Debian base builder; all are `SlimageError`s so the CLI prints one line."""

from __future__ import annotations

from slimage.errors import InvalidImageError, NotFoundError, SlimageError


class BaseBuildError(SlimageError):
    """Assembling a base failed for a reason the user can act on."""


class RepositoryError(BaseBuildError):
    """The mirror could not be reached or served something unusable."""


class SignatureError(RepositoryError):
    """InRelease did not verify against the keyring: nothing from that mirror is trusted."""


class HashMismatchError(RepositoryError):
    """A Packages index or a .deb did not hash to what the signed metadata says."""


class UnknownPackageError(NotFoundError, BaseBuildError):
    """A package or preset name that the index or the preset table does not know."""


class ResolutionError(BaseBuildError):
    """Dependencies cannot be satisfied; the message carries the chain that led there."""


class DebFormatError(InvalidImageError, BaseBuildError):
    """A .deb is truncated or malformed (bad ar member, bad data.tar)."""
