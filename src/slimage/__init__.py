"""slimage: build, move, inspect and slim container images without a daemon."""

__version__ = "0.1.0"
