"""python-web: the example app `slimage minify` is tested on (stdlib only)."""

__version__ = "1.0"
