"""Rules about bytes and layers: what ends up shipped that did not need to be.

Most of these only look at stages whose filesystem reaches the final image (the last
stage and the stages it is built FROM): a cache left in a builder stage costs nothing
once only its artefacts are copied out, and saying otherwise would teach users to ignore
the linter.
"""

from __future__ import annotations

from collections.abc import Iterator

from slimage.dockerfile.model import Instruction
from slimage.dockerfile.rules import facts
from slimage.dockerfile.rules.base import Hit, LintContext, Severity, StageInfo, join_path, rule
from slimage.dockerfile.shell import Script


def _shipped_runs(ctx: LintContext) -> Iterator[tuple[StageInfo, Instruction, Script]]:
    for st in ctx.stages:
        if not st.ships:
            continue
        for inst in st.instructions:
            if inst.cmd == "run":
                script = ctx.script(inst)
                if script is not None:
                    yield st, inst, script


@rule(
    "SL101",
    "consecutive-run",
    Severity.INFO,
    category="layers",
    hadolint="DL3059",
    summary="Consecutive RUN instructions that could be one layer",
    why="every RUN adds a layer; files a later RUN deletes or rewrites still cost their "
    "bytes in the earlier layer, and each layer is one more blob to push and pull",
    fix="join the commands with `&&` in one RUN",
    fixable=True,
    differs="fires whatever the number of commands in each RUN (every RUN is a layer), "
    "but only in stages that ship; hadolint only joins RUNs of at most two commands",
)
def consecutive_runs(ctx: LintContext) -> Iterator[Hit]:
    for st in ctx.stages:
        if not st.ships:
            continue
        prev: Instruction | None = None
        for inst in st.instructions:
            if (
                inst.cmd == "run"
                and prev is not None
                and prev.cmd == "run"
                and sorted(prev.flags) == sorted(inst.flags)
            ):
                yield Hit(inst, f"this RUN could join the RUN on line {prev.start_line}")
            prev = inst


@rule(
    "SL102",
    "apt-update-alone",
    Severity.WARNING,
    category="cache",
    summary="`apt-get update` in a RUN of its own",
    why="the update layer is cached on its own, so a later `apt-get install` reuses "
    "stale package lists (old versions, or 404s once the mirror drops them), and the "
    "lists stay in the image",
    fix="run `apt-get update && apt-get install ... && rm -rf /var/lib/apt/lists/*` in one RUN",
    fixable=True,
)
def apt_update_alone(ctx: LintContext) -> Iterator[Hit]:
    for st in ctx.stages:
        runs = [i for i in st.instructions if i.cmd == "run"]
        for pos, inst in enumerate(runs):
            script = ctx.script(inst)
            if script is None or not facts.apt_commands(script, "update"):
                continue
            if facts.apt_commands(script, "install", "upgrade", "dist-upgrade", "build-dep"):
                continue
            for later in runs[pos + 1 :]:
                other = ctx.script(later)
                if other is not None and facts.apt_commands(other, "install"):
                    yield Hit(
                        inst,
                        f"`apt-get update` here, but the install is on line {later.start_line}",
                    )
                    break


@rule(
    "SL103",
    "apt-lists-left",
    Severity.WARNING,
    category="size",
    hadolint="DL3009",
    summary="apt package lists left in the layer",
    why="`apt-get update` writes tens of MB to /var/lib/apt/lists that the image never "
    "needs at run time; deleting them in a later RUN saves nothing",
    fix="end the same RUN with `&& rm -rf /var/lib/apt/lists/*`",
    fixable=True,
    differs="any `rm` of /var/lib/apt/lists counts as cleaning, and only stages that ship "
    "are checked (hadolint: the last stage and stages used as a base)",
)
def apt_lists_left(ctx: LintContext) -> Iterator[Hit]:
    for _st, inst, script in _shipped_runs(ctx):
        if not facts.apt_commands(script, "update"):
            continue
        if facts.removes(script, "/var/lib/apt/lists"):
            continue
        if facts.cache_mounted(inst, "/var/lib/apt/lists", "/var/lib/apt"):
            continue
        yield Hit(inst, "apt lists from `apt-get update` stay in this layer")


@rule(
    "SL104",
    "apt-no-recommends",
    Severity.INFO,
    category="size",
    hadolint="DL3015",
    summary="`apt-get install` without `--no-install-recommends`",
    why="apt also installs every recommended package, often doubling what the image "
    "ships (documentation tools, extra libraries) and the attack surface",
    fix="add `--no-install-recommends` and name the packages you really need",
    fixable=True,
)
def apt_no_recommends(ctx: LintContext) -> Iterator[Hit]:
    for _st, inst, script in _shipped_runs(ctx):
        if "Install-Recommends" in ctx.dockerfile.text:
            # An apt.conf snippet written by the Dockerfile switches recommends off.
            return
        for cmd in facts.apt_commands(script, "install"):
            if not facts.has_no_recommends(cmd):
                pkgs = " ".join(facts.package_args(cmd)[:4])
                yield Hit(inst, f"`apt-get install {pkgs}` also pulls in recommended packages")
                break


@rule(
    "SL105",
    "apk-cache-left",
    Severity.WARNING,
    category="size",
    hadolint="DL3019",
    summary="apk index cache left in the layer",
    why="`apk add` without `--no-cache` keeps the package index in /var/cache/apk",
    fix="use `apk add --no-cache ...`",
)
def apk_cache(ctx: LintContext) -> Iterator[Hit]:
    for _st, inst, script in _shipped_runs(ctx):
        for cmd in script.find("apk"):
            argv = cmd.unwrapped()
            if "add" not in argv or "--no-cache" in argv:
                continue
            if facts.removes(script, "/var/cache/apk") or facts.cache_mounted(
                inst, "/var/cache/apk", "/etc/apk/cache"
            ):
                continue
            yield Hit(inst, "`apk add` without `--no-cache` leaves /var/cache/apk in the layer")
            break


@rule(
    "SL106",
    "pip-cache-left",
    Severity.WARNING,
    category="size",
    hadolint="DL3042",
    summary="pip download cache left in the layer",
    why="pip keeps every downloaded wheel and sdist in ~/.cache/pip, often as large as "
    "the installed packages themselves",
    fix="use `pip install --no-cache-dir ...` (or set ENV PIP_NO_CACHE_DIR=1)",
    fixable=True,
)
def pip_cache(ctx: LintContext) -> Iterator[Hit]:
    for _st, inst, script in _shipped_runs(ctx):
        installs = facts.pip_installs(script)
        if not installs:
            continue
        env = ctx.env_before(inst)
        if "PIP_NO_CACHE_DIR" in env:
            continue
        if facts.cache_mounted(inst, "/root/.cache/pip", "/root/.cache"):
            continue
        if facts.removes(script, "/root/.cache/pip"):
            continue
        if any(c.name == "pip" and "purge" in c.words for c in script.find("pip", "pip3")):
            continue
        for cmd, _idx in installs:
            if not facts.pip_no_cache(cmd):
                yield Hit(inst, "`pip install` without `--no-cache-dir` keeps its cache")
                break


@rule(
    "SL107",
    "npm-cache-left",
    Severity.WARNING,
    category="size",
    summary="npm cache left in the layer",
    why="`npm install`/`npm ci` keep a copy of every tarball in ~/.npm, typically as big "
    "as node_modules",
    fix="end the same RUN with `&& npm cache clean --force`, or use "
    "`RUN --mount=type=cache,target=/root/.npm`",
    fixable=True,
)
def npm_cache(ctx: LintContext) -> Iterator[Hit]:
    for _st, inst, script in _shipped_runs(ctx):
        if not facts.npm_installs(script):
            continue
        if facts.npm_cache_cleaned(script) or facts.cache_mounted(inst, "/root/.npm"):
            continue
        env = ctx.env_before(inst)
        if "npm_config_cache" in env or "NPM_CONFIG_CACHE" in env:
            continue
        yield Hit(inst, "npm's cache (~/.npm) stays in this layer")


@rule(
    "SL108",
    "yarn-cache-left",
    Severity.WARNING,
    category="size",
    hadolint="DL3060",
    summary="yarn cache left in the layer",
    why="yarn keeps every package it installs in its global cache (/usr/local/share/.cache "
    "or ~/.cache/yarn)",
    fix="end the same RUN with `&& yarn cache clean`",
    differs="a bare `yarn` (which installs) counts as an install, as yarn documents",
)
def yarn_cache(ctx: LintContext) -> Iterator[Hit]:
    for _st, inst, script in _shipped_runs(ctx):
        if not facts.yarn_installs(script):
            continue
        if any("cache" in c.words and "clean" in c.words for c in script.find("yarn")):
            continue
        if facts.cache_mounted(inst, "/usr/local/share/.cache/yarn", "/root/.cache/yarn"):
            continue
        yield Hit(inst, "yarn's cache stays in this layer")


@rule(
    "SL109",
    "rpm-cache-left",
    Severity.WARNING,
    category="size",
    hadolint="DL3032",
    summary="yum/dnf cache left in the layer",
    why="yum and dnf keep repository metadata and packages in /var/cache/yum|dnf",
    fix="end the same RUN with `&& yum clean all` (or `dnf clean all`)",
)
def rpm_cache(ctx: LintContext) -> Iterator[Hit]:
    for _st, inst, script in _shipped_runs(ctx):
        for cmd in script.find("yum", "dnf", "microdnf"):
            argv = cmd.unwrapped()
            prog = argv[0].rsplit("/", 1)[-1]
            if facts.subcommand(argv)[0] not in ("install", "update", "upgrade", "groupinstall"):
                continue
            cleaned = any(
                "clean" in c.words and "all" in c.words
                for c in script.find("yum", "dnf", "microdnf")
            ) or facts.removes(script, f"/var/cache/{'yum' if prog == 'yum' else 'dnf'}")
            if not cleaned:
                yield Hit(inst, f"`{prog} {facts.subcommand(argv)[0]}` leaves its cache")
                break


# Paths known to be added by a command, so deleting them later can be spotted.
_CACHE_OF = {
    "apt": ("/var/lib/apt/lists", "/var/cache/apt"),
    "pip": ("/root/.cache/pip", "/root/.cache"),
    "npm": ("/root/.npm",),
}


def _added_paths(ctx: LintContext, inst: Instruction) -> list[str]:
    """Paths an instruction is known to create (destinations, downloads, caches)."""
    out: list[str] = []
    if inst.cmd in ("copy", "add") and inst.value and not inst.heredocs:
        dest = inst.value[-1]
        if "$" not in dest:
            out.append(join_path(ctx.workdir_before(inst), dest))
        return out
    if inst.cmd != "run":
        return out
    script = ctx.script(inst)
    if script is None:
        return out
    wd = ctx.workdir_before(inst)
    if facts.apt_commands(script, "update", "install"):
        out.extend(_CACHE_OF["apt"])
    if facts.pip_installs(script) and not all(
        facts.pip_no_cache(c) for c, _ in facts.pip_installs(script)
    ):
        out.extend(_CACHE_OF["pip"])
    if facts.npm_installs(script):
        out.extend(_CACHE_OF["npm"])
    for cmd in script.commands:
        argv = cmd.unwrapped()
        if not argv:
            continue
        prog = argv[0].rsplit("/", 1)[-1]
        for flag in {"curl": ("-o", "--output"), "wget": ("-O", "--output-document")}.get(prog, ()):
            if flag in argv:
                idx = argv.index(flag)
                if idx + 1 < len(argv) and argv[idx + 1] not in ("-", "/dev/null"):
                    out.append(join_path(wd, argv[idx + 1]))
        if prog == "git" and len(argv) >= 4 and argv[1] == "clone":
            target = [w for w in argv[2:] if not w.startswith("-")]
            if len(target) >= 2:
                out.append(join_path(wd, target[1]))
    return [p for p in out if "$" not in p]


@rule(
    "SL110",
    "delete-in-later-layer",
    Severity.WARNING,
    category="size",
    summary="Deleting in a later RUN what an earlier layer added",
    why="layers only ever add bytes: a file removed by a later RUN is hidden by a "
    "whiteout but still shipped in the layer that created it",
    fix="delete it in the same RUN that creates it, or copy/download it in a build stage",
)
def delete_later(ctx: LintContext) -> Iterator[Hit]:
    for st in ctx.stages:
        if not st.ships:
            continue
        added: list[tuple[str, int]] = []
        own = {id(i) for i in st.instructions}
        for inst in st.all_instructions():
            script = ctx.script(inst) if inst.cmd == "run" else None
            if script is not None and added:
                reported = False
                for cmd in script.commands:
                    argv = cmd.unwrapped()
                    if not argv or reported:
                        continue
                    prog = argv[0].rsplit("/", 1)[-1]
                    targets: list[str] = []
                    if prog == "rm":
                        wd = ctx.workdir_before(inst)
                        targets = [join_path(wd, w) for w in argv[1:] if not w.startswith("-")]
                    elif prog in ("apt-get", "apt") and facts.subcommand(argv)[0] == "clean":
                        targets = ["/var/cache/apt"]
                    elif prog == "npm" and "cache" in argv and "clean" in argv:
                        targets = ["/root/.npm"]
                    for target in targets:
                        for path, line in added:
                            if id(inst) in own and facts.path_covers(target, path):
                                what = target if len(target) > len(path) else path
                                yield Hit(
                                    inst,
                                    f"`{' '.join(argv[:3])}` deletes {what}, which the layer of "
                                    f"line {line} added; those bytes stay in that layer",
                                )
                                reported = True
                                break
                        if reported:
                            break
            for path in _added_paths(ctx, inst):
                added.append((path, inst.start_line))


@rule(
    "SL111",
    "chown-after-copy",
    Severity.WARNING,
    category="size",
    summary="RUN chown/chmod on files a COPY just added",
    why="changing owner or mode rewrites every file into a new layer, so the image "
    "carries the files twice",
    fix="set them while copying: `COPY --chown=user:group` (and `--chmod=`)",
    fixable=True,
)
def chown_after_copy(ctx: LintContext) -> Iterator[Hit]:
    for st in ctx.stages:
        if not st.ships:
            continue
        copied: list[tuple[str, int]] = []
        for inst in st.instructions:
            if inst.cmd in ("copy", "add") and inst.value and not inst.heredocs:
                dest = inst.value[-1]
                if "$" not in dest:
                    copied.append((join_path(ctx.workdir_before(inst), dest), inst.start_line))
                continue
            if inst.cmd != "run" or not copied:
                continue
            script = ctx.script(inst)
            if script is None:
                continue
            wd = ctx.workdir_before(inst)
            done = False
            for cmd in script.find("chown", "chmod"):
                argv = cmd.unwrapped()
                paths = [w for w in argv[2:] if not w.startswith("-")]
                for path in paths:
                    target = join_path(wd, path.rstrip("*").rstrip("/") or "/")
                    for dest, line in copied:
                        d = dest.rstrip("/") or "/"
                        if (
                            target == d
                            or target.startswith(d + "/")
                            or ("-R" in argv and d.startswith(target.rstrip("/") + "/"))
                        ):
                            yield Hit(
                                inst,
                                f"`{argv[0]}` on {dest}, copied on line {line}: "
                                f"use COPY --{argv[0].rsplit('/', 1)[-1]}",
                            )
                            done = True
                            break
                    if done:
                        break
                if done:
                    break


_DEP_INSTALL = (
    ("npm", ("install", "ci", "i")),
    ("yarn", ("install", "")),
    ("pnpm", ("install", "i")),
    ("pip", ("install",)),
    ("pip3", ("install",)),
    ("bundle", ("install",)),
    ("composer", ("install",)),
    ("go", ("mod",)),
    ("poetry", ("install",)),
    ("mvn", ("dependency:go-offline", "install", "package")),
    ("cargo", ("fetch", "build")),
)


def _is_dep_install(script: Script) -> str | None:
    for cmd in script.commands:
        argv = cmd.unwrapped()
        if not argv:
            continue
        prog = argv[0].rsplit("/", 1)[-1]
        for name, subs in _DEP_INSTALL:
            if prog == name:
                sub = facts.subcommand(argv, frozenset())[0]
                if sub in subs:
                    return " ".join(argv[:2])
    return None


@rule(
    "SL112",
    "copy-all-before-install",
    Severity.WARNING,
    category="cache",
    summary="`COPY . .` before installing dependencies",
    why="any change to any source file invalidates the COPY layer and therefore the "
    "dependency install after it, so every build re-downloads everything",
    fix="copy only the manifests first (package.json, package-lock.json, requirements.txt, "
    "go.mod ...), install, then `COPY . .`",
)
def copy_all_before_install(ctx: LintContext) -> Iterator[Hit]:
    for st in ctx.stages:
        pending: Instruction | None = None
        for inst in st.instructions:
            if inst.cmd == "copy" and inst.flag("from") is None and len(inst.value) >= 2:
                sources = inst.value[:-1]
                if any(s.rstrip("/") in (".", "*", "./*", "") for s in sources):
                    pending = pending or inst
                continue
            if inst.cmd == "run" and pending is not None:
                script = ctx.script(inst)
                what = _is_dep_install(script) if script is not None else None
                if what:
                    yield Hit(
                        pending,
                        f"the whole context is copied before `{what}` on line {inst.start_line}",
                    )
                    pending = None


_BUILD_TOOLS = {
    "npm": "npm (and devDependencies)",
    "yarn": "yarn (and devDependencies)",
    "pnpm": "pnpm (and devDependencies)",
    "pip": "pip",
    "pip3": "pip",
    "gcc": "a C compiler",
    "g++": "a C++ compiler",
    "make": "make",
    "cmake": "cmake",
    "go": "the Go toolchain",
    "cargo": "the Rust toolchain",
    "mvn": "Maven",
    "gradle": "Gradle",
    "./gradlew": "Gradle",
    "bundle": "bundler",
    "composer": "composer",
}


@rule(
    "SL113",
    "single-stage-toolchain",
    Severity.WARNING,
    category="size",
    summary="Single stage ships compilers, package managers or dev dependencies",
    why="everything used to build the app (toolchain, package manager, headers, dev "
    "dependencies, caches) is shipped and attackable in production",
    fix="build in a first stage (`FROM ... AS build`), then start the final stage from a "
    "slim or distroless base and `COPY --from=build` only the app",
)
def single_stage_toolchain(ctx: LintContext) -> Iterator[Hit]:
    final = ctx.final
    if final is None:
        return
    chain = list(final.chain())
    chain_refs = {st.ref for st in chain}
    for st in chain:
        for inst in st.instructions:
            src = inst.flag("from") if inst.cmd == "copy" else None
            if src is not None and src.lower() not in chain_refs:
                return  # artefacts come from another stage: already multi-stage
    evidence: list[str] = []
    root = final.root_base
    repo = facts.hub_repo(facts.split_image(root)[1]) if root else ""
    if repo in facts.SDK_BASES:
        evidence.append(f"the base {root} is a build toolchain")
    for st in reversed(chain):
        for inst in st.instructions:
            if inst.cmd != "run":
                continue
            script = ctx.script(inst)
            if script is None:
                continue
            for _cmd, pkgs in facts.installs_packages(script):
                dev = [p for p in pkgs if facts.BUILD_PACKAGES.match(p)]
                if dev:
                    evidence.append(f"line {inst.start_line} installs {', '.join(dev[:3])}")
            for cmd in script.commands:
                argv = cmd.unwrapped()
                prog = argv[0].rsplit("/", 1)[-1] if argv else ""
                if prog in _BUILD_TOOLS:
                    what = _BUILD_TOOLS[prog]
                    text = f"line {inst.start_line} runs `{' '.join(argv[:2])}`: {what} stays"
                    if text not in evidence:
                        evidence.append(text)
                    break
    if evidence:
        yield Hit(final.from_inst, "single-stage build; " + "; ".join(evidence[:3]))


@rule(
    "SL114",
    "full-base",
    Severity.WARNING,
    category="size",
    summary="Full distribution base where a slim or distroless base would do",
    why="a full base brings hundreds of MB of compilers, shells and libraries the app "
    "never calls, each one a CVE to patch",
    fix="run on a slim or distroless base (build in another stage if you need the tools)",
)
def full_base(ctx: LintContext) -> Iterator[Hit]:
    final = ctx.final
    if final is None:
        return
    root = final.root_base
    advice = facts.full_base_advice(root)
    if advice:
        inst = list(final.chain())[-1].from_inst
        yield Hit(inst, f"the final image runs on {root}; use {advice}")
