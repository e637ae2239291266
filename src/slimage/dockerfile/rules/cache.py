"""Rules about reproducibility and the build cache: what makes two builds of the same
Dockerfile differ, or makes the cache useless."""

from __future__ import annotations

import re
from collections.abc import Iterator

from slimage.dockerfile.rules import facts
from slimage.dockerfile.rules.base import Hit, LintContext, Severity, is_url, rule

_ARCHIVE = re.compile(r"\.(tar|tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz|tar\.zst|tzst)$", re.I)


def _stage_refs(ctx: LintContext, upto: int) -> set[str]:
    return {st.name for st in ctx.stages[:upto] if st.name} | {str(i) for i in range(upto)}


def _bases(ctx: LintContext) -> Iterator[tuple[int, str]]:
    """(stage index, base image) for every FROM that names an image, not a stage."""
    for st in ctx.stages:
        if st.parent is not None:
            continue
        base = st.base
        if base.lower() == "scratch" or "$" in base or not base:
            continue
        yield st.index, base


@rule(
    "SL201",
    "untagged-base",
    Severity.WARNING,
    category="cache",
    hadolint="DL3006",
    summary="Base image without a tag",
    why="an untagged base means :latest, which moves: the same Dockerfile builds a "
    "different image next month, and the cache breaks whenever upstream pushes",
    fix="pin a version tag (better: a tag plus @sha256 digest)",
    differs="`FROM ${ARG}` is resolved through the ARG's default, so an untagged base "
    "behind a variable is found too",
)
def untagged_base(ctx: LintContext) -> Iterator[Hit]:
    for idx, base in _bases(ctx):
        _reg, _path, tag, digest = facts.split_image(base)
        if not tag and not digest:
            yield Hit(ctx.stages[idx].from_inst, f"`{base}` has no tag")


@rule(
    "SL202",
    "latest-base",
    Severity.WARNING,
    category="cache",
    hadolint="DL3007",
    summary="Base image pinned to :latest",
    why=":latest moves with every upstream push, so builds are not reproducible and "
    "rollbacks rebuild something else",
    fix="pin a version tag (better: a tag plus @sha256 digest)",
)
def latest_base(ctx: LintContext) -> Iterator[Hit]:
    for idx, base in _bases(ctx):
        _reg, _path, tag, digest = facts.split_image(base)
        if tag == "latest" and not digest:
            yield Hit(ctx.stages[idx].from_inst, f"`{base}` uses :latest")


@rule(
    "SL203",
    "add-local-file",
    Severity.WARNING,
    category="cache",
    hadolint="DL3020",
    summary="ADD used to copy local files",
    why="ADD silently unpacks archives and fetches URLs; for plain files COPY does the "
    "same with no surprises",
    fix="use COPY for files and directories",
)
def add_local(ctx: LintContext) -> Iterator[Hit]:
    for _st, inst in ctx.instructions("add"):
        if inst.heredocs or len(inst.value) < 2:
            continue
        for raw in inst.value[:-1]:
            src = raw.strip("\"'")  # the builder removes quotes: `ADD "https://..." /src`
            if is_url(src) or src.startswith("git@") or _ARCHIVE.search(src):
                continue
            yield Hit(inst, f"ADD of local `{src}`")
            break


@rule(
    "SL204",
    "add-url",
    Severity.WARNING,
    category="size",
    summary="ADD downloads a URL into its own layer",
    why="the download becomes a layer of its own that a later RUN cannot shrink (an "
    "extracted or deleted archive still ships), and without --checksum it is unverified",
    fix="download, verify and unpack in one RUN (`curl -fsSL ... | tar -x` and delete), or "
    "in a build stage",
)
def add_url(ctx: LintContext) -> Iterator[Hit]:
    for st, inst in ctx.instructions("add"):
        if not st.ships or inst.heredocs:
            continue
        for raw in inst.value[:-1]:
            src = raw.strip("\"'")
            if is_url(src) and not src.split("#", 1)[0].endswith(".git"):
                yield Hit(inst, f"ADD fetches {src}")
                break


@rule(
    "SL205",
    "apt-upgrade",
    Severity.WARNING,
    category="cache",
    summary="`apt-get upgrade` in a Dockerfile",
    why="upgrading inside the build makes the image depend on the day it was built, "
    "rewrites large parts of the base into a new layer, and hides that the base is stale",
    fix="use a newer base image tag instead; rebuild when the base is updated",
)
def apt_upgrade(ctx: LintContext) -> Iterator[Hit]:
    for _st, inst in ctx.instructions("run"):
        script = ctx.script(inst)
        if script is None:
            continue
        cmds = facts.apt_commands(script, "upgrade", "dist-upgrade", "full-upgrade")
        if cmds:
            sub = facts.subcommand(cmds[0].unwrapped())[0]
            yield Hit(inst, f"`apt-get {sub}`")


@rule(
    "SL206",
    "relative-workdir",
    Severity.WARNING,
    category="correctness",
    hadolint="DL3000",
    summary="Relative WORKDIR",
    why="a relative WORKDIR depends on the WORKDIR of the base image, which can change",
    fix="use an absolute path",
)
def relative_workdir(ctx: LintContext) -> Iterator[Hit]:
    for _st, inst in ctx.instructions("workdir"):
        if not inst.value:
            continue
        path = inst.value[0].strip("\"'")
        if path.startswith(("/", "$")) or re.match(r"^[A-Za-z]:[\\/]", path):
            continue
        yield Hit(inst, f"WORKDIR {path} is relative")


@rule(
    "SL207",
    "pipe-without-pipefail",
    Severity.WARNING,
    category="correctness",
    hadolint="DL4006",
    summary="Pipe in RUN without pipefail",
    why="`/bin/sh -c 'curl ... | tar x'` only checks the last command, so a failed "
    "download still produces a 'successful' layer with broken contents",
    fix='set `SHELL ["/bin/bash", "-o", "pipefail", "-c"]` before the RUN (or start '
    "the RUN with `set -o pipefail &&` in a shell that has it)",
    differs="a SHELL with pipefail is inherited by stages built FROM that stage, and "
    "`set -o pipefail` in the RUN itself counts",
)
def pipefail(ctx: LintContext) -> Iterator[Hit]:
    for _st, inst in ctx.instructions("run"):
        if inst.json:
            continue
        script = ctx.script(inst)
        if script is None or not any(c.op == "|" for c in script.commands):
            continue
        shell_words = ctx.shell_of(inst)
        if "pipefail" in " ".join(shell_words):
            continue
        if any(c.name == "set" and "pipefail" in c.words for c in script.commands):
            continue
        yield Hit(inst, "a pipe failure would go unnoticed")


@rule(
    "SL208",
    "untrusted-registry",
    Severity.WARNING,
    category="security",
    hadolint="DL3026",
    summary="Base image from a registry outside `trusted-registries`",
    why="your policy lists the registries you trust to serve base images",
    fix="use a base from a trusted registry, or add the registry to trusted-registries",
)
def untrusted_registry(ctx: LintContext) -> Iterator[Hit]:
    trusted = ctx.config.trusted_registries
    if not trusted:
        return
    for idx, base in _bases(ctx):
        registry = facts.split_image(base)[0] or "docker.io"
        hub = {"docker.io", "index.docker.io", "registry-1.docker.io", "hub.docker.com"}
        if registry in trusted or (registry in hub and hub & set(trusted)):
            continue
        yield Hit(ctx.stages[idx].from_inst, f"`{base}` comes from {registry}")
