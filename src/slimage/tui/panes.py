"""The left pane (layers, image totals, the selected layer's details and fix hint) and the
"wasted" view. Plain Textual widgets fed from the model; they hold no state of their own
beyond what they display."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable, Static

from slimage.tui.hint import Hint
from slimage.tui.model import DiveModel
from slimage.units import human_size


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def totals_text(model: DiveModel) -> Text:
    r = model.report
    share = r.reclaimable_bytes / r.total_bytes if r.total_bytes else 0.0
    text = Text()
    text.append("Image ", "bold")
    text.append(f"{r.image}\n")
    text.append("Total ", "bold")
    text.append(human_size(r.total_bytes))
    text.append("  Reclaimable ", "bold")
    text.append(f"{human_size(r.reclaimable_bytes)} ({_pct(share)})")
    text.append("  Efficiency ", "bold")
    text.append(_pct(r.efficiency))
    return text


class LayerTable(DataTable[str | Text]):
    """One row per layer: index (* for the base image's), size, the command that made it."""

    def __init__(self, model: DiveModel, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self.dive = model

    def on_mount(self) -> None:
        self.add_column("#", key="index")
        self.add_column("Size", key="size")
        self.add_column("Command", key="command")
        for lay in self.dive.report.layers:
            mark = "*" if lay.base else " "
            self.add_row(
                f"{lay.index}{mark}",
                Text(human_size(lay.size_bytes), justify="right"),
                Text(self.dive.command(lay.index), no_wrap=True, overflow="ellipsis"),
                key=str(lay.index),
            )


def layer_details(model: DiveModel, index: int, hint: Hint | None, hints_ready: bool) -> Text:
    lay = model.report.layers[index]
    text = Text()
    text.append(f"Layer {index}", "bold")
    text.append(f"  {lay.diff_id[7:19]}" if lay.diff_id.startswith("sha256:") else "")
    text.append("  (base image)\n" if lay.base else "\n", "dim")
    text.append(model.command(index) + "\n\n")
    text.append(f"+{lay.added} ({human_size(lay.added_bytes)}) ", "green")
    text.append(f"~{lay.modified} ({human_size(lay.modified_bytes)}) ", "yellow")
    text.append(f"-{lay.removed} ({human_size(lay.removed_bytes)})\n", "red")
    text.append(
        f"wasted later: {human_size(lay.wasted_bytes)}  hides: {human_size(lay.hidden_bytes)}\n"
    )
    if hint is not None:
        text.append("\nlint: ", "bold")
        for rule, severity, message in hint.findings:
            text.append(f"{rule} ({severity}) {message}\n")
        if hint.after or hint.before:
            text.append("slimage fix would change it to:\n", "bold")
            for line in hint.before:
                text.append(f"- {line}\n", "red")
            for line in hint.after:
                text.append(f"+ {line}\n", "green")
        elif not hint.fixes:
            text.append("(no automatic fix for this; see `slimage lint`)\n", "dim")
    elif not hints_ready:
        text.append("\nlint: checking…\n", "dim")
    return text


class Details(Static):
    pass


class WastedTable(DataTable[str | Text]):
    """Reclaimable paths, largest first: what stored them and what hid them."""

    def __init__(self, model: DiveModel, **kwargs: object) -> None:
        super().__init__(cursor_type="row", **kwargs)  # type: ignore[arg-type]
        self.dive = model
        self.filled = False

    def fill(self) -> None:
        if self.filled:
            return
        self.filled = True
        self.add_column("Size", key="size")
        self.add_column("Copies", key="copies")
        self.add_column("Written by", key="written")
        self.add_column("Hidden by", key="hidden")
        self.add_column("Path", key="path")
        for p in self.dive.report.top_reclaimable:
            self.add_row(
                Text(human_size(p.reclaimable_bytes), justify="right"),
                str(p.copies),
                ", ".join(str(i) for i in p.written_by),
                Text(", ".join(f"{i}: {self.dive.command(i)[:24]}" for i in p.removed_by)),
                Text(p.path),
            )
