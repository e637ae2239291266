"""`surface`: the node:8 stand-in next to the nodejs preset, and every finding kind on an
image made to carry them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slimage.analysis.surface import analyze_surface, table_rows
from slimage.transports.sources import open_source
from tests.bases import support
from tests.support import testbed


def test_node8_has_shell_and_package_managers_the_nodejs_preset_has_none(node8_image: str) -> None:
    archive = testbed.saved_archive(node8_image, "node8")  # docker save, read by slimage
    node_tag, _ = support.preset_image("nodejs")
    from slimage.store.store import Store

    store = Store(support.session_store())
    full = analyze_surface(open_source(str(archive), store), "node:8")
    slim = analyze_surface(open_source(node_tag, store), "nodejs preset")
    assert "/usr/bin/bash" in full.shells and "/usr/bin/dash" in full.shells
    assert {"apt", "dpkg", "npm"} <= set(full.package_managers)
    assert full.setuid and full.executables > 300
    assert any(u.startswith("root (/bin/bash") for u in full.login_users)
    assert slim.shells == [] and slim.package_managers == {}
    assert slim.setuid == [] and slim.setgid == [] and slim.login_users == []
    assert slim.executables < 20 and slim.default_user == "root (0)"
    headers, rows = table_rows([full, slim])
    assert headers == ["", "node:8", "nodejs preset"]
    shells = next(r for r in rows if r[0] == "SHELLS")
    assert shells[2] == "none" and shells[1].startswith(f"{len(full.shells)}: ")


CAP_NET_RAW = (b"\x01\x00\x00\x02" + b"\x00\x20\x00\x00" + b"\x00" * 12).decode("latin-1")


def test_every_kind_of_finding(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl to make a real private key")
    key = tmp_path / "id_ed25519"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)],
        check=True,
        capture_output=True,
    )
    musl, _ = support.preset_image("musl")
    shadow = b"root:$6$salt$abcdefghijklmnop:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n"
    image = support.derive_image(
        musl,
        [
            ("home/nonroot/.ssh", None, 0o700),
            ("home/nonroot/.ssh/id_ed25519", key.read_bytes(), 0o600),
            ("root/.npmrc", b"//registry.npmjs.org/:_authToken=npm_abcdef\n", 0o600),
            ("etc/shadow", shadow, 0o640),
            ("usr/local/bin/suid-tool", b"#!/bin/sh\n", 0o4755),
            ("usr/local/bin/sgid-tool", b"#!/bin/sh\n", 0o2755),
            ("srv/drop", None, 0o777),
            ("srv/notes.txt", b"x", 0o666),
            ("usr/local/bin/pip3.11", b"#!/bin/sh\n", 0o755),
            # cap_net_raw+ep, as `setcap` writes it (vfs_cap_data revision 2)
            (
                "usr/local/bin/pinger",
                b"#!/bin/sh\n",
                0o755,
                {"SCHILY.xattr.security.capability": CAP_NET_RAW},
            ),
        ],
        "slimage-test/bases-risky:latest",
        user="65532",
    )
    rep = analyze_surface(support.open_store_image(image), "risky")
    kinds = {c.path: c.kind for c in rep.credentials}
    assert kinds == {
        "/home/nonroot/.ssh/id_ed25519": "private-key",
        "/root/.npmrc": "token",
        "/etc/shadow": "password-hash",
    }
    assert rep.capabilities == ["/usr/local/bin/pinger"]
    assert rep.setuid == ["/usr/local/bin/suid-tool"] and rep.setgid == ["/usr/local/bin/sgid-tool"]
    assert rep.world_writable == ["/srv/drop", "/srv/notes.txt"]
    assert "/tmp" in rep.world_writable_sticky
    assert rep.package_managers == {"pip": ["/usr/local/bin/pip3.11"]}
    assert "/bin/sh" in rep.shells and "/bin/busybox" in rep.shells
    assert rep.default_user == "65532"
    assert rep.login_users == ["root (/bin/sh)"]


def test_cli_side_by_side_and_json() -> None:
    node_tag, _ = support.preset_image("nodejs")
    musl, _ = support.preset_image("musl")
    env = dict(os.environ, SLIMAGE_HOME=str(support.session_store()))
    r = subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", "surface", node_tag, musl],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert node_tag in lines[0] and musl in lines[0]
    shells = next(line for line in lines if line.startswith("SHELLS"))
    assert "none" in shells and "/bin/sh" in shells
    j = subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", "surface", node_tag, musl, "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    data = json.loads(j.stdout)
    assert [d["image"] for d in data] == [node_tag, musl]
    assert data[0]["shells"] == [] and data[1]["shells"]
