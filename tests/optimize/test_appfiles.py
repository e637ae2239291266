"""What the run-time stage keeps, on a real image built from a context whose one layer
looks like what `apt-get install gcc` + `npm install` leave behind: a toolchain package,
a library package nothing uses, an npm cache, and an app ELF file whose library lives in
the toolchain's directory (found through the app's LD_LIBRARY_PATH)."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.optimize.conftest import NODE_BASE

LIBZ = Path("/usr/lib/x86_64-linux-gnu/libz.so.1")
LZ4 = Path("/usr/lib/x86_64-linux-gnu/liblz4.so.1")
TOOL = Path("/usr/bin/zstd")  # links libz.so.1


def _context(tmp: Path) -> Path:
    ctx = tmp / "ctx"
    root = ctx / "rootfs"
    for d in (
        "app/bin",
        "opt/tc/lib",
        "opt/tc/bin",
        "opt/lu",
        "root/.npm/_cacache",
        "var/lib/dpkg/info",
    ):
        (root / d).mkdir(parents=True)
    (root / "app/index.js").write_text("console.log('hi')\n")
    (root / "app/package.json").write_text('{"scripts": {"start": "node index.js"}}\n')
    shutil.copy(TOOL, root / "app/bin/tool")
    shutil.copy(LIBZ.resolve(), root / "opt/tc/lib/libz.so.1")
    (root / "opt/tc/bin/cc1").write_bytes(b"\x7fELF" + b"\0" * 60)
    shutil.copy(LZ4.resolve(), root / "opt/lu/liblz4-unused.so.1")
    (root / "root/.npm/_cacache/blob").write_text("x" * 1000)
    info = root / "var/lib/dpkg/info"
    (info / "gcc-12.list").write_text("/.\n/opt/tc\n/opt/tc/lib/libz.so.1\n/opt/tc/bin/cc1\n")
    (info / "libunused1:amd64.list").write_text("/opt/lu\n/opt/lu/liblz4-unused.so.1\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {NODE_BASE}\n"
        "COPY rootfs/ /\n"
        "ENV LD_LIBRARY_PATH=/opt/tc/lib\n"
        "WORKDIR /app\n"
        'CMD ["npm", "start"]\n'
    )
    return ctx


def test_run_time_files_are_found_not_guessed(optimize_store, tmp_path: Path) -> None:
    from slimage.builder.api import BuildOptions, build
    from slimage.optimize.appfiles import find_app_files
    from slimage.optimize.measure import read_files
    from slimage.store.images import open_image

    ctx = _context(tmp_path)
    tag = "slimage-test/appfiles:1"
    build(BuildOptions(context=str(ctx), tags=[tag]), optimize_store)
    image = open_image(optimize_store, tag)
    base = open_image(optimize_store, NODE_BASE)
    files = read_files(image)
    app = find_app_files(files, len(base.layers))
    keep = set(app.keep)
    # The app and its ELF file's library stay; the toolchain's library only because the
    # ELF closure found that app/bin/tool needs it.
    assert {"app/index.js", "app/package.json", "app/bin/tool", "opt/tc/lib/libz.so.1"} <= keep
    assert "needed by /app/bin/tool (libz.so.1)" == app.restored["opt/tc/lib/libz.so.1"]
    # The rest of the toolchain, the unused library, the npm cache and dpkg's lists go.
    assert not keep & {
        "opt/tc/bin/cc1",
        "opt/lu/liblz4-unused.so.1",
        "root/.npm/_cacache/blob",
        "var/lib/dpkg/info/gcc-12.list",
    }
    assert app.dropped["build toolchain (gcc-12)"] == 1
    assert app.dropped["library nothing kept links to (libunused1)"] == 1
    assert app.dropped["npm cache"] == 1
    # Whole directories where everything under them stays (not /opt/tc: cc1 goes).
    assert app.copy_roots == ["app", "opt/tc/lib"]
    assert app.scattered == {}
    # npm start becomes the script, without a shell; node -> the nodejs preset.
    assert app.entry is not None and app.entry.argv == ["node", "index.js"]
    assert app.preset == "nodejs"
    assert "app/bin/tool" in app.native
