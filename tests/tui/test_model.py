"""The dive model (snapshots after each layer, statuses, sizes, search) against the Docker
engine's own view of an image built with every kind of layer change (tests/analysis/
layered.py: overwrite, delete, opaque directory, dir->file, file->dir, hardlinks)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimage.analysis.target import open_target
from slimage.tui.model import ADDED, MODIFIED, REMOVED, UNCHANGED, DiveModel
from tests.analysis.layered import LAYERED, RUNTIME_PATHS, exported_fs, layered_archive_path

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def layered(debian_image: str) -> Path:
    return layered_archive_path()


@pytest.fixture(scope="module")
def model(layered: Path) -> DiveModel:
    return DiveModel.load(open_target(str(layered)))


def _layer(model: DiveModel, text: str) -> int:
    return next(i for i in range(model.layers) if text in model.command(i))


def _status(model: DiveModel, layer: int, path: str) -> int:
    parent, _, name = path.rpartition("/")
    found = [e for e in model.children(layer, parent) if e.name == name]
    assert len(found) == 1, (layer, path, found)
    return found[0].status


def test_last_snapshot_is_what_docker_export_shows(model: DiveModel) -> None:
    engine = exported_fs(LAYERED)
    ours = {
        p: n
        for p, n in model.walk(model.layers - 1)
        if not p.startswith(RUNTIME_PATHS[:3]) and p not in RUNTIME_PATHS  # the engine's own
    }
    assert set(ours) == set(engine)
    for path, (kind, size) in engine.items():
        node = ours[path]
        assert node.kind == kind, path
        if kind in ("file", "symlink"):
            assert node.size == size, path
    # A directory's size is the sum of what the engine shows below it.
    data = sum(s for p, (k, s) in engine.items() if p.startswith("data/") and k != "dir")
    assert model.size(model.layers - 1, "data") == data


def test_every_layer_snapshot_replays_the_layers_below(model: DiveModel) -> None:
    """Older snapshots are not disturbed by later layers (copy-on-write)."""
    over = _layer(model, "head -c 120000")
    assert model.snaps[over - 1]["data"]["over.bin"].size == 100000
    assert model.snaps[over]["data"]["over.bin"].size == 120000
    assert _status(model, over, "data/over.bin") == MODIFIED
    assert _status(model, over, "data/keep") == UNCHANGED
    assert _status(model, over - 1, "data/over.bin") == ADDED


def test_statuses_for_deletes_opaque_dirs_and_type_changes(model: DiveModel) -> None:
    rm = _layer(model, "rm -rf /data/gone")
    assert _status(model, rm, "data/gone") == REMOVED
    gone = {e.name: e for e in model.removed_children(rm, "data/gone")}
    assert set(gone) == {"a.bin", "b.bin"} and gone["a.bin"].node.size == 50000
    assert model.removed_size(rm, "data/gone") == 70000
    assert model.mask(rm, "data") & REMOVED

    opq = _layer(model, "rm -rf /data/opq")
    kids = {e.name: e.status for e in model.children(opq, "data/opq")}
    assert kids == {"old1": REMOVED, "sub": REMOVED, "new": ADDED}

    swap = _layer(model, "rm -rf /data/swap")
    assert _status(model, swap, "data/swap") == MODIFIED  # a directory became a file
    tofile = _layer(model, "mkdir /data/tofile")
    assert _status(model, tofile, "data/tofile") == MODIFIED  # and a file a directory
    assert {e.name: e.status for e in model.children(tofile, "data/tofile")} == {"x": ADDED}


def test_layer_only_sizes_and_search(model: DiveModel) -> None:
    over = _layer(model, "head -c 120000")
    assert model.size(over, "data", layer_only=True) == 120000
    assert model.size(over, "usr", layer_only=True) == 0
    rm = _layer(model, "rm -rf /data/gone")
    hits = model.search(rm, "gone/a.bin")
    assert hits == {"data", "data/gone", "data/gone/a.bin"}  # removed paths are found too
    assert "data/gone" not in model.search(rm + 1, "gone")
