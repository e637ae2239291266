"""Generate a ~2 GB `docker save` archive (legacy layout) for the analyze benchmark.

    python bench/gen_archive.py OUT.tar [--files 100000] [--scale 1.0] [--seed 1]

The archive is written directly (our own tar writer, no Docker), so it is deterministic and
fast to make. Layers:

0. ADD: FILES files in FILES/100 directories under GROUPS top-level ones (mean ~7 KB),
   plus a symlink and a hardlink per directory
1. RUN chown -R 1000:1000 /data: every file, link and directory of layer 0 again
2. RUN rm -rf: every other top-level directory of /data (half the files, GROUPS/2 whiteouts)
3. COPY: eight 40 MB blobs
4. RUN: rewrites 10% of the remaining files with new content
5. RUN rm -rf DIR && mkdir DIR && ...: 50 opaque directories with new files
6. RUN rm /opt/big/blob0: deletes one big blob

dive reads it with `dive --ci --source docker-archive OUT.tar`; slimage with
`slimage analyze OUT.tar`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

BLOCK = 512
MTIME = 1_700_000_000


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\0" % (width - 1, value)


def header(
    name: str,
    size: int = 0,
    *,
    kind: bytes = b"0",
    mode: int = 0o644,
    uid: int = 0,
    gid: int = 0,
    link: str = "",
) -> bytes:
    """A ustar header (names up to 255 bytes via the prefix field)."""
    raw = name.encode()
    prefix = b""
    if len(raw) > 100:
        cut = raw.rindex(b"/", 0, 156)
        prefix, raw = raw[:cut], raw[cut + 1 :]
    block = bytearray(BLOCK)
    block[0 : len(raw)] = raw
    block[100:108] = _octal(mode, 8)
    block[108:116] = _octal(uid, 8)
    block[116:124] = _octal(gid, 8)
    block[124:136] = _octal(size, 12)
    block[136:148] = _octal(MTIME, 12)
    block[148:156] = b" " * 8
    block[156:157] = kind
    lk = link.encode()
    block[157 : 157 + len(lk)] = lk
    block[257:265] = b"ustar\x0000"
    block[265:269] = b"root"
    block[297:301] = b"root"
    block[345 : 345 + len(prefix)] = prefix
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


class Data:
    """Deterministic file contents: slices of a random pool, varied per file."""

    def __init__(self, seed: int):
        self.pool = random.Random(seed).randbytes(1 << 21)

    def get(self, n: int, salt: int) -> bytes:
        start = (salt * 7919) % (len(self.pool) - 1)
        if n <= len(self.pool) - start:
            return self.pool[start : start + n]
        out = bytearray()
        while len(out) < n:
            out += self.pool[start : start + n - len(out)]
            start = 0
        return bytes(out)


Entry = tuple[str, int, bytes, int, int, int, str, int]  # name,size,kind,mode,uid,gid,link,salt


def layer_size(entries: list[Entry]) -> int:
    return sum(BLOCK + -(-e[1] // BLOCK) * BLOCK for e in entries) + 2 * BLOCK


def write_layer(out, entries: list[Entry], data: Data) -> str:
    """Write the layer tar to OUT; return its sha256 (the diff_id)."""
    h = hashlib.sha256()
    buf = bytearray()
    for name, size, kind, mode, uid, gid, link, salt in entries:
        buf += header(name, size, kind=kind, mode=mode, uid=uid, gid=gid, link=link)
        if size:
            buf += data.get(size, salt)
            buf += bytes(-size % BLOCK)
        if len(buf) > 1 << 22:
            h.update(buf)
            out.write(buf)
            buf = bytearray()
    buf += bytes(2 * BLOCK)
    h.update(buf)
    out.write(buf)
    return "sha256:" + h.hexdigest()


def plan(files: int, scale: float, seed: int, groups: int = 100) -> list[tuple[str, list[Entry]]]:
    rng = random.Random(seed)
    ndirs = max(1, files // 100)
    per = files // ndirs

    def fsize() -> int:
        r = rng.random()
        if r < 0.5:
            return int(rng.randint(100, 4000) * scale)
        if r < 0.9:
            return int(rng.randint(4000, 12000) * scale)
        return int(rng.randint(12000, 40000) * scale)

    groups = max(2, min(groups, ndirs))

    def group(d: int) -> int:
        return d * groups // ndirs

    def dn(d: int) -> str:
        # directories spread over GROUPS top-level directories data/gNNNN
        return f"data/g{group(d):04d}/d{d:04d}"

    def paths_of(d: int) -> list[str]:
        return [f"{dn(d)}/f{i:03d}.bin" for i in range(per)]

    paths = [p for d in range(ndirs) for p in paths_of(d)]
    sizes = {p: fsize() for p in paths}
    links = [f"{dn(d)}/link" for d in range(ndirs)]
    hard = [f"{dn(d)}/hard" for d in range(ndirs)]

    def base_entries(uid: int, salt0: int) -> list[Entry]:
        out: list[Entry] = [("data/", 0, b"5", 0o755, uid, uid, "", 0)]
        for d in range(ndirs):
            if d == 0 or group(d) != group(d - 1):
                out.append((f"data/g{group(d):04d}/", 0, b"5", 0o755, uid, uid, "", 0))
            out.append((f"{dn(d)}/", 0, b"5", 0o755, uid, uid, "", 0))
            for i in range(per):
                p = f"{dn(d)}/f{i:03d}.bin"
                out.append((p, sizes[p], b"0", 0o644, uid, uid, "", salt0 + d * per + i))
            out.append((links[d], 0, b"2", 0o777, uid, uid, "f000.bin", 0))
            out.append((hard[d], 0, b"1", 0o644, uid, uid, f"{dn(d)}/f001.bin", 0))
        return out

    layers: list[tuple[str, list[Entry]]] = []
    layers.append(("ADD rootfs.tar /", base_entries(0, 0)))
    layers.append(("RUN /bin/sh -c chown -R 1000:1000 /data", base_entries(1000, 0)))
    rm: list[Entry] = [("data/", 0, b"5", 0o755, 1000, 1000, "", 0)]
    # `rm -rf` of every other top-level directory: half the files, GROUPS/2 whiteouts.
    # dive 0.13.1's time grows with whiteouts x files (see bench/results/analyze.md).
    deleted = {p for d in range(ndirs) if group(d) % 2 == 0 for p in paths_of(d)}
    for g in range(0, groups, 2):
        rm.append((f"data/.wh.g{g:04d}", 0, b"0", 0o644, 0, 0, "", 0))
    layers.append((f"RUN /bin/sh -c rm -rf /data/g*[02468]  # {groups // 2 or 1} dirs", rm))
    big = [("opt/", 0, b"5", 0o755, 0, 0, "", 0), ("opt/big/", 0, b"5", 0o755, 0, 0, "", 0)]
    for i in range(8):
        big.append((f"opt/big/blob{i}", int(40_000_000 * scale), b"0", 0o644, 0, 0, "", 10**7 + i))
    layers.append(("COPY blobs /opt/big/", big))
    alive = [p for p in paths if p not in deleted]
    mod: list[Entry] = [("data/", 0, b"5", 0o755, 1000, 1000, "", 0)]
    seen_dirs: set[str] = set()
    for p in alive[:: max(1, len(alive) // (files // 10 or 1))][: files // 10]:
        parent = p.rpartition("/")[0]
        if parent not in seen_dirs:
            seen_dirs.add(parent)
            mod.append((parent + "/", 0, b"5", 0o755, 1000, 1000, "", 0))
        mod.append((p, sizes[p] + 2000, b"0", 0o644, 1000, 1000, "", 2 * 10**7 + len(mod)))
    layers.append(("RUN /bin/sh -c ./rewrite-configs.sh", mod))
    opq: list[Entry] = [("data/", 0, b"5", 0o755, 1000, 1000, "", 0)]
    survivors = [d for d in range(ndirs) if group(d) % 2 == 1][:50]
    last_group = -1
    for d in survivors:
        dname = dn(d)
        if group(d) != last_group:
            last_group = group(d)
            opq.append((dname.rpartition("/")[0] + "/", 0, b"5", 0o755, 1000, 1000, "", 0))
        opq.append((dname + "/", 0, b"5", 0o755, 0, 0, "", 0))
        opq.append((dname + "/.wh..wh..opq", 0, b"0", 0o644, 0, 0, "", 0))
        for i in range(max(1, per)):
            opq.append((f"{dname}/new{i:03d}.bin", fsize(), b"0", 0o644, 0, 0, "", 3 * 10**7 + i))
    layers.append(("RUN /bin/sh -c for d in ...; do rm -rf $d && mkdir $d && ...; done", opq))
    layers.append(
        (
            "RUN /bin/sh -c rm /opt/big/blob0",
            [
                ("opt/", 0, b"5", 0o755, 0, 0, "", 0),
                ("opt/big/", 0, b"5", 0o755, 0, 0, "", 0),
                ("opt/big/.wh.blob0", 0, b"0", 0o644, 0, 0, "", 0),
            ],
        )
    )
    return layers


def generate(
    out_path: Path, files: int = 100_000, scale: float = 1.0, seed: int = 1, groups: int = 100
) -> Path:
    data = Data(seed)
    layers = plan(files, scale, seed, groups)
    part = out_path.with_name(out_path.name + ".part")
    diff_ids: list[str] = []
    names: list[str] = []
    with open(part, "wb") as out:
        for i, (_created_by, entries) in enumerate(layers):
            lid = hashlib.sha256(f"slimage-bench-layer-{seed}-{i}".encode()).hexdigest()
            names.append(f"{lid}/layer.tar")
            out.write(header(f"{lid}/", kind=b"5", mode=0o755))
            out.write(header(f"{lid}/VERSION", 3))
            out.write(b"1.0" + bytes(BLOCK - 3))
            size = layer_size(entries)
            out.write(header(f"{lid}/layer.tar", size))
            diff_ids.append(write_layer(out, entries, data))
            out.write(bytes(-size % BLOCK))
        history = [
            {"created": "2023-11-14T22:13:20Z", "created_by": created_by}
            for created_by, _ in layers
        ]
        history.insert(
            1,
            {"created": "2023-11-14T22:13:20Z", "created_by": 'CMD ["bash"]', "empty_layer": True},
        )
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": "2023-11-14T22:13:20Z",
            "config": {"Cmd": ["bash"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }
        raw = json.dumps(config, separators=(",", ":")).encode()
        cid = hashlib.sha256(raw).hexdigest()
        manifest = json.dumps(
            [
                {
                    "Config": f"{cid}.json",
                    "RepoTags": ["slimage-bench/generated:latest"],
                    "Layers": names,
                }
            ]
        ).encode()
        for name, payload in ((f"{cid}.json", raw), ("manifest.json", manifest)):
            out.write(header(name, len(payload)))
            out.write(payload + bytes(-len(payload) % BLOCK))
        out.write(bytes(2 * BLOCK))
    part.rename(out_path)
    return out_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply file sizes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--groups",
        type=int,
        default=100,
        help="top-level directories under /data; the delete layer removes every other one "
        "(GROUPS/2 whiteouts; default 100)",
    )
    args = parser.parse_args(argv)
    path = generate(args.out, args.files, args.scale, args.seed, args.groups)
    print(f"{path} {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
