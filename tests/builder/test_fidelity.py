"""Every Dockerfile of the build corpus, built by slimage and by BuildKit, must agree:
layer count, history created_by, config, and the merged file tree."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.builder import fidelity, standins

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "builds"
SCENARIO = ["Dockerfile", "Dockerfile.multi-stage", "Dockerfile.distroless", "Dockerfile.alpine"]
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "Dockerfile").exists()) + [
    f"scenario:{d}" for d in SCENARIO
]


def _prepare(case: str, tmp: Path) -> tuple[Path, Path, dict]:
    if case.startswith("scenario:"):
        name = case.split(":", 1)[1]
        ctx = standins.scenario_context(tmp, name)
        return ctx, ctx / name, {}
    src = CORPUS / case
    spec = json.loads((src / "build.json").read_text()) if (src / "build.json").exists() else {}
    work = tmp / case
    shutil.copytree(src, work, symlinks=True)
    ctx = work / spec.get("context", ".")
    return ctx, work / "Dockerfile", spec


@pytest.mark.parametrize("case", CASES)
def test_same_image_as_buildkit(case: str, build_store, tmp_path: Path, docker_engine: str) -> None:  # type: ignore[no-untyped-def]
    from slimage.builder import BuildOptions, build

    ctx, dockerfile, spec = _prepare(case, tmp_path)
    tag = "slimage-fidelity/" + case.replace(":", "-").replace(".", "-").lower()
    target = spec.get("target")
    args = spec.get("build_args", {})
    fidelity.docker_build(ctx, dockerfile, tag, target=target, build_args=args)
    build(
        BuildOptions(
            str(ctx), str(dockerfile), tags=[tag], target=target, build_args=args, quiet=True
        ),
        store=build_store,
    )
    ours = fidelity.slimage_facts(build_store, tag)
    theirs = fidelity.docker_facts(tag)
    assert ours["layers"] == theirs["layers"], (ours["created_by"], theirs["created_by"])
    assert ours["created_by"] == theirs["created_by"]
    assert ours["config"] == theirs["config"]
    # Layer steps are marked as such, metadata steps as empty_layer, and we say who built it.
    ours_hist = ours["history"][-len(ours["created_by"]) :]
    assert sum(not h.get("empty_layer") for h in ours["history"]) == ours["layers"]
    assert any(h.get("comment") == "slimage.dockerfile.v0" for h in ours_hist)
    diff = fidelity.tree_diff(fidelity.slimage_tree(build_store, tag), fidelity.docker_tree(tag))
    assert not diff, "\n".join(diff[:40])
