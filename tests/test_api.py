"""`import slimage` is the documented API: its surface is pinned, every name resolves, it
stays cheap to import, and the README's example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import slimage

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = {
    "__version__",
    "Image",
    "Layer",
    "Store",
    "open_image",
    "write_image",
    "BuildOptions",
    "BuildResult",
    "build",
    "analyze",
    "diff",
    "lint",
    "fix",
    "build_base",
    "check_compat",
    "SlimageError",
    "UsageError",
    "NotFoundError",
    "InvalidImageError",
    "UnsafeArchiveError",
    "DockerfileError",
    "BuildError",
    "RegistryError",
}


def test_all_is_the_documented_surface_and_every_name_resolves() -> None:
    assert set(slimage.__all__) == PUBLIC
    assert len(slimage.__all__) == len(PUBLIC)
    for name in slimage.__all__:
        assert getattr(slimage, name) is not None, name
    assert issubclass(slimage.UnsafeArchiveError, slimage.SlimageError)
    with pytest.raises(AttributeError):
        slimage.no_such_name  # noqa: B018


def test_importing_slimage_loads_nothing_else() -> None:
    """Every CLI command imports the package: it must not drag the library in."""
    code = "import sys, slimage; print(sorted(m for m in sys.modules if m.startswith('slimage.')))"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "[]"


def test_lint_and_fix_through_the_api(tmp_path: Path) -> None:
    df = tmp_path / "Dockerfile"
    df.write_text("FROM debian:12\nRUN apt-get update\nRUN apt-get install -y curl\n")
    by_path = slimage.lint(df)
    assert by_path and all(f.file == str(df) for f in by_path)
    assert {f.rule for f in slimage.lint(df.read_text())} == {f.rule for f in by_path}
    fixed = slimage.fix(df.read_text())
    assert fixed.changed and fixed.applied and "apt-get update" in fixed.fixed
    with pytest.raises(slimage.DockerfileError):
        slimage.lint("FROM\n")


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S)
    assert m, "README.md has no Python API example"
    return m.group(1)


def test_the_readme_python_example_runs(tmp_path: Path, vanilla_archive: Path) -> None:
    code = _readme_example()
    assert "node-vanilla.tar" in code and "/tmp/slimage-demo" in code
    code = code.replace("node-vanilla.tar", str(vanilla_archive))
    code = code.replace("/tmp/slimage-demo", str(tmp_path / "store"))
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "efficient" in res.stdout and "layers" in res.stdout
    out = tmp_path / "store.oci.tar"
    assert out.is_file() and out.stat().st_size > 1_000_000
    assert re.search(r"^SL\d+|^DL\d+", res.stdout, re.M)
