"""The daemonless builder: Dockerfile stages planned, executed under runc on overlayfs,
cached, and committed as an image (see `slimage.build.api.build`)."""

from slimage.build.api import BuildOptions, BuildResult, build

__all__ = ["BuildOptions", "BuildResult", "build"]
