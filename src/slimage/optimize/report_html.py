"""One self-contained HTML page: no script, font, image or style is fetched from anywhere.

The same small renderer draws two pages:

- `optimize_html(report)`: the answer first, the variants as bars of their sizes stacked
  by layer, the table, the surface, the probe answers, the diff from the user's
  Dockerfile to the recommended one, and each variant's largest directories;
- `analyze_html(report)`: `slimage analyze --html`, the layers of one image stacked by
  size, with the bytes later layers hid (wasted), the largest files and the paths to
  reclaim: the view dive users look at.

Charts are inline SVG drawn here (no JavaScript), so the page prints, works offline and
stays readable on a phone (tables scroll sideways inside their own box).
"""

from __future__ import annotations

import difflib
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from slimage.units import human_size

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
BASE_GREY = ("#b8bec6", "#a3aab3")

CSS = """
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232a;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:16px}
h1{font-size:1.4em;margin:.2em 0}
h2{font-size:1.1em;margin:1.4em 0 .5em;border-bottom:1px solid #d8dde3;padding-bottom:.2em}
.answer{background:#fff;border-left:5px solid #59a14f;padding:10px 14px;margin:10px 0;border-radius:4px}
.answer.none{border-left-color:#e15759}
.muted{color:#5b6570;font-size:.9em}
.box{overflow-x:auto;background:#fff;border:1px solid #d8dde3;border-radius:4px;margin:6px 0}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{text-align:left;padding:5px 9px;border-bottom:1px solid #eceff2;white-space:nowrap;vertical-align:top}
th{background:#eef1f4;font-weight:600;font-size:.85em;letter-spacing:.02em}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.rec td{background:#eef8ec}
.ok{color:#2f7d32}.failed{color:#c62828}.skipped{color:#8a6d00}
td.why{white-space:normal;min-width:16em}
svg{display:block;width:100%;height:auto}
pre.diff{margin:0;padding:8px 10px;font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;white-space:pre}
pre.diff .add{background:#e6f4e6;display:block}
pre.diff .del{background:#fbe9e9;display:block}
pre.diff .hunk{color:#6a737d;display:block}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:10px}
.grid .box{margin:0}.grid h3{font-size:.95em;margin:0;padding:6px 9px;background:#eef1f4}
@media (max-width:600px){body{font-size:14px}main{padding:8px}th,td{padding:4px 6px}}
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    num: Iterable[int] = (),
    row_attrs: Sequence[str] | None = None,
    raw: bool = False,
    table_id: str = "",
) -> str:
    """An HTML table in a scrolling box; cells are escaped unless RAW."""
    nums = set(num)
    head = "".join(
        f"<th{' class=num' if i in nums else ''}>{esc(h)}</th>" for i, h in enumerate(headers)
    )
    body = []
    for n, row in enumerate(rows):
        attrs = row_attrs[n] if row_attrs and n < len(row_attrs) else ""
        cells = "".join(
            f"<td{' class=num' if i in nums else ''}>{c if raw else esc(c)}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr {attrs}>{cells}</tr>")
    tid = f' id="{esc(table_id)}"' if table_id else ""
    return f'<div class="box"><table{tid}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def stacked_bars(bars: list[tuple[str, list[tuple[int, str, bool]], str]]) -> str:
    """Horizontal bars, one per (label, [(bytes, tooltip, is_base)], right-hand text)."""
    label_w, text_w, bar_w, row_h = 130, 110, 760, 30
    total_w = label_w + bar_w + text_w
    biggest = max((sum(s for s, _, _ in parts) for _, parts, _ in bars), default=0) or 1
    out = [
        f'<svg viewBox="0 0 {total_w} {row_h * len(bars) + 8}" role="img" '
        'aria-label="sizes stacked by layer" xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, parts, right) in enumerate(bars):
        y = 4 + i * row_h
        out.append(
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end" font-size="13">{esc(label)}</text>'
        )
        x = float(label_w)
        for j, (size, tip, is_base) in enumerate(parts):
            w = bar_w * size / biggest
            if w <= 0:
                continue
            color = BASE_GREY[j % 2] if is_base else PALETTE[j % len(PALETTE)]
            out.append(
                f'<rect x="{x:.2f}" y="{y + 3}" width="{max(w, 0.6):.2f}" height="{row_h - 8}" '
                f'fill="{color}" stroke="#fff" stroke-width="0.6"><title>{esc(tip)}</title></rect>'
            )
            x += w
        out.append(f'<text x="{x + 6:.2f}" y="{y + 18}" font-size="13">{esc(right)}</text>')
    out.append("</svg>")
    return "".join(out)


def _diff(a: str, b: str, a_name: str, b_name: str) -> str:
    lines = []
    for line in difflib.unified_diff(
        a.splitlines(), b.splitlines(), fromfile=a_name, tofile=b_name, lineterm=""
    ):
        cls = ""
        if line.startswith("+") and not line.startswith("+++"):
            cls = "add"
        elif line.startswith("-") and not line.startswith("---"):
            cls = "del"
        elif line.startswith("@@"):
            cls = "hunk"
        lines.append(f'<span class="{cls}">{esc(line)}</span>' if cls else esc(line))
    if not lines:
        return '<p class="muted">The recommended Dockerfile is the one you wrote.</p>'
    return '<div class="box"><pre class="diff">' + "\n".join(lines) + "</pre></div>"


def _secs(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:.0f}ms" if v < 1 else f"{v:.1f}s"


def optimize_html(report: Any) -> str:
    """The `slimage optimize --html` page for an OptimizeReport."""
    from slimage.optimize.advise import table as text_table

    rows = report.rows
    parts = [
        f"<h1>slimage optimize: {esc(report.name)}</h1>",
        f'<p class="muted">{esc(report.source)} · {len(rows)} variants · {report.seconds:.1f}s</p>',
        f'<div class="answer{"" if report.recommended else " none"}" id="advice">'
        f"<b>{esc(report.advice)}</b></div>",
    ]
    # Sizes, stacked by layer.
    bars: list[tuple[str, list[tuple[int, str, bool]], str]] = []
    for r in rows:
        if r.measures is None:
            bars.append((r.name, [], f"{r.status}"))
            continue
        layers = [
            (
                layer.size,
                f"layer {i + 1}: {human_size(layer.size)} {layer.created_by[:120]}",
                i < r.measures.base_layers,
            )
            for i, layer in enumerate(r.measures.layers)
        ]
        mark = " ✓" if r.name == report.recommended else ""
        bars.append((r.name, layers, human_size(r.measures.size) + mark))
    parts.append("<h2>Size, stacked by layer</h2>")
    parts.append("<p class=\"muted\">Grey: the base image's layers; colours: the app's.</p>")
    parts.append('<div class="box" id="chart">' + stacked_bars(bars) + "</div>")
    # The table.
    headers, cells = text_table(rows)
    attrs = [
        f'data-variant="{esc(r.name)}" data-status="{esc(r.status)}"'
        + (f' data-size="{r.measures.size}"' if r.measures else "")
        + (' class="rec"' if r.name == report.recommended else "")
        for r in rows
    ]
    parts.append("<h2>Variants</h2>")
    parts.append(table(headers, cells, num=(2, 3, 4), row_attrs=attrs, table_id="variants"))
    notes = [
        (r.name, r.status, r.reason or "; ".join(r.notes)) for r in rows if r.reason or r.notes
    ]
    if notes:
        parts.append(
            table(
                ["VARIANT", "STATUS", "WHY / NOTES"],
                [
                    [
                        esc(a),
                        f'<span class="{esc(b)}">{esc(b)}</span>',
                        f'<span class="why">{esc(c)}</span>',
                    ]
                    for a, b, c in notes
                ],
                raw=True,
                table_id="notes",
            )
        )
    # Surface.
    surf = []
    for r in rows:
        m = r.measures
        if m is None:
            continue
        surf.append(
            [
                r.name,
                ", ".join(m.shells[:3]) + (" …" if len(m.shells) > 3 else "") or "none",
                ", ".join(m.package_managers) or "none",
                str(len(m.setuid)) + (": " + ", ".join(m.setuid[:2]) if m.setuid else ""),
                m.default_user,
                m.compat,
            ]
        )
    parts.append("<h2>Attack surface</h2>")
    parts.append(
        table(
            ["VARIANT", "SHELLS", "PACKAGE MANAGERS", "SETUID", "DEFAULT USER", "COMPAT"],
            surf,
            table_id="surface",
        )
    )
    # Probes.
    prow = []
    for r in rows:
        for p in r.probes:
            prow.append(
                [
                    r.name,
                    p.name,
                    str(p.status if p.status is not None else "-"),
                    p.body_sha256[7:19] if p.body_sha256 else "-",
                    str(p.body_bytes),
                    _secs(p.seconds),
                    "ok" if p.ok else p.error,
                ]
            )
    parts.append("<h2>Probe answers</h2>")
    parts.append(
        table(
            ["VARIANT", "PROBE", "STATUS", "BODY SHA-256", "BYTES", "TIME", "RESULT"],
            prow,
            num=(4,),
            table_id="probes",
        )
        if prow
        else '<p class="muted">No probes ran.</p>'
    )
    # The diff.
    rec = report.row(report.recommended) if report.recommended else None
    parts.append("<h2>Your Dockerfile → the recommended one</h2>")
    if rec is not None and rec.dockerfile and report.original_dockerfile:
        parts.append(
            f'<div id="diff">{_diff(report.original_dockerfile, rec.dockerfile, "Dockerfile", rec.name)}</div>'
        )
    else:
        parts.append('<p class="muted" id="diff">No Dockerfile to compare.</p>')
    # Largest directories.
    grid = []
    for r in rows:
        if r.measures is None:
            continue
        grid.append(
            f"<div><h3>{esc(r.name)} · {esc(human_size(r.measures.size))}</h3>"
            + table(
                ["DIRECTORY", "SIZE"],
                [[d, human_size(s)] for d, s in r.measures.largest_dirs],
                num=(1,),
            )
            + "</div>"
        )
    parts.append("<h2>Largest directories</h2>")
    parts.append('<div class="grid" id="dirs">' + "".join(grid) + "</div>")
    return page(f"slimage optimize: {report.name}", "".join(parts))


def analyze_html(r: Any) -> str:
    """The `slimage analyze --html` page for an EfficiencyReport."""
    parts = [
        f"<h1>slimage analyze: {esc(r.image)}</h1>",
        f'<p class="muted">{esc(r.id[:19])} · {len(r.layers)} layers · {r.files} files</p>',
        f'<div class="answer{"" if r.reclaimable_bytes == 0 else " none"}" id="summary"><b>'
        f"{esc(human_size(r.total_bytes))} in layers, {esc(human_size(r.merged_bytes))} visible: "
        f"{esc(human_size(r.reclaimable_bytes))} wasted on files later layers overwrote or "
        f"deleted (efficiency {r.efficiency * 100:.1f}%).</b></div>",
    ]
    layers = [
        (
            layer.size_bytes,
            f"layer {layer.index + 1}: {human_size(layer.size_bytes)} {layer.created_by[:120]}",
            layer.base,
        )
        for layer in r.layers
    ]
    wasted = [
        (
            layer.wasted_bytes,
            f"layer {layer.index + 1}: {human_size(layer.wasted_bytes)} hidden later",
            False,
        )
        for layer in r.layers
    ]
    parts.append("<h2>Where the bytes are, layer by layer</h2>")
    parts.append(
        '<div class="box" id="chart">'
        + stacked_bars(
            [
                ("stored", layers, human_size(r.total_bytes)),
                ("wasted", wasted, human_size(r.reclaimable_bytes)),
            ]
        )
        + "</div>"
    )
    parts.append(
        table(
            ["LAYER", "SIZE", "ADDED", "MODIFIED", "REMOVED", "WASTED", "BASE", "CREATED BY"],
            [
                [
                    str(layer.index + 1),
                    human_size(layer.size_bytes),
                    str(layer.added),
                    str(layer.modified),
                    str(layer.removed),
                    human_size(layer.wasted_bytes),
                    "yes" if layer.base else "",
                    layer.created_by[:100],
                ]
                for layer in r.layers
            ],
            num=(0, 1, 2, 3, 4, 5),
            row_attrs=[
                f'data-layer="{layer.index + 1}" data-size="{layer.size_bytes}"'
                for layer in r.layers
            ],
            table_id="layers",
        )
    )
    parts.append("<h2>Wasted: paths later layers overwrote or deleted</h2>")
    parts.append(
        table(
            ["PATH", "WASTED", "COPIES", "WRITTEN BY LAYER", "HIDDEN BY LAYER"],
            [
                [
                    p.path,
                    human_size(p.reclaimable_bytes),
                    str(p.copies),
                    ",".join(str(i + 1) for i in p.written_by),
                    ",".join(str(i + 1) for i in p.removed_by),
                ]
                for p in r.top_reclaimable
            ],
            num=(1, 2),
            table_id="wasted",
        )
        if r.top_reclaimable
        else '<p class="muted" id="wasted">Nothing wasted.</p>'
    )
    parts.append("<h2>Largest files</h2>")
    parts.append(
        table(
            ["PATH", "SIZE", "LAYER"],
            [[f.path, human_size(f.size_bytes), str(f.layer + 1)] for f in r.largest_files],
            num=(1, 2),
            table_id="largest",
        )
    )
    return page(f"slimage analyze: {r.image}", "".join(parts))


def _write(path: str, text: str) -> None:
    from slimage.streams import atomic_write

    atomic_write(Path(path), text.encode("utf-8"), mode=0o644)


def write_optimize_html(report: Any, path: str) -> None:
    _write(path, optimize_html(report))


def write_analyze_html(report: Any, path: str) -> None:
    _write(path, analyze_html(report))
