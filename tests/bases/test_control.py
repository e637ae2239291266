"""deb822 paragraphs and relation fields."""

from __future__ import annotations

import pytest

from slimage.bases.control import Relation, iter_paragraphs, parse_paragraph, parse_relations


def test_relations_with_alternatives_versions_and_qualifiers() -> None:
    groups = parse_relations(
        "libc6 (>= 2.34), media-types | mime-support, python3:any (>= 3.9~), libfoo [!amd64]",
        arch="amd64",
    )
    assert groups == [
        [Relation("libc6", ">=", "2.34")],
        [Relation("media-types"), Relation("mime-support")],
        [Relation("python3", ">=", "3.9~", "any")],
    ]
    assert str(groups[2][0]) == "python3:any (>= 3.9~)"


def test_relation_arch_restriction_keeps_matching_arch() -> None:
    assert parse_relations("libfoo [amd64 arm64]", arch="arm64") == [[Relation("libfoo")]]
    assert parse_relations("libfoo [amd64]", arch="arm64") == []


def test_bad_relation_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_relations("libc6 (>= )")


def test_paragraphs_keep_only_requested_fields_and_continuations() -> None:
    data = b"Package: a\nVersion: 1\nDescription: x\n more\n\nPackage: b\nVersion: 2\n"
    paras = list(iter_paragraphs(data, ["Package", "Version"]))
    assert paras == [{"Package": "a", "Version": "1"}, {"Package": "b", "Version": "2"}]
    full = parse_paragraph("SHA256:\n aa 1 x\n bb 2 y\nSuite: s\n")
    assert full["SHA256"] == "\naa 1 x\nbb 2 y"
    assert full["Suite"] == "s"
