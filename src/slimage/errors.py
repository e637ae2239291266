"""The one exception tree for errors a user can cause and fix.

Every expected failure (bad input, missing image, refused digest, failed RUN) is a
`SlimageError`. The CLI catches exactly this class, prints its one-line message and exits
non-zero; anything else is a bug and is allowed to show a traceback.
"""

from __future__ import annotations


class SlimageError(Exception):
    """Base of every user-facing error; `str(err)` is the one line the CLI prints."""

    exit_code: int = 1


class UsageError(SlimageError):
    """The command line itself is wrong (bad flag value, missing argument)."""

    exit_code = 2


class NotFoundError(SlimageError):
    """An image, ref, blob, container or file the user named does not exist."""


class ImageNotFoundError(NotFoundError):
    pass


class BlobNotFoundError(NotFoundError):
    pass


class InvalidImageError(SlimageError):
    """An archive, layout, manifest or config is malformed, truncated or inconsistent."""


class DigestMismatchError(InvalidImageError):
    """Content did not hash to the digest that named it; nothing was stored."""


class UnsupportedMediaTypeError(InvalidImageError):
    pass


class UnsafeArchiveError(InvalidImageError):
    """A tar tried to escape its target (.., absolute path, link escape) or carried
    entries that must not be there (devices, duplicates, a decompression bomb)."""


class StoreSpaceError(SlimageError):
    """The disk (or quota) under the store filled up while slimage wrote to it."""


class DockerfileError(SlimageError):
    """A Dockerfile could not be parsed; the message starts with FILE:LINE:COL."""

    def __init__(self, message: str, *, file: str = "Dockerfile", line: int = 0, col: int = 0):
        self.file = file
        self.line = line
        self.col = col
        self.bare_message = message
        where = f"{file}:{line}:{col}" if line else file
        super().__init__(f"{where}: {message}")


class BuildError(SlimageError):
    """A build step failed (a RUN exited non-zero, a COPY source is missing, ...)."""


class RootPathError(BuildError):
    """A path inside an image's rootfs cannot be resolved or created (a link loop, a file
    where a directory must be). A BuildError, since COPY and WORKDIR meet it most."""


class RuntimeToolError(SlimageError):
    """runc/crun, overlayfs or a container operation failed."""


class RegistryError(SlimageError):
    """The registry refused or broke a request in a way retrying will not fix."""


class AuthError(RegistryError):
    pass


class EngineError(SlimageError):
    """The Docker engine was needed (for --load, docker-daemon:) and was not usable."""


class PermissionRequiredError(SlimageError):
    """The operation needs root (overlayfs mounts, runc) and we are not root."""
