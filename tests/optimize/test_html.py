"""The optimize and analyze pages in a real headless Chromium (Debian's `chromium`)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from slimage.units import human_size

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium (scripts/install-deps.sh installs it)")
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            # Any network fetch would fail: the page must not need one.
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_optimize_page_in_chromium(node_run: dict, tmp_path: Path) -> None:
    page = node_run["dir"] / "report.html"
    text = page.read_text()
    # Self-contained: nothing refers to another origin.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<script" not in text and "@import" not in text
    r = _chromium("--dump-dom", page.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    rep = node_run["report"]
    for row in rep["rows"]:
        # Every variant's row, with its status and (when built) its size in the table.
        m = re.search(
            rf'<tr data-variant="{row["name"]}" data-status="{row["status"]}"[^>]*>(.*?)</tr>', dom
        )
        assert m, row["name"]
        if row["measures"]:
            size = human_size(row["measures"]["size"])
            assert size in m.group(1), (row["name"], size)
            assert f'data-size="{row["measures"]["size"]}"' in m.group(0)
            assert f"{row['name']} · {size}" in dom  # its largest directories
    assert rep["advice"].replace("`", "") in dom.replace("`", "").replace("&amp;", "&")
    # The chart has one bar segment per layer of each built variant.
    rects = dom.count("<rect ")
    assert rects == sum(
        1
        for r in rep["rows"]
        if r["measures"]
        for layer in r["measures"]["layers"]
        if layer["size"]
    )
    # Probe answers and the diff from the user's Dockerfile to the recommended one.
    assert dom.count("GET :3000/") >= 5
    assert 'class="add"' in dom and "slimage-base/nodejs:bookworm" in dom
    # Screenshots: a desktop and a phone width; both render.
    for name, size in (("desktop", "1280,800"), ("phone", "390,844")):
        shot = tmp_path / f"{name}.png"
        r = _chromium(f"--screenshot={shot}", f"--window-size={size}", page.as_uri())
        assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
        assert _png_size(shot) == tuple(int(x) for x in size.split(","))
        assert shot.stat().st_size > 10_000  # not a blank page


def test_phone_width_does_not_overflow(node_run: dict, tmp_path: Path) -> None:
    """At a phone's width the page itself does not scroll sideways: wide tables scroll in
    their own box. (Headless Chromium lays out at least 500px wide; the page's narrow
    layout starts at 600px, so this is the phone layout.)"""
    page = node_run["dir"] / "report.html"
    probe = tmp_path / "probe.html"
    probe.write_text(
        page.read_text().replace(
            "</main>",
            "</main><p id=w></p><script>document.getElementById('w').textContent="
            "'W='+document.documentElement.scrollWidth+' I='+window.innerWidth;</script>",
        )
    )
    r = _chromium("--window-size=390,844", "--dump-dom", probe.as_uri())
    m = re.search(r"W=(\d+) I=(\d+)", r.stdout)
    assert m and int(m.group(2)) <= 600, r.stdout[-500:]
    assert int(m.group(1)) <= int(m.group(2)), r.stdout[-500:]


def test_analyze_html_page(tmp_path: Path, optimize_store) -> None:
    import os
    import subprocess as sp
    import sys

    out = tmp_path / "analyze.html"
    env = dict(os.environ, SLIMAGE_HOME=str(optimize_store.root))
    name = "slimage-test/hello-express:optimize-as-written"
    r = sp.run(
        [sys.executable, "-m", "slimage.cli.main", "analyze", name, "--html", str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith(f"Image: {name}")  # the name typed
    dom = _chromium("--dump-dom", out.as_uri()).stdout
    assert f"slimage analyze: {name}" in dom
    assert dom.count('data-layer="') >= 2 and "Largest files" in dom
