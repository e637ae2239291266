"""The recommendation and the table: the article's conclusion for the user's own app.

`--prefer` picks what to optimise for:

- `safest` (the default): the smallest variant with no shell and no package manager that
  passes every probe (the article's case for distroless);
- `smallest`: the smallest variant that passes every probe;
- `debuggable`: the smallest passing variant that still has a shell to exec into.

The advice says in one line why, and what the user gives up with that choice.
"""

from __future__ import annotations

from typing import Any

from slimage.errors import UsageError
from slimage.units import human_size

PREFER = ("safest", "smallest", "debuggable")


def _passing(rows: list[Any]) -> list[Any]:
    return [r for r in rows if r.status == "ok" and r.measures is not None]


def _bare(r: Any) -> bool:
    return not r.measures.shells and not r.measures.package_managers


def choose(rows: list[Any], prefer: str) -> tuple[Any | None, str]:
    """(the recommended row or None, why not the preferred kind when it had to fall back)."""
    if prefer not in PREFER:
        raise UsageError(f"--prefer {prefer!r}: use one of {', '.join(PREFER)}")
    ok = sorted(_passing(rows), key=lambda r: (r.measures.size, r.name))
    if not ok:
        return None, ""
    if prefer == "smallest":
        return ok[0], ""
    if prefer == "safest":
        bare = [r for r in ok if _bare(r)]
        if bare:
            return bare[0], ""
        return ok[0], "no passing variant is free of shells and package managers"
    shelled = [r for r in ok if r.measures.shells]
    if shelled:
        return shelled[0], ""
    return ok[0], "no passing variant has a shell"


def gives_up(r: Any, preset: str) -> str:
    """What the user loses with row R, in a few words."""
    m = r.measures
    lost: list[str] = []
    if not m.shells:
        debug = (
            f" (use `slimage base build {preset} --debug` for a busybox shell)" if preset else ""
        )
        lost.append("no shell to exec into" + debug)
    if not m.package_managers:
        lost.append("no package manager at run time")
    if r.name == "minified":
        lost.append("files the probes never reached are gone: re-run when the app changes")
    if m.shells:
        lost.append(f"a shell ({m.shells[0]}) stays for attackers too")
    return "; ".join(lost)


def advice(rows: list[Any], prefer: str, preset: str) -> tuple[Any | None, str]:
    """(recommended row, the one line of advice)."""
    rec, fallback = choose(rows, prefer)
    if rec is None:
        return None, "No variant passed its probes: nothing to recommend (see the reasons above)."
    base = next((r for r in rows if r.name == "as-written" and r.measures), None)
    m = rec.measures
    size = human_size(m.size)
    rel = ""
    if base is not None and base is not rec and m.size:
        rel = f", {base.measures.size / m.size:.1f}x smaller than as-written's {human_size(base.measures.size)}"
    why = {
        "safest": "the smallest that passes every probe with no shell and no package manager",
        "smallest": "the smallest that passes every probe",
        "debuggable": "the smallest that passes every probe and keeps a shell",
    }[prefer]
    if fallback:
        why = f"{fallback}; this is the smallest that passes every probe"
    return (
        rec,
        f"Use {rec.name} ({size}{rel}): {why}. You give up: {gives_up(rec, preset) or 'nothing measured here'}.",
    )


def _probe_cell(r: Any) -> str:
    if r.status == "skipped":
        return "-"
    if not r.probes:
        return "FAILED" if r.status == "failed" else "none"
    good = sum(1 for p in r.probes if p.ok)
    return (
        f"{good}/{len(r.probes)} ok" if r.status != "failed" else f"FAILED {good}/{len(r.probes)}"
    )


def table(rows: list[Any]) -> tuple[list[str], list[list[str]]]:
    """Docker's column style: upper-case headers, SI sizes (human_size)."""
    headers = [
        "VARIANT",
        "IMAGE",
        "SIZE",
        "LAYERS",
        "FILES",
        "SHELL",
        "PKG MGR",
        "SETUID",
        "USER",
        "COMPAT",
        "PROBES",
        "FIRST ANSWER",
        "BUILD",
    ]
    out: list[list[str]] = []
    for r in rows:
        m = r.measures
        if m is None:
            out.append([r.name, r.status, *["-"] * 8, _probe_cell(r), "-", _secs(r.build_seconds)])
            continue
        out.append(
            [
                r.name,
                r.tag if r.status != "failed" else "(failed)",
                human_size(m.size),
                str(len(m.layers)),
                str(m.files),
                "yes" if m.shells else "no",
                ",".join(m.package_managers) or "no",
                str(len(m.setuid)),
                m.default_user,
                "ok" if m.compat_ok else "FAIL",
                _probe_cell(r),
                _secs(r.first_answer),
                _secs(r.build_seconds),
            ]
        )
    return headers, out


def _secs(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:.0f}ms" if v < 1 else f"{v:.1f}s"


def render(report: Any) -> str:
    """The text output: the answer first, then the table, then why rows failed."""
    import io

    headers, rows = table(report.rows)
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    buf = io.StringIO()
    buf.write(report.advice + "\n\n")
    for row in [headers, *rows]:
        buf.write("   ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() + "\n")
    notes = [f"{r.name}: {r.status}: {r.reason}" for r in report.rows if r.reason]
    notes += [f"{r.name}: {n}" for r in report.rows for n in r.notes]
    if notes:
        buf.write("\n" + "\n".join(notes) + "\n")
    return buf.getvalue().rstrip("\n")
