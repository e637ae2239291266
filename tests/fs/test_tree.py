"""The merged tree applies changesets as the OCI image spec says, and its byte accounting
adds up (total - merged == recorded waste) on hand-made and random layer stacks."""

from __future__ import annotations

import io
import random
import tarfile

import pytest

from slimage.errors import InvalidImageError, UnsafeArchiveError
from slimage.fs.tree import MergedTree
from slimage.layers.tarscan import scan
from tests.fs.layertar import LayerTar


def build(*layers: bytes, **kw) -> tuple[MergedTree, list[tuple[str, int, int, int]], list[int]]:
    waste: list[tuple[str, int, int, int]] = []
    tree = MergedTree(on_waste=lambda *a: waste.append(a), **kw)
    sizes = []
    for i, data in enumerate(layers):
        tree.begin_layer(f"layer {i}")
        scan(io.BytesIO(data), tree.apply)
        sizes.append(tree.end_layer().size_bytes)
    return tree, waste, sizes


def files(tree: MergedTree) -> dict[str, tuple[str, int]]:
    return {p: (n.kind, n.size) for p, n in tree.walk()}


def test_whiteout_removes_file_and_subtree() -> None:
    l0 = (
        LayerTar()
        .dir("etc")
        .file("etc/a", 10)
        .dir("var/cache")
        .file("var/cache/x", 100)
        .file("var/cache/y", 50)
        .bytes()
    )
    l1 = LayerTar().dir("etc").whiteout("etc/a").dir("var").whiteout("var/cache").bytes()
    tree, waste, sizes = build(l0, l1)
    assert files(tree) == {"etc": ("dir", 0), "var": ("dir", 0)}
    ch = tree.layers[1]
    assert (ch.removed, ch.removed_bytes, ch.added, ch.modified) == (3, 160, 0, 0)
    assert sizes == [160, 0]
    assert sorted(w[0] for w in waste) == ["etc/a", "var/cache/x", "var/cache/y"]
    assert tree.layers[0].wasted_bytes == 160
    assert tree.merged_bytes() == 0


@pytest.mark.parametrize("marker_first", [True, False])
def test_opaque_dir_hides_lower_children_only(marker_first: bool) -> None:
    l0 = (
        LayerTar()
        .dir("d")
        .file("d/old", 30)
        .dir("d/sub")
        .file("d/sub/deep", 7)
        .file("e", 5)
        .bytes()
    )
    l1 = LayerTar().dir("d")
    if marker_first:
        l1.opaque("d").file("d/new", 4).file("d/old", 3)
    else:
        # Whiteouts apply to lower layers whatever the order in the tar.
        l1.file("d/new", 4).file("d/old", 3).opaque("d")
    tree, waste, _ = build(l0, l1.bytes())
    assert files(tree) == {
        "d": ("dir", 0),
        "d/new": ("file", 4),
        "d/old": ("file", 3),
        "e": ("file", 5),
    }
    ch = tree.layers[1]
    # d/old was rewritten: modified, not removed + added; d/sub/deep is gone.
    assert (ch.added, ch.modified, ch.removed, ch.removed_bytes) == (1, 1, 1, 7)
    assert sum(w[1] for w in waste) == 37


def test_hardlinks_count_once_and_survive_their_target() -> None:
    l0 = LayerTar().file("a", 1000).hardlink("b", "a").hardlink("c", "./a").bytes()
    tree, waste, sizes = build(l0)
    assert sizes == [1000]  # a hardlink costs 0 in the layer
    assert tree.merged_bytes() == 1000
    l1 = LayerTar().whiteout("a").bytes()
    tree, waste, sizes = build(l0, l1)
    assert files(tree) == {"b": ("file", 1000), "c": ("file", 1000)}
    assert tree.merged_bytes() == 1000 and waste == []  # still visible through b and c
    l2 = LayerTar().whiteout("b").whiteout("c").bytes()
    tree, waste, sizes = build(l0, l1, l2)
    assert waste == [("c", 1000, 0, 2)] or waste == [("b", 1000, 0, 2)]
    assert sum(sizes) - tree.merged_bytes() == 1000


def test_directory_replaces_file_and_back() -> None:
    l0 = LayerTar().file("x", 10).dir("y").file("y/1", 20).file("y/2", 30).bytes()
    l1 = LayerTar().dir("x").file("x/inner", 5).file("y", 7).bytes()
    tree, waste, sizes = build(l0, l1)
    assert files(tree) == {"x": ("dir", 0), "x/inner": ("file", 5), "y": ("file", 7)}
    ch = tree.layers[1]
    assert ch.removed == 3 and ch.removed_bytes == 60
    assert sum(sizes) - tree.merged_bytes() == sum(w[1] for w in waste) == 60


def test_implicit_parents_and_file_in_the_way() -> None:
    l0 = LayerTar().file("a", 3).bytes()
    l1 = LayerTar().file("a/b/c", 4).bytes()  # no directory entries at all
    tree, _, _ = build(l0, l1)
    assert files(tree) == {"a": ("dir", 0), "a/b": ("dir", 0), "a/b/c": ("file", 4)}


def test_symlinks_count_their_target_length() -> None:
    l0 = LayerTar().symlink("lib", "usr/lib").file("usr/lib/x", 9).bytes()
    tree, _, sizes = build(l0)
    assert sizes == [9 + len("usr/lib")]
    assert tree.merged_bytes() == sizes[0]


def test_escaping_paths_and_dangling_hardlinks_are_refused() -> None:
    with pytest.raises(UnsafeArchiveError, match="escapes"):
        build(LayerTar().file("a/../../etc/passwd", 1).bytes())
    with pytest.raises(UnsafeArchiveError, match="escapes"):
        build(LayerTar().file("a", 1).hardlink("b", "../a").bytes())
    with pytest.raises(InvalidImageError, match="not a file"):
        build(LayerTar().hardlink("b", "missing").bytes())


def test_metadata_is_kept_in_detail_mode() -> None:
    l0 = LayerTar().file("f", b"abc", mode=0o600, uid=7).symlink("s", "f").bytes()
    tree, _, _ = build(l0, hash_content=True)
    f = tree.get("f")
    assert f is not None and f.mode == 0o600 and f.uid == 7
    assert f.digest == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    s = tree.get("/s")
    assert s is not None and s.link == "f"


# ---- random stacks against a naive model of the spec ------------------------------------


def reference(layers: list[bytes]) -> tuple[dict[str, tuple[str, int]], int]:
    """Two-phase apply per layer (whiteouts first, against the lower layers; then the
    entries), on a flat dict: slow and obviously right."""
    fs: dict[str, list] = {}
    next_id = [0]

    def drop(path: str) -> None:
        for p in [p for p in fs if p == path or p.startswith(path + "/")]:
            del fs[p]

    def ensure_parents(path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p in fs and fs[p][0] != "dir":
                drop(p)
            fs.setdefault(p, ["dir", 0, None])

    for data in layers:
        members = list(tarfile.open(fileobj=io.BytesIO(data)))
        for m in members:
            name = m.name.strip("/")
            parent, _, base = name.rpartition("/")
            if base == ".wh..wh..opq":
                for p in [p for p in fs if p.startswith(parent + "/")]:
                    del fs[p]
            elif base.startswith(".wh."):
                drop(f"{parent}/{base[4:]}" if parent else base[4:])
        for m in members:
            name = m.name.strip("/")
            if name.rpartition("/")[2].startswith(".wh."):
                continue
            ensure_parents(name)
            if m.isdir():
                if name in fs and fs[name][0] != "dir":
                    drop(name)
                fs.setdefault(name, ["dir", 0, None])
                continue
            drop(name)
            if m.isfile():
                next_id[0] += 1
                fs[name] = ["file", m.size, next_id[0]]
            elif m.issym():
                next_id[0] += 1
                fs[name] = ["symlink", len(m.linkname.encode()), next_id[0]]
            elif m.islnk():
                t = fs[m.linkname.strip("/")]
                fs[name] = [t[0], t[1], t[2]]
    seen: set[int] = set()
    merged = 0
    for _kind, size, ident in fs.values():
        if ident is not None:
            if ident in seen:
                continue
            seen.add(ident)
        merged += size
    return {p: (v[0], v[1]) for p, v in fs.items()}, merged


def random_layer(rng: random.Random, current: dict[str, tuple[str, int]]) -> bytes:
    t = LayerTar(rng.choice([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT]))
    dirs = ["a", "a/b", "c", "c/d/e"]
    names = ["x", "y", "z"]
    existing = sorted(current)
    # whiteouts first (as Docker writes them), then entries
    victims: list[str] = []
    for _ in range(rng.randint(0, 3)):
        if existing:
            victim = rng.choice(existing)
            # Nested whiteouts (a/.wh.b and a/b/.wh.c) cannot come out of overlayfs; an
            # applier would re-create a/b for the second one, as Docker's does.
            if any(
                v == victim or v.startswith(victim + "/") or victim.startswith(v + "/")
                for v in victims
            ):
                continue
            victims.append(victim)
            if rng.random() < 0.3 and current[victim][0] == "dir":
                t.opaque(victim)
            else:
                t.whiteout(victim)
    added: list[str] = []
    for _ in range(rng.randint(1, 8)):
        d = rng.choice(dirs)
        path = f"{d}/{rng.choice(names)}"
        r = rng.random()
        if r < 0.15:
            t.dir(rng.choice(dirs + [path]))
        elif r < 0.25:
            t.symlink(path, rng.choice(["x", "../y", "/etc/z"]))
        elif r < 0.35 and added:
            target = rng.choice(added)
            if target != path:
                t.hardlink(path, target)
        elif r < 0.4:
            t.file(d, rng.randint(0, 50))  # a file where a directory may be
        else:
            t.file(path, rng.randint(0, 3000))
            added.append(path)
    return t.bytes()


@pytest.mark.parametrize("seed", range(150))
def test_random_stacks_match_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    layers: list[bytes] = []
    current: dict[str, tuple[str, int]] = {}
    for _ in range(rng.randint(2, 6)):
        data = random_layer(rng, current)
        try:
            current, _ = reference([*layers, data])
        except KeyError:
            continue  # a hardlink to a name this layer's entries replaced: skip the layer
        layers.append(data)
    want, want_merged = reference(layers)
    tree, waste, sizes = build(*layers)
    assert files(tree) == want
    assert tree.merged_bytes() == want_merged
    reclaimable = sum(sizes) - tree.merged_bytes()
    assert reclaimable >= 0
    assert reclaimable == sum(w[1] for w in waste) == sum(ch.wasted_bytes for ch in tree.layers)
