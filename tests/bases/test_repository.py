"""The repository client trusts only what the keyring vouches for."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimage.bases.errors import HashMismatchError, SignatureError
from slimage.bases.repository import (
    DEFAULT_KEYRING,
    Repository,
    Source,
    default_sources,
    snapshot_url,
    verify_inrelease,
)
from slimage.errors import UsageError
from tests.bases import support


def test_debian_inrelease_verifies_and_lists_packages_hashes(tmp_path: Path) -> None:
    support.need_debian()
    repo = Repository([Source(support.MIRROR, "bookworm")], "amd64", cache_dir=tmp_path)
    rel = repo.release(repo.sources[0])
    assert rel.fields["Codename"] == "bookworm"
    digest, size = rel.sha256["main/binary-amd64/Packages.xz"]
    assert len(digest) == 64 and size > 1_000_000


def test_tampered_debian_inrelease_is_refused(tmp_path: Path) -> None:
    support.need_debian()
    import urllib.request

    with urllib.request.urlopen(f"{support.MIRROR}/dists/bookworm/InRelease", timeout=30) as r:
        data = r.read()
    assert verify_inrelease(data, DEFAULT_KEYRING, what="InRelease").startswith(b"Origin: Debian")
    # One changed hash line in the signed text: exactly the attack signatures stop.
    i = data.index(b"main/binary-amd64/Packages.xz")
    forged = data[: i - 80] + data[i - 80 : i].replace(b"a", b"b").replace(b"1", b"2") + data[i:]
    assert forged != data
    with pytest.raises(SignatureError, match="signature does not verify"):
        verify_inrelease(forged, DEFAULT_KEYRING, what="InRelease")


def test_local_mirror_signed_by_unknown_key_is_refused_and_nothing_cached(tmp_path: Path) -> None:
    mirror = support.LocalMirror("unknown-key")
    mirror.publish(key="evil")
    repo = Repository([Source(mirror.url, "testing")], cache_dir=tmp_path, keyring=mirror.keyring)
    with pytest.raises(SignatureError) as err:
        repo.index()
    assert "refused" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "lists").exists() or not any((tmp_path / "lists").iterdir())


def test_local_mirror_with_edited_release_is_refused(tmp_path: Path) -> None:
    mirror = support.LocalMirror("edited-release")
    mirror.publish(tamper_release=True)
    repo = Repository([Source(mirror.url, "testing")], cache_dir=tmp_path, keyring=mirror.keyring)
    with pytest.raises(SignatureError):
        repo.index()


def test_packages_index_not_matching_signed_hash_is_refused(tmp_path: Path) -> None:
    mirror = support.LocalMirror("bad-packages")
    mirror.publish(tamper_packages=True)
    repo = Repository([Source(mirror.url, "testing")], cache_dir=tmp_path, keyring=mirror.keyring)
    with pytest.raises(HashMismatchError, match="does not match the signed index"):
        repo.index()
    lists = tmp_path / "lists"
    # Only the verified InRelease may be cached; no index file, no parsed index.
    names = [p.name for p in lists.iterdir()]
    assert len(names) == 1 and names[0].endswith("_InRelease")


def test_expired_release_is_refused_as_a_replay(tmp_path: Path) -> None:
    mirror = support.LocalMirror("expired")
    mirror.publish(valid_until="Sat, 01 Jan 2022 00:00:00 UTC")
    repo = Repository([Source(mirror.url, "testing")], cache_dir=tmp_path, keyring=mirror.keyring)
    with pytest.raises(SignatureError, match="expired on Sat, 01 Jan 2022"):
        repo.index()
    fresh = support.LocalMirror("not-expired")
    fresh.publish(valid_until="Fri, 01 Jan 2100 00:00:00 UTC")
    ok = Repository([Source(fresh.url, "testing")], cache_dir=tmp_path, keyring=fresh.keyring)
    assert "netbase" in ok.index()


def test_good_local_mirror_parses_and_offline_reuses_cache(tmp_path: Path) -> None:
    mirror = support.LocalMirror("good")
    mirror.publish()
    repo = Repository([Source(mirror.url, "testing")], cache_dir=tmp_path, keyring=mirror.keyring)
    index = repo.index()
    assert {"base-files", "netbase", "tzdata", "ca-certificates"} <= set(index.packages)
    offline = Repository(
        [Source(mirror.url, "testing")], cache_dir=tmp_path, keyring=mirror.keyring, offline=True
    )
    assert set(offline.index().packages) == set(index.packages)


def test_snapshot_url_form_and_default_sources() -> None:
    assert (
        snapshot_url("debian", "20240101T000000Z")
        == "http://snapshot.debian.org/archive/debian/20240101T000000Z"
    )
    with pytest.raises(UsageError):
        snapshot_url("debian", "2024-01-01")
    srcs = default_sources("bookworm", snapshot="20240101T000000Z")
    assert [s.suite for s in srcs] == ["bookworm", "bookworm-updates", "bookworm-security"]
    assert srcs[2].url.endswith("/debian-security/20240101T000000Z") and all(
        s.snapshot for s in srcs
    )
    assert [s.url for s in default_sources("bookworm")][:2] == [support.MIRROR] * 2


def test_unsupported_architecture_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="architecture 'mips'"):
        Repository([], "mips")
