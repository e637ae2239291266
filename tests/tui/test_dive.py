"""`slimage dive` driven for real: the Textual app under its headless pilot (real keys,
real event loop, real screen), on the seed's vanilla image built by the Docker engine.

Expected sizes come from reading the layer tars with Python's `tarfile`, not from the
code under test."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("textual")

from rich.console import Console  # noqa: E402
from textual.keys import _character_to_key  # noqa: E402

from slimage.analysis.efficiency import analyze_image  # noqa: E402
from slimage.analysis.target import open_target  # noqa: E402
from slimage.tui.app import DiveApp  # noqa: E402
from slimage.tui.model import DiveModel  # noqa: E402
from slimage.units import human_size  # noqa: E402

pytestmark = pytest.mark.docker

SIZE = (150, 50)


@pytest.fixture(scope="module")
def model(vanilla_archive: Path) -> DiveModel:
    return DiveModel.load(open_target(str(vanilla_archive)))


def screen_text(app: DiveApp) -> str:
    """The characters on the app's screen, as a terminal would show them."""
    con = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), record=True)
    con.print(app.screen._compositor.render_update(full=True))
    return con.export_text()


def pane_text(app: DiveApp, selector: str = "#tree") -> str:
    """The screen text inside one widget's region (the tree pane by default)."""
    r = app.query_one(selector).region
    rows = screen_text(app).splitlines()[r.y : r.y + r.height]
    return "\n".join(row[r.x : r.x + r.width] for row in rows)


def line_with(text: str, needle: str) -> str:
    lines = [ln for ln in text.splitlines() if needle in ln]
    assert lines, f"{needle!r} not on the screen:\n{text}"
    return lines[0]


def layer_bytes(archive: Path, index: int, prefix: str) -> int:
    """Bytes (files + symlink target lengths) layer INDEX of a `docker save` archive
    stores under PREFIX, read with tarfile."""
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        member = manifest[0]["Layers"][index]
        inner = tarfile.open(fileobj=outer.extractfile(member))  # type: ignore[arg-type]
        total = 0
        for m in inner:
            name = m.name.lstrip("./")
            if not name.startswith(prefix):
                continue
            if m.isreg():
                total += m.size
            elif m.issym():
                total += len(m.linkname.encode())
        return total


def npm_layer(model: DiveModel) -> int:
    return next(i for i in range(model.layers) if "npm install" in model.command(i))


def run_app(model: DiveModel, script: Callable[[Any, DiveApp], Awaitable[None]]) -> None:
    async def main() -> None:
        app = DiveApp(model)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await script(pilot, app)

    asyncio.run(main())


async def step_to(pilot: Any, app: DiveApp, layer: int) -> None:
    """Walk the layer pane with the arrow keys, as a user would."""
    if app.focused is not app.query_one("#layers"):
        await pilot.press("tab")
    assert app.focused is app.query_one("#layers")
    for _ in range(app.dive.layers):
        if app.at_layer == layer:
            break
        await pilot.press("up" if app.at_layer > layer else "down")
    assert app.at_layer == layer
    while app.at_layer > layer:
        await pilot.press("up")
    while app.at_layer < layer:
        await pilot.press("down")
    await pilot.pause()


async def open_dir(pilot: Any, app: DiveApp, name: str) -> None:
    """Move the tree cursor onto the directory NAME (in the visible rows) and press Space."""
    tree = app.query_one("#tree")
    if app.focused is not tree:
        await pilot.press("tab")
    for _ in range(400):
        node = tree.cursor_node
        if node is not None and node.data is not None and node.data.name == name:
            await pilot.press("space")
            await pilot.pause()
            return
        await pilot.press("down")
    raise AssertionError(f"{name} not reachable in the tree")


def test_npm_install_layer_shows_node_modules_added(
    model: DiveModel, vanilla_archive: Path
) -> None:
    npm = npm_layer(model)
    expected = layer_bytes(vanilla_archive, npm, "app/node_modules/")
    assert expected > 1_000_000

    async def script(pilot: Any, app: DiveApp) -> None:
        await step_to(pilot, app, 0)
        first = screen_text(app)
        assert "app/" not in first  # layer 0 is the base filesystem
        await step_to(pilot, app, npm)
        assert app.at_layer == npm
        text = screen_text(app)
        assert f"Layer {npm} (merged)" in text
        row = next(ln for ln in text.splitlines() if ln.startswith(f" {npm} "))
        assert "npm install" in row and human_size(model.report.layers[npm].size_bytes) in row
        app_line = line_with(text, " app/")
        assert "~" in app_line  # /app existed (WORKDIR) and changed
        await open_dir(pilot, app, "app")
        text = screen_text(app)
        row = line_with(text, "node_modules/")
        assert f"{human_size(expected)} +" in row, row  # added, with its subtree size
        # The files COPY put there one layer before are unchanged at this layer.
        assert "+" not in line_with(text, "index.js")
        # The layer-only view: what this layer wrote, /usr is not part of it.
        await pilot.press("ctrl+l")
        await pilot.pause()
        text = screen_text(app)
        assert "layer alone" in text
        assert " usr/" not in text and "node_modules/" in text
        assert "index.js" not in pane_text(app)

    run_app(model, script)


def test_filters_toggle_added_removed_modified_unchanged(
    model: DiveModel, vanilla_archive: Path
) -> None:
    apt = next(i for i in range(model.layers) if "apt-get" in model.command(i))
    packages = "bookworm_main_binary-amd64_Pack"

    async def script(pilot: Any, app: DiveApp) -> None:
        await step_to(pilot, app, npm_layer(model))
        await open_dir(pilot, app, "app")
        await pilot.press("ctrl+a")  # hide added
        await pilot.pause()
        assert "☐ added" in screen_text(app)
        text = pane_text(app)
        assert "node_modules/" not in text and "package.json" in text
        await pilot.press("ctrl+a")
        await pilot.press("ctrl+u")  # hide unchanged: only what changed stays
        await pilot.pause()
        text = pane_text(app)
        assert "node_modules/" in text and "package.json" not in text
        assert " bin → usr/bin" not in text and " usr/" not in text
        # etc/ stays: the layer rewrote the directory entry itself (its mtime).
        assert "~ etc/" in text
        await pilot.press("ctrl+u")
        await pilot.pause()
        assert " bin → usr/bin" in pane_text(app)

        # The apt layer deletes /var/lib/apt/lists/*: shown as removed, in red, with size.
        await step_to(pilot, app, apt)
        app.apply_filter("var/lib/apt/lists")
        await pilot.pause()
        text = screen_text(app)
        row = line_with(text, packages)
        assert "- " in row and "50.1MB" in row, row
        await pilot.press("ctrl+r")  # hide removed
        await pilot.pause()
        assert packages not in pane_text(app)
        await pilot.press("ctrl+r")
        await pilot.press("ctrl+m")  # hide modified: the changed apt dirs' own rows stay
        await pilot.pause()
        text = screen_text(app)
        assert "☐ modified" in text and packages in text
        await pilot.press("ctrl+m")
        await pilot.press("ctrl+b")  # attributes
        await pilot.pause()
        text = screen_text(app)
        assert re.search(r"drwxr-xr-x +0:0 +\S+ ~ var/", text), text
        assert re.search(r"-rw-r--r-- +0:0 +50.1MB - ", text), text

    run_app(model, script)


def test_search_by_path_shows_the_file_with_its_size(
    model: DiveModel, vanilla_archive: Path
) -> None:
    npm = npm_layer(model)
    expected = layer_bytes(vanilla_archive, npm, "app/node_modules/express/package.json")

    async def script(pilot: Any, app: DiveApp) -> None:
        await step_to(pilot, app, npm)
        await pilot.press("tab", "slash")
        await pilot.press(*(_character_to_key(c) for c in "express/package.json"))
        await pilot.press("enter")
        await pilot.pause()
        text = screen_text(app)
        assert "filter: express/package.json" in text
        row = line_with(pane_text(app), "package.json")
        assert f"{human_size(expected)} + package.json" in row, row
        assert " bin → usr/bin" not in pane_text(app)  # everything else is filtered out
        await pilot.press("escape")
        await pilot.pause()
        # The filter is gone; the tree keeps its place (the cursor on the file found), and
        # the siblings the filter hid are back.
        assert "filter:" not in screen_text(app)
        text = pane_text(app)
        assert "+ package.json" in text and "+ lib/" in text and "History.md" in text

    run_app(model, script)


def test_totals_wasted_view_and_fix_hint(model: DiveModel, vanilla_archive: Path) -> None:
    plain = analyze_image(open_target(str(vanilla_archive)))
    npm = npm_layer(model)

    async def script(pilot: Any, app: DiveApp) -> None:
        await step_to(pilot, app, npm)
        text = screen_text(app)
        assert f"Total {human_size(plain.total_bytes)}" in text
        assert f"Reclaimable {human_size(plain.reclaimable_bytes)}" in text
        assert f"Efficiency {plain.efficiency * 100:.2f}%" in text
        for _ in range(100):  # the hint is computed in a worker thread
            if app.hints is not None:
                break
            await pilot.pause(0.1)
        await pilot.pause()
        text = screen_text(app)
        assert "SL107" in text
        assert "+ RUN npm install && npm cache clean --force" in text
        await pilot.press("w")
        await pilot.pause()
        text = screen_text(app)
        top = plain.top_reclaimable[0]
        row = line_with(text, top.path[:24])
        assert human_size(top.reclaimable_bytes) in row
        written = ", ".join(map(str, top.written_by))
        hidden = f"{top.removed_by[0]}: "
        assert f" {written} " in row and hidden in row, row

    run_app(model, script)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize("argv", [["dive"], ["analyze", "-i"]])
def test_piped_output_is_refused(vanilla_archive: Path, argv: list[str]) -> None:
    res = _cli(*argv, str(vanilla_archive))
    assert res.returncode != 0
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "not a terminal" in lines[0] and "slimage analyze" in lines[0]
    assert "Traceback" not in res.stderr
