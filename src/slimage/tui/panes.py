"""The left pane (layers, image totals, the selected layer's details and fix hint) and the
"wasted" view. Plain Textual widgets fed from the model; they hold no state of their own
beyond what they display."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable, Static

from slimage.tui.hint import Hint
from slimage.tui.model import DiveLoad, DiveModel
from slimage.units import human_size

# What a not-yet-read layer shows in place of its size.
PENDING = "…"


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


def loading_text(load: DiveLoad, done: int) -> Text:
    """The totals line while the layers are read: the image and how far the pass is."""
    text = Text()
    text.append("Image ", "bold")
    text.append(f"{load.image_name}\n")
    text.append(f"Reading layers: {done} of {load.layers} done…", "dim")
    return text


class LayerTable(DataTable[str | Text]):
    """One row per layer: index (* for the base image's), size, the command that made it.
    The rows exist from the start (from the image's history); each size arrives when its
    layer has been read."""

    def __init__(self, source: DiveModel | DiveLoad, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self.source = source

    def on_mount(self) -> None:
        self.add_column("#", key="index")
        self.add_column("Size", key="size")
        self.add_column("Command", key="command")
        src = self.source
        rows: list[tuple[int, bool, int | None]]
        if isinstance(src, DiveModel):
            rows = [(lay.index, lay.base, lay.size_bytes) for lay in src.report.layers]
        else:
            rows = [(i, i < src.base_layers, None) for i in range(src.layers)]
        for index, base, size in rows:
            self.add_row(
                f"{index}{'*' if base else ' '}",
                Text(PENDING if size is None else human_size(size), justify="right"),
                Text(src.command(index), no_wrap=True, overflow="ellipsis"),
                key=str(index),
            )

    def set_size(self, index: int, size: int) -> None:
        self.update_cell(
            str(index), "size", Text(human_size(size), justify="right"), update_width=True
        )


def layer_details(model: DiveModel, index: int, hint: Hint | None, hints_ready: bool) -> Text:
    lay = model.report.layers[index]
    text = _layer_heading(index, lay.diff_id, lay.base, model.command(index))
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


def pending_details(load: DiveLoad, index: int) -> Text:
    """The details pane before the layers are read: what the history already says."""
    diff_id = load.analysis.image.layers[index].diff_id
    text = _layer_heading(index, diff_id, index < load.base_layers, load.command(index))
    text.append("reading the layers…\n", "dim")
    return text


def _layer_heading(index: int, diff_id: str, base: bool, command: str) -> Text:
    text = Text()
    text.append(f"Layer {index}", "bold")
    text.append(f"  {diff_id[7:19]}" if diff_id.startswith("sha256:") else "")
    text.append("  (base image)\n" if base else "\n", "dim")
    text.append(command + "\n\n")
    return text


class Details(Static):
    pass


class WastedTable(DataTable[str | Text]):
    """Reclaimable paths, largest first: what stored them and what hid them. Filled the
    first time it is shown."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", **kwargs)  # type: ignore[arg-type]
        self.filled = False

    def fill(self, model: DiveModel) -> None:
        if self.filled:
            return
        self.filled = True
        self.add_column("Size", key="size")
        self.add_column("Copies", key="copies")
        self.add_column("Written by", key="written")
        self.add_column("Hidden by", key="hidden")
        self.add_column("Path", key="path")
        for p in model.report.top_reclaimable:
            self.add_row(
                Text(human_size(p.reclaimable_bytes), justify="right"),
                str(p.copies),
                ", ".join(str(i) for i in p.written_by),
                Text(", ".join(f"{i}: {model.command(i)[:24]}" for i in p.removed_by)),
                Text(p.path),
            )
