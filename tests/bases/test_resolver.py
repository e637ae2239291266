"""Dependency resolution on Debian's real index, and its failures on a local mirror."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimage.bases.builder import make_repository, plan
from slimage.bases.errors import ResolutionError, UnknownPackageError
from slimage.bases.presets import DATA_ONLY
from slimage.bases.resolver import Resolver
from tests.bases import support


@pytest.fixture(scope="module")
def bookworm_index():  # type: ignore[no-untyped-def]
    support.need_debian()
    from slimage.bases.builder import BaseSpec

    return make_repository(BaseSpec(preset="nodejs"), support.CACHE).index()


def test_nodejs_pulls_its_libraries_with_exact_versions(bookworm_index) -> None:  # type: ignore[no-untyped-def]
    res = Resolver(bookworm_index).resolve(["nodejs"])
    node, libnode = res.packages["nodejs"], res.packages["libnode108"]
    assert node.version == libnode.version  # nodejs Depends: libnode108 (= same version)
    assert {"libc6", "libuv1", "libicu72", "libssl3", "libstdc++6"} <= set(res.packages)
    assert res.reasons["libuv1"][:2] == [f"nodejs {node.version}", "libnode108"]


def test_alternatives_take_the_first_available(bookworm_index) -> None:  # type: ignore[no-untyped-def]
    res = Resolver(bookworm_index).resolve(["libpython3.11-stdlib"])
    assert "media-types" in res.packages and "mime-support" not in res.packages


def test_virtual_package_resolves_through_provides(bookworm_index) -> None:  # type: ignore[no-untyped-def]
    res = Resolver(bookworm_index).resolve(["awk"])  # virtual: mawk or gawk provide it
    chosen = set(res.packages)
    assert chosen & {"mawk", "gawk", "original-awk"}
    provider = next(iter(chosen & {"mawk", "gawk", "original-awk"}))
    assert "awk" in res.packages[provider].provides


def test_essential_packages_are_skipped_unless_named(bookworm_index) -> None:  # type: ignore[no-untyped-def]
    # Depends: libc6, perl-base (Essential), perlapi-5.36.0 (virtual, provided by perl-base)
    res = Resolver(bookworm_index).resolve(["libtext-iconv-perl"])
    assert "perl-base" not in res.packages and "perl-base" in res.skipped_essential
    assert "libc6" in res.packages
    named = Resolver(bookworm_index).resolve(["libtext-iconv-perl", "perl-base"])
    assert "perl-base" in named.packages


def test_data_only_packages_do_not_drag_their_scripts_dependencies(bookworm_index) -> None:  # type: ignore[no-untyped-def]
    res = Resolver(bookworm_index, no_deps=DATA_ONLY).resolve(["tzdata", "ca-certificates"])
    assert set(res.packages) == {"tzdata", "ca-certificates"}
    full = Resolver(bookworm_index).resolve(["ca-certificates"])
    assert "openssl" in full.packages


def test_unknown_package_gets_a_suggestion(bookworm_index) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownPackageError, match="'nodejss' not found.*did you mean nodejs"):
        Resolver(bookworm_index).resolve(["nodejss"])


def test_presets_layer_groups_share_lower_groups(bookworm_index, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cc, _ = support.preset_lock("cc")
    node, _ = support.preset_lock("nodejs")
    for group in ("static", "base", "cc"):
        a = [(p.name, p.version) for p in cc.packages if p.group == group]
        b = [(p.name, p.version) for p in node.packages if p.group == group]
        assert a == b and a
    assert [p.name for p in node.packages if p.group == "static"] == sorted(DATA_ONLY)


def test_unresolvable_dependency_shows_the_chain(tmp_path: Path) -> None:
    mirror = support.LocalMirror("chain")
    mirror.add("top", "1.0", fields={"Depends": "middle"})
    mirror.add("middle", "2.0", fields={"Depends": "libdep (>= 2)"})
    mirror.add("libdep", "1.0")
    mirror.publish()
    spec = mirror.spec(packages=["top"])
    with pytest.raises(ResolutionError) as err:
        plan(spec, make_repository(spec, tmp_path))
    msg = str(err.value)
    assert "libdep (>= 2) needed by top 1.0 -> middle" in msg
    assert "only 1.0 available" in msg and "\n" not in msg


def test_missing_dependency_names_the_package_and_arch(tmp_path: Path) -> None:
    mirror = support.LocalMirror("missing-dep")
    mirror.add("app", "1", fields={"Depends": "libghost1 | libphantom2"})
    mirror.publish()
    spec = mirror.spec(packages=["app"])
    with pytest.raises(
        ResolutionError,
        match=r"libghost1 \| libphantom2 needed by app 1 .*no such package for amd64",
    ):
        plan(spec, make_repository(spec, tmp_path))


def test_conflicting_packages_are_refused_with_the_reason(tmp_path: Path) -> None:
    mirror = support.LocalMirror("conflicts")
    mirror.add(
        "mta-one",
        "1",
        fields={"Provides": "mail-transport-agent", "Conflicts": "mail-transport-agent"},
    )
    mirror.add(
        "mta-two",
        "2",
        fields={"Provides": "mail-transport-agent", "Conflicts": "mail-transport-agent"},
    )
    mirror.add("app", "1", fields={"Depends": "mta-two"})
    mirror.add("newlib", "3", fields={"Breaks": "oldtool (<< 2)"})
    mirror.add("oldtool", "1")
    mirror.publish()
    # One provider of a virtual name that it also Conflicts with is fine (Debian's idiom).
    spec = mirror.spec(packages=["mta-one"])
    lock, _ = plan(spec, make_repository(spec, tmp_path))
    assert "mta-one" in {p.name for p in lock.packages}
    spec = mirror.spec(packages=["mta-one", "app"])
    with pytest.raises(
        ResolutionError, match=r"conflicts with mta-.* \(mail-transport-agent\).*--exclude"
    ):
        plan(spec, make_repository(spec, tmp_path))
    spec = mirror.spec(packages=["newlib", "oldtool"])
    with pytest.raises(
        ResolutionError, match=r"newlib 3 conflicts with oldtool 1 \(oldtool \(<< 2\)\)"
    ):
        plan(spec, make_repository(spec, tmp_path))
