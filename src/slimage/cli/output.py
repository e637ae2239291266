"""Small rendering helpers shared by every command module."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """Report models are dataclasses; turn them (recursively) into JSON-ready data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in obj]
    return obj


def print_json(obj: Any, *, compact: bool = False) -> None:
    data = to_jsonable(obj)
    if compact:
        sys.stdout.write(json.dumps(data, separators=(",", ":"), sort_keys=False) + "\n")
    else:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Docker's table layout, for every command: Go's text/tabwriter with minwidth 10 and
    padding 3, the last column bare (so `docker images`-style parsers read ours too)."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    widths = [max(w + 3, 10) for w in widths]
    out = []
    for row in [headers, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        out.append("".join(cells) + row[-1])
    sys.stdout.write("\n".join(out) + "\n")


def add_json_flag(parser: Any) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
