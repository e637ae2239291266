"""`slimage analyze` and `slimage diff`: thin commands over slimage.analysis."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from slimage.cli.output import add_json_flag, print_json
from slimage.units import human_size

SIZE_RULE = (
    "Sizes follow Docker's SIZE rule: a layer's size is the bytes of its regular files plus "
    "the UTF-8 length of every symlink target (hardlinks, directories and whiteouts count "
    "0). total_bytes is the sum of the layer sizes; merged_bytes counts the same way over "
    "the final filesystem (a file with several hardlinked names once); reclaimable_bytes = "
    "total - merged = bytes stored for paths a later layer overwrote or deleted; "
    "efficiency = merged / total."
)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "analyze",
        help="show where an image's bytes are and which are wasted (like dive)",
        description="Analyse the layers of IMAGE (a store reference, a `docker save` "
        "archive or an OCI layout directory): per layer what it added, modified and "
        "removed; for the image the bytes wasted on files that later layers overwrote or "
        "deleted. " + SIZE_RULE,
    )
    p.add_argument("image", metavar="IMAGE|ARCHIVE|OCI-DIR")
    add_json_flag(p)
    p.add_argument("--ci", action="store_true", help="check thresholds; exit 1 if one fails")
    p.add_argument(
        "--ci-config",
        metavar="FILE",
        help="thresholds file (.slimage.toml [analyze], or dive's .dive-ci)",
    )
    p.add_argument(
        "--lowest-efficiency",
        metavar="RATIO",
        help="fail below this efficiency (0.9 or 90%%; off disables; default 0.9)",
    )
    p.add_argument(
        "--highest-reclaimable-bytes",
        "--highest-wasted-bytes",
        dest="highest_reclaimable_bytes",
        metavar="SIZE",
        help="fail above this many reclaimable bytes (e.g. 20MB; default: disabled)",
    )
    p.add_argument(
        "--highest-user-reclaimable-percent",
        "--highest-user-wasted-percent",
        dest="highest_user_reclaimable_percent",
        metavar="RATIO",
        help="fail when the non-base layers hide more than this share of the bytes they "
        "add (0.1 or 10%%; default 0.1)",
    )
    p.add_argument(
        "--base",
        type=int,
        metavar="N",
        help="the bottom N layers come from the base image (default: guessed from history: "
        "the layers below the last CMD/ENTRYPOINT step that a layer follows, else the "
        "first layer)",
    )
    p.add_argument("--top", type=int, default=10, metavar="N", help="paths to list (default 10)")
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="do not hash layers read in place from an archive or layout (faster; streamed "
        "layers are always verified). Without it, a file verified before is not hashed again "
        "while its inode, size, mtime and ctime are unchanged",
    )
    p.add_argument("--no-trunc", action="store_true", help="don't truncate CREATED BY")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write a self-contained HTML page: the layers stacked by size, the bytes "
        "wasted, the largest files",
    )
    p.add_argument(
        "-i",
        "--interactive",
        action="store_true",
        help="browse the layers and files interactively (same as `slimage dive IMAGE`)",
    )
    p.set_defaults(func=cmd_analyze)

    d = sub.add_parser(
        "diff",
        help="compare the filesystems of two images",
        description="Files added, removed and changed (content, mode, owner) from image A to "
        "image B, and the size delta. Contents are compared by sha256. " + SIZE_RULE,
    )
    d.add_argument("a", metavar="A")
    d.add_argument("b", metavar="B")
    add_json_flag(d)
    d.add_argument(
        "--no-verify", action="store_true", help="skip layer digest checks where possible"
    )
    d.add_argument(
        "--limit", type=int, default=200, metavar="N", help="paths to print (default 200; 0 = all)"
    )
    d.set_defaults(func=cmd_diff)


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def _trunc(text: str, width: int, no_trunc: bool) -> str:
    text = " ".join(text.split())
    if no_trunc or len(text) <= width:
        return text
    return text[: width - 1] + "…"


def cmd_analyze(args: argparse.Namespace) -> int:
    from slimage.analysis.ci import evaluate, flag_value
    from slimage.analysis.efficiency import analyze_image
    from slimage.errors import UsageError

    flags: dict[str, float | None] = {
        "lowest-efficiency": flag_value("lowest-efficiency", args.lowest_efficiency),
        "highest-reclaimable-bytes": flag_value(
            "highest-reclaimable-bytes", args.highest_reclaimable_bytes
        ),
        "highest-user-reclaimable-percent": flag_value(
            "highest-user-reclaimable-percent", args.highest_user_reclaimable_percent
        ),
    }
    if args.top < 0:
        raise UsageError("--top must be >= 0")
    if args.base is not None and args.base < 0:
        raise UsageError("--base must be >= 0")
    if args.interactive:
        if args.json or args.ci:
            raise UsageError("-i/--interactive cannot be combined with --json or --ci")
        from slimage.cli.dive import cmd_dive

        return cmd_dive(args)
    report = analyze_image(
        _target(args.image),
        verify=not args.no_verify,
        base_layers=args.base,
        top=args.top,
        largest=args.top,
    )
    # Title the output with the name the user typed, not another tag of the same image.
    report.image = args.image
    if args.html:
        from slimage.optimize.report_html import write_analyze_html

        write_analyze_html(report, args.html)
    ci = evaluate(report, flags, args.ci_config) if args.ci else None
    if args.json:
        if ci is not None:
            print_json({**_flatten(report), "ci": _flatten(ci), "ci_passed": ci.passed})
        else:
            print_json(report)
    else:
        _render_analyze(report, args.no_trunc, brief=args.ci)
        if ci is not None:
            _render_ci(ci)
    if ci is not None and not ci.passed:
        return 1
    return 0


def _flatten(report: Any) -> dict[str, Any]:
    from slimage.cli.output import to_jsonable

    data: dict[str, Any] = to_jsonable(report)
    return data


def _console() -> Any:
    from rich.console import Console

    # Piped output is not cut to 80 columns: like `docker history`, lines stay whole.
    wide = None if sys.stdout.isatty() else 240
    return Console(highlight=False, soft_wrap=False, width=wide)


def _render_analyze(r: Any, no_trunc: bool, *, brief: bool) -> None:
    from rich.table import Table

    con = _console()
    con.print(f"[bold]Image:[/] {r.image}  [dim]{r.id[7:19]}[/]")
    width = 60 if not no_trunc else 10_000
    if not brief:
        t = Table(box=None, pad_edge=False, header_style="bold")
        for col in ("LAYER", "SIZE", "ADDED", "MODIFIED", "REMOVED", "WASTED", "CREATED BY"):
            t.add_column(
                col, justify="right" if col not in ("CREATED BY",) else "left", no_wrap=True
            )
        for lay in r.layers:
            t.add_row(
                f"{lay.index}{'*' if lay.base else ''}",
                human_size(lay.size_bytes),
                f"{lay.added} ({human_size(lay.added_bytes)})",
                f"{lay.modified} ({human_size(lay.modified_bytes)})",
                f"{lay.removed} ({human_size(lay.removed_bytes)})",
                human_size(lay.wasted_bytes),
                _trunc(lay.created_by or lay.comment or "<missing>", width, no_trunc),
            )
        con.print(t)
        con.print(f"[dim]* base layers: {r.base_layers} ({r.base_rule})[/]")
    con.print(
        f"[bold]Total:[/] {human_size(r.total_bytes)}   [bold]Merged:[/] {human_size(r.merged_bytes)}"
        f"   [bold]Reclaimable:[/] {human_size(r.reclaimable_bytes)}"
        f" ({_pct(r.reclaimable_bytes / r.total_bytes) if r.total_bytes else '0.00%'})"
        f"   [bold]Efficiency:[/] {_pct(r.efficiency)}"
        f"   [dim]{r.files} files, {r.directories} dirs, read: {r.read_mode}[/]"
    )
    if r.top_reclaimable:
        t = Table(
            title="Top reclaimable paths", title_justify="left", box=None, header_style="bold"
        )
        for col in ("SIZE", "COPIES", "PATH", "WRITTEN BY", "REMOVED BY"):
            t.add_column(
                col, justify="right" if col in ("SIZE", "COPIES") else "left", no_wrap=col != "PATH"
            )
        for p in r.top_reclaimable:
            t.add_row(
                human_size(p.reclaimable_bytes),
                str(p.copies),
                p.path,
                ",".join(str(i) for i in p.written_by),
                ",".join(
                    f"{i}: {_trunc(s, 40, no_trunc)}"
                    for i, s in zip(p.removed_by, p.removed_by_instructions, strict=True)
                ),
            )
        con.print(t)
    if r.largest_files and not brief:
        t = Table(title="Largest files", title_justify="left", box=None, header_style="bold")
        for col in ("SIZE", "LAYER", "PATH"):
            t.add_column(col, justify="right" if col != "PATH" else "left")
        for f in r.largest_files:
            t.add_row(human_size(f.size_bytes), str(f.layer), f.path)
        con.print(t)


def _render_ci(ci: Any) -> None:
    con = _console()
    con.print("[bold]CI results[/]" + (f" [dim]({ci.config})[/]" if ci.config else ""))
    styles = {"PASS": "green", "FAIL": "bold red", "SKIP": "blue"}
    for rule in ci.rules:
        con.print(f"  [{styles[rule.status]}]{rule.status}[/]: {rule.rule}: {rule.message}")
    c = ci.counts
    verdict = "PASS" if ci.passed else "FAIL"
    con.print(
        f"[{styles[verdict]}]Result:{verdict}[/] [Total:{len(ci.rules)}] [Passed:{c['PASS']}] "
        f"[Failed:{c['FAIL']}] [Skipped:{c['SKIP']}]"
    )


def _target(spec: str) -> Any:
    """SPEC opened against the store this invocation names (--root / $SLIMAGE_HOME)."""
    from slimage.analysis.target import open_target
    from slimage.cli.session import open_store

    return open_target(spec, store=open_store())


def cmd_diff(args: argparse.Namespace) -> int:
    from slimage.analysis.diff import diff_images

    report = diff_images(_target(args.a), _target(args.b), verify=not args.no_verify)
    if args.json:
        print_json(report)
        return 0
    con = _console()
    from rich.table import Table

    shown = report.changes if args.limit == 0 else report.changes[: args.limit]
    t = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("", "PATH", "KIND", "BEFORE", "AFTER", "WHAT"):
        t.add_column(col, no_wrap=col != "PATH")
    marks = {"added": "[green]A[/]", "removed": "[red]D[/]", "changed": "[yellow]C[/]"}
    for c in shown:
        t.add_row(
            marks[c.change],
            c.path,
            c.kind,
            human_size(c.size_before) if c.change != "added" else "",
            human_size(c.size_after) if c.change != "removed" else "",
            ",".join(c.what),
        )
    if shown:
        con.print(t)
    if len(shown) < len(report.changes):
        con.print(f"[dim]… {len(report.changes) - len(shown)} more (use --limit 0 or --json)[/]")
    sign = "+" if report.size_delta >= 0 else "-"
    con.print(
        f"[bold]{report.added}[/] added ({human_size(report.added_bytes)}), "
        f"[bold]{report.removed}[/] removed ({human_size(report.removed_bytes)}), "
        f"[bold]{report.changed}[/] changed"
    )
    con.print(
        f"Size: {human_size(report.a.size_bytes)} -> {human_size(report.b.size_bytes)} "
        f"({sign}{human_size(abs(report.size_delta))}); merged filesystem "
        f"{human_size(report.a.merged_bytes)} -> {human_size(report.b.merged_bytes)}"
    )
    sys.stdout.flush()
    return 0
