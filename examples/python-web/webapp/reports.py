"""Imported lazily by the /report handler. Uses nothing the server has not loaded already,
so keeping this package is all a minified image needs to serve /report."""


def render(items: dict[int, str]) -> str:
    lines = ["id,name"] + [f"{k},{v}" for k, v in sorted(items.items())]
    return "\n".join(lines) + "\n"
