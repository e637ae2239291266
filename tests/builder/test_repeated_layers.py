"""An image may hold the same layer twice: `COPY a /a` twice makes two identical layers
(the same diff_id), as it does with BuildKit. The next step that runs or mounts the stage
must still work (overlayfs refuses a lower dir given twice)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adversarial.test_runtime import IMAGE, pytestmark

__all__ = ["pytestmark"]


@pytest.fixture
def store(busybox_store):  # type: ignore[no-untyped-def]
    return busybox_store


def test_the_same_layer_twice_then_a_run_step(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from slimage.builder import BuildOptions, build
    from slimage.store.images import open_image

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("twice\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {IMAGE}\n"
        "COPY a.txt /a.txt\n"
        "COPY a.txt /a.txt\n"
        "RUN cat /a.txt /a.txt > /b.txt\n"
        "WORKDIR /q\n"
    )
    build(BuildOptions(str(ctx), tags=["slimage-test/repeated:1"], quiet=True), store)
    image = open_image(store, store.resolve("slimage-test/repeated:1"))
    base = len(open_image(store, store.resolve(IMAGE)).layers)
    copies = [layer.diff_id for layer in image.layers[base : base + 2]]
    assert copies[0] == copies[1]
    from slimage.analysis.efficiency import analyze_image
    from slimage.analysis.target import open_target

    report = analyze_image(open_target("slimage-test/repeated:1", store=store))
    run_layer = report.layers[base + 2]
    assert run_layer.added == 1 and run_layer.added_bytes == len("twice\n") * 2


def test_a_base_with_null_config_and_history(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`"config": null` and `"history": null` parse (Docker accepts them); a build FROM
    such a base must treat them as empty, not crash at its first ENV or layer."""
    import json

    from slimage.builder import BuildOptions, build
    from slimage.store.images import open_image

    base = open_image(store, store.resolve(IMAGE))
    config = dict(base.config.data, config=None, history=None)
    config_digest = store.put_bytes(json.dumps(config).encode())
    manifest = json.loads(base.manifest.raw)
    manifest["config"]["digest"] = config_digest
    manifest["config"]["size"] = store.blob_size(config_digest)
    digest = store.put_bytes(json.dumps(manifest).encode())
    store.add_image(digest, tags=["slimage-test/null-config:1"])

    ctx = tmp_path / "nullctx"
    ctx.mkdir()
    (ctx / "a.txt").write_text("a\n")
    (ctx / "Dockerfile").write_text(
        'FROM slimage-test/null-config:1\nENV A=1\nCOPY a.txt /a.txt\nCMD ["/bin/sh"]\n'
    )
    build(BuildOptions(str(ctx), tags=["slimage-test/null-config:2"], quiet=True), store)
    built = open_image(store, store.resolve("slimage-test/null-config:2"))
    assert "A=1" in built.config.config["Env"]
    assert built.config.config["Cmd"] == ["/bin/sh"]
    assert len(built.layers) == len(base.layers) + 1
