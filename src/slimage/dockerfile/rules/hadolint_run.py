"""hadolint's DL rules about RUN, each under its own DL id with hadolint's semantics.

A team replacing hadolint keeps every warning its CI relies on only if the same code
fires at the same line for the same reason, so these rules follow hadolint's definitions
(what counts as "the apt-get install", which flags, which stages) rather than slimage's
own size-focused rules (SLxxx), which stay as they are. Where a DL rule here deliberately
differs, its `differs` says how, and `tests/dockerfile/test_lint_parity.py` pins it.

One difference is shared by all of them: hadolint never reads the body of a RUN heredoc
(`RUN <<EOF`), slimage does. Findings there carry that reason (`Hit.beyond`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from slimage.dockerfile.model import Instruction
from slimage.dockerfile.rules.base import Hit, LintContext, Severity, hadolint_rule
from slimage.dockerfile.rules.dlshell import Cmd, RunView, run_view

S = Severity


def _runs(ctx: LintContext) -> Iterator[tuple[Instruction, RunView]]:
    """Every RUN (ONBUILD RUN included, as hadolint checks those too) and its view."""
    for inst in ctx.dockerfile.instructions:
        target = inst.child if inst.cmd == "onbuild" and inst.child is not None else inst
        if target.cmd != "run":
            continue
        view = run_view(ctx, target)
        if view is not None:
            yield inst, view


def _per_run(
    detail: str, bad: Callable[[RunView, Instruction], bool]
) -> Callable[[LintContext], Iterator[Hit]]:
    def check(ctx: LintContext) -> Iterator[Hit]:
        for inst, view in _runs(ctx):
            if bad(view, inst):
                yield Hit(inst, detail, beyond=view.beyond)

    return check


def _any(pred: Callable[[Cmd], bool]) -> Callable[[RunView, Instruction], bool]:
    return lambda view, _inst: any(pred(c) for c in view.commands)


def _cache_mount(inst: Instruction, fragment: str) -> bool:
    """hadolint's `hasCacheOrTmpfsMountWith`: a cache/tmpfs mount whose target contains
    `fragment`."""
    target = inst.child if inst.cmd == "onbuild" and inst.child is not None else inst
    for mount in target.flag_values("mount"):
        fields = dict(p.partition("=")[::2] for p in mount.split(","))
        if fields.get("type") not in ("cache", "tmpfs"):
            continue
        dest = fields.get("target") or fields.get("dst") or fields.get("destination") or ""
        if fragment in dest:
            return True
    return False


def _register(
    code: str,
    slug: str,
    severity: Severity,
    category: str,
    summary: str,
    why: str,
    fix: str,
    check: Callable[[LintContext], Iterator[Hit]],
    differs: str | None = None,
) -> None:
    hadolint_rule(code, slug, severity, category, summary, why, fix, differs)(check)


# -- pinning ------------------------------------------------------------------------------


def _apt_unpinned(view: RunView, _inst: Instruction) -> bool:
    for c in view.commands:
        if c.is_("apt-get", "install"):
            for pkg in c.args_no_flags(("t", "target-release")):
                if pkg != "install" and not ("=" in pkg or "/" in pkg or pkg.endswith(".deb")):
                    return True
    return False


_register(
    "DL3008",
    "apt-pin-versions",
    S.WARNING,
    "cache",
    "`apt-get install` without pinned versions",
    "without `pkg=version` every build installs whatever the mirror has that day, so two "
    "builds of one Dockerfile differ and a bad upstream release slips in unnoticed",
    "pin `apt-get install <package>=<version>`",
    _per_run("apt-get install without pinned versions", _apt_unpinned),
)


def _apk_unpinned(view: RunView, _inst: Instruction) -> bool:
    for c in view.commands:
        if c.is_("apk", "add"):
            for pkg in c.args_no_flags(("t", "virtual", "repository", "X")):
                if pkg == "add":
                    continue
                if not any(ch in pkg for ch in "=~><") and not pkg.endswith(".apk"):
                    return True
    return False


_register(
    "DL3018",
    "apk-pin-versions",
    S.WARNING,
    "cache",
    "`apk add` without pinned versions",
    "unpinned packages make the image depend on the day it was built",
    "pin `apk add <package>=<version>`",
    _per_run("apk add without pinned versions", _apk_unpinned),
)

_PIP_VALUE_FLAGS = (
    "abi",
    "b",
    "build",
    "e",
    "editable",
    "extra-index-url",
    "f",
    "find-links",
    "i",
    "index-url",
    "implementation",
    "no-binary",
    "only-binary",
    "platform",
    "prefix",
    "progress-bar",
    "proxy",
    "python-version",
    "root",
    "src",
    "t",
    "target",
    "trusted-host",
    "upgrade-strategy",
)
_VCS = ("git+", "hg+", "svn+", "bzr+")


def _is_pip_install(c: Cmd) -> bool:
    if c.name.startswith("pip") and not c.name.startswith("pipenv"):
        return "install" in c.args
    if c.name.startswith("python"):
        a = c.args
        return any(a[i : i + 3] == ["-m", "pip", "install"] for i in range(len(a)))
    return False


def _pip_unpinned(view: RunView, _inst: Instruction) -> bool:
    for c in view.commands:
        if not _is_pip_install(c) or c.has_flag("constraint", "c"):
            continue
        if c.has_arg("--requirement", "-r", "."):
            continue
        words = c.args_no_flags(_PIP_VALUE_FLAGS)
        if "install" in words:
            words = words[words.index("install") + 1 :]
        for pkg in words:
            if any(s in pkg for s in ("==", ">=", "<=", ">", "<", "!=", "~=")):
                continue
            if pkg.startswith(_VCS) and "@" in pkg:
                continue
            if pkg.endswith((".whl", ".tar.gz")) or (not pkg.startswith(_VCS) and "/" in pkg):
                continue
            return True
    return False


_register(
    "DL3013",
    "pip-pin-versions",
    S.WARNING,
    "cache",
    "`pip install` without pinned versions",
    "an unpinned pip install resolves to the newest release at build time",
    "pin `pip install <package>==<version>`, or install from a requirements/constraints file",
    _per_run("pip install without pinned versions", _pip_unpinned),
)


def _npm_unpinned(view: RunView, _inst: Instruction) -> bool:
    for c in view.commands:
        if not c.is_("npm", "install"):
            continue
        words = c.args_no_flags(("loglevel", "registry"))
        if not words or words[0] != "install":
            continue
        for pkg in words[1:]:
            if pkg == "install":
                continue
            if pkg.startswith(("git://", "git+ssh://", "git+http://", "git+https://")):
                if "#" not in pkg:
                    return True
                continue
            if pkg.endswith((".tar", ".tar.gz", ".tgz")) or pkg.startswith(
                ("/", "./", "../", "~/")
            ):
                continue
            bare = pkg.split("/", 1)[-1] if pkg.startswith("@") else pkg
            if "@" not in bare:
                return True
    return False


_register(
    "DL3016",
    "npm-pin-versions",
    S.WARNING,
    "cache",
    "`npm install <pkg>` without a version",
    "an unpinned npm package resolves to the newest release at build time",
    "pin `npm install <package>@<version>`",
    _per_run("npm install without pinned versions", _npm_unpinned),
)


def _gem_unpinned(view: RunView, _inst: Instruction) -> bool:
    for c in view.commands:
        if c.name != "gem" or not c.has_arg("install", "i"):
            continue
        if c.has_arg("-v", "--version") or any(a.startswith("--version=") for a in c.args):
            continue
        args = c.args[: c.args.index("--")] if "--" in c.args else c.args
        i = 0
        while i < len(args):
            a = args[i]
            if a.startswith("-"):
                i += 2
                continue
            if a not in ("install", "i") and ":" not in a:
                return True
            i += 1
    return False


_register(
    "DL3028",
    "gem-pin-versions",
    S.WARNING,
    "cache",
    "`gem install` without a version",
    "an unpinned gem resolves to the newest release at build time",
    "pin `gem install <gem>:<version>`",
    _per_run("gem install without pinned versions", _gem_unpinned),
)


def _go_unpinned(view: RunView, _inst: Instruction) -> bool:
    pkgs: list[str] = []
    for c in view.commands:
        if c.is_("go", "run"):
            for idx, arg in enumerate(c.args_no_flags()):
                if arg != "run" and idx <= 1:
                    pkgs.append(arg)
    if not pkgs:
        for c in view.commands:
            if c.is_("go", "install", "get"):
                pkgs.extend(a for a in c.args_no_flags() if a not in ("install", "get", "tool"))
    for pkg in pkgs:
        local = pkg == "." or pkg.startswith(("/", "."))
        pinned = "@" in pkg and not pkg.endswith(("@latest", "@none"))
        if not (local or pinned):
            return True
    return False


_register(
    "DL3062",
    "go-pin-versions",
    S.WARNING,
    "cache",
    "`go install`/`go run` of a module without a version",
    "without `@version` (or with @latest) the module resolves to whatever is newest",
    "use `go install <package>@<version>`",
    _per_run("go install/run without a pinned version", _go_unpinned),
)

_VERSION_CHARS = re.compile(r"[0-9A-Za-z.~^_:+]*")


def _rpm_version_fixed(pkg: str, known: set[str]) -> bool:
    parts = pkg.split("-")
    if len(parts) <= 1:
        return False
    if pkg.endswith(".rpm"):
        return True
    if "$" in pkg:
        return any("${" + v + "}" in pkg for v in known)
    rest = parts[1:]
    return all(_VERSION_CHARS.fullmatch(p) for p in rest) and any(p[:1].isdigit() for p in rest)


def _rpm_pins(names: tuple[str, ...], skip_subs: tuple[str, ...]) -> Callable[..., Iterator[Hit]]:
    def check(ctx: LintContext) -> Iterator[Hit]:
        for inst, view in _runs(ctx):
            known = set(ctx.env_before(inst))
            bad = False
            for c in view.commands:
                if c.name not in names or not c.has_arg("install"):
                    continue
                words = [a for a in c.args_no_flags() if a not in ("install", "module")]
                if c.has_arg(*skip_subs):
                    if any(":" not in w for w in words):
                        bad = True  # modules need a `:stream`
                    continue
                if any(not _rpm_version_fixed(w, known) for w in words):
                    bad = True
            if bad:
                yield Hit(inst, f"{names[0]} install without pinned versions", beyond=view.beyond)

    return check


_register(
    "DL3033",
    "yum-pin-versions",
    S.WARNING,
    "cache",
    "`yum install` without versions",
    "unpinned packages make the image depend on the day it was built",
    "use `yum install -y <package>-<version>`",
    _rpm_pins(("yum",), ("module",)),
)
_register(
    "DL3041",
    "dnf-pin-versions",
    S.WARNING,
    "cache",
    "`dnf install` without versions",
    "unpinned packages make the image depend on the day it was built",
    "use `dnf install -y <package>-<version>`",
    _rpm_pins(("dnf", "microdnf"), ("module", "group")),
)


def _zypper_unpinned(view: RunView, _inst: Instruction) -> bool:
    for c in view.commands:
        if c.is_("zypper", "install", "in"):
            for pkg in c.args_no_flags():
                if pkg in ("install", "in"):
                    continue
                if not (any(ch in pkg for ch in "=<>") or pkg.endswith(".rpm")):
                    return True
    return False


_register(
    "DL3037",
    "zypper-pin-versions",
    S.WARNING,
    "cache",
    "`zypper install` without versions",
    "unpinned packages make the image depend on the day it was built",
    "use `zypper install -y <package>=<version>`",
    _per_run("zypper install without pinned versions", _zypper_unpinned),
)

# -- non-interactive switches -------------------------------------------------------------


def _apt_no_yes(c: Cmd) -> bool:
    if not c.is_("apt-get", "install"):
        return False
    return not (
        c.has_flag("y", "yes", "qq", "assume-yes")
        or c.count_flag("q") == 2
        or c.count_flag("quiet") == 2
        or "-q=2" in c.args
    )


_register(
    "DL3014",
    "apt-get-yes",
    S.WARNING,
    "correctness",
    "`apt-get install` without `-y`",
    "without -y apt-get waits for an answer that never comes, and the build fails",
    "use `apt-get install -y ...`",
    _per_run("apt-get install without -y", _any(_apt_no_yes)),
)
_register(
    "DL3030",
    "yum-yes",
    S.WARNING,
    "correctness",
    "`yum install` without `-y`",
    "without -y yum waits for an answer that never comes",
    "use `yum install -y ...`",
    _per_run(
        "yum install without -y",
        _any(
            lambda c: (
                c.is_("yum", "install", "groupinstall", "localinstall")
                and not c.has_flag("y", "assumeyes")
            )
        ),
    ),
)
_register(
    "DL3034",
    "zypper-yes",
    S.WARNING,
    "correctness",
    "`zypper` without a non-interactive switch",
    "zypper waits for an answer that never comes",
    "use `zypper install -y ...` (or --non-interactive)",
    _per_run(
        "zypper without -y/--non-interactive",
        _any(
            lambda c: (
                c.is_("zypper", "install", "in", "remove", "rm", "source-install", "si", "patch")
                and not c.has_flag("non-interactive", "n", "no-confirm", "y")
            )
        ),
    ),
)
_register(
    "DL3038",
    "dnf-yes",
    S.WARNING,
    "correctness",
    "`dnf install` without `-y`",
    "dnf waits for an answer that never comes",
    "use `dnf install -y ...`",
    _per_run(
        "dnf install without -y",
        _any(
            lambda c: (
                c.name in ("dnf", "microdnf")
                and c.has_arg("install", "groupinstall", "localinstall")
                and not c.has_flag("y", "assumeyes")
            )
        ),
    ),
)

# -- caches -------------------------------------------------------------------------------


def _dl3009(ctx: LintContext) -> Iterator[Hit]:
    # hadolint reports RUNs that `apt-get update` without removing /var/lib/apt/lists/*,
    # but only in the last stage and in stages a later FROM builds on.
    used_as_base = {st.parent.index for st in ctx.stages if st.parent is not None}
    for st in ctx.stages:
        if not st.final and st.index not in used_as_base:
            continue
        for inst in st.instructions:
            if inst.cmd != "run":
                continue
            view = run_view(ctx, inst)
            if view is None:
                continue
            update = any(
                c.name in ("apt", "apt-get", "aptitude") and c.has_arg("update")
                for c in view.commands
            )
            if not update:
                continue
            cleaned = any(
                c.name == "rm" and c.has_arg("-rf") and c.has_arg("/var/lib/apt/lists/*")
                for c in view.commands
            )
            if cleaned or _cache_mount(inst, "/var/lib/apt/lists"):
                continue
            if _cache_mount(inst, "/var/lib/apt") and _cache_mount(inst, "/var/cache/apt"):
                continue
            yield Hit(
                inst, "apt lists from `apt-get update` stay in this layer", beyond=view.beyond
            )


_register(
    "DL3009",
    "apt-lists-not-deleted",
    S.INFO,
    "size",
    "apt lists not deleted after `apt-get update`",
    "the package lists are tens of MB the image never needs",
    "end the RUN with `&& rm -rf /var/lib/apt/lists/*`",
    _dl3009,
)
_register(
    "DL3019",
    "apk-no-cache",
    S.INFO,
    "size",
    "`apk add` without `--no-cache`",
    "without --no-cache the package index stays in /var/cache/apk",
    "use `apk add --no-cache ...`",
    lambda ctx: (
        Hit(inst, "apk add without --no-cache", beyond=view.beyond)
        for inst, view in _runs(ctx)
        if not _cache_mount(inst, "/var/cache/apk")
        and any(c.is_("apk", "add") and not c.has_flag("no-cache") for c in view.commands)
    ),
)


def _dl3042(ctx: LintContext) -> Iterator[Hit]:
    for inst, view in _runs(ctx):
        env = ctx.env_before(inst)
        if env.get("PIP_NO_CACHE_DIR", "").strip("\"'").lower() in ("1", "true", "yes", "on"):
            continue
        m = re.search(r"PIP_NO_CACHE_DIR=(\S*)", view.text)
        if m and m.group(1).strip("\"'").lower() in ("1", "true", "yes", "on"):
            continue
        if _cache_mount(inst, ".cache/pip"):
            continue
        for c in view.commands:
            wrapper = "pipx" in c.name or "pipenv" in c.name
            if _is_pip_install(c) and "--no-cache-dir" not in c.args and not wrapper:
                yield Hit(inst, "pip install without --no-cache-dir", beyond=view.beyond)
                break


_register(
    "DL3042",
    "pip-no-cache-dir",
    S.WARNING,
    "size",
    "`pip install` without `--no-cache-dir`",
    "pip keeps every downloaded wheel in ~/.cache/pip",
    "use `pip install --no-cache-dir ...` (or ENV PIP_NO_CACHE_DIR=1)",
    _dl3042,
)


def _clean_after(
    install: Callable[[Cmd], bool], clean: Callable[[Cmd], bool], mount: str | None
) -> Callable[[RunView, Instruction], bool]:
    def bad(view: RunView, inst: Instruction) -> bool:
        first = view.index(install)
        if first is None or (mount and _cache_mount(inst, mount)):
            return False
        cleaned = view.index(clean)
        return cleaned is None or cleaned < first

    return bad


_register(
    "DL3032",
    "yum-clean",
    S.WARNING,
    "size",
    "`yum clean all` missing after `yum install`",
    "yum keeps repository metadata and packages in /var/cache/yum",
    "end the RUN with `&& yum clean all`",
    _per_run(
        "yum install without yum clean all",
        _clean_after(
            lambda c: c.is_("yum", "install"),
            lambda c: (
                c.is_("yum", "clean", "all")
                or (c.name == "rm" and c.has_arg("-rf", "/var/cache/yum/*"))
            ),
            None,
        ),
    ),
)
_register(
    "DL3036",
    "zypper-clean",
    S.WARNING,
    "size",
    "`zypper clean` missing after `zypper install`",
    "zypper keeps its package cache in /var/cache/zypp",
    "end the RUN with `&& zypper clean`",
    _per_run(
        "zypper install without zypper clean",
        _clean_after(
            lambda c: c.is_("zypper", "install", "in"),
            lambda c: c.is_("zypper", "clean", "cc"),
            "/var/cache/zypp",
        ),
    ),
)


def _dnf_clean(view: RunView, inst: Instruction) -> bool:
    if _cache_mount(inst, "/var/cache/libdnf5") or _cache_mount(inst, ".cache/libdnf5"):
        return False
    subs = ("install", "in", "upgrade", "up", "upgrade-minimal", "up-min", "reinstall", "rei")
    for name in ("dnf", "microdnf"):
        first = view.index(lambda c, n=name: c.is_(n, *subs))
        if first is None:
            continue
        cleaned = view.index(
            lambda c, n=name: (
                c.is_(n, "clean", "all")
                or (c.name == "rm" and c.has_arg("-rf", "/var/cache/libdnf5*"))
            )
        )
        if cleaned is None or cleaned < first:
            return True
    return False


_register(
    "DL3040",
    "dnf-clean",
    S.WARNING,
    "size",
    "`dnf clean all` missing after `dnf install`",
    "dnf keeps repository metadata and packages in its cache",
    "end the RUN with `&& dnf clean all`",
    _per_run("dnf install without dnf clean all", _dnf_clean),
)


def _dl3060(ctx: LintContext) -> Iterator[Hit]:
    used_as_base = {st.parent.index for st in ctx.stages if st.parent is not None}
    for st in ctx.stages:
        if not st.final and st.index not in used_as_base:
            continue
        for inst in st.instructions:
            view = run_view(ctx, inst) if inst.cmd == "run" else None
            if view is None:
                continue
            first = view.index(lambda c: c.is_("yarn", "install"))
            if first is None:
                continue
            cleaned = view.index(lambda c: c.is_("yarn", "cache") and c.has_arg("clean"))
            if cleaned is None and _cache_mount(inst, ".cache/yarn"):
                continue
            if cleaned is None or cleaned < first:
                yield Hit(inst, "yarn install without yarn cache clean", beyond=view.beyond)


_register(
    "DL3060",
    "yarn-cache-clean",
    S.INFO,
    "size",
    "`yarn cache clean` missing after `yarn install`",
    "yarn keeps every package it installs in its global cache",
    "end the RUN with `&& yarn cache clean`",
    _dl3060,
)

# -- commands that do not belong in a Dockerfile -------------------------------------------

_INTERACTIVE = frozenset(
    {"free", "kill", "mount", "ps", "service", "shutdown", "ssh", "top", "vim"}
)

_register(
    "DL3001",
    "interactive-command",
    S.INFO,
    "correctness",
    "Command that makes no sense in a container build (ssh, vim, service, ps ...)",
    "a build has no terminal, no init system and no other processes to manage",
    "remove the command",
    _per_run("command that makes no sense in a build", _any(lambda c: c.name in _INTERACTIVE)),
)
_register(
    "DL3003",
    "cd-in-run",
    S.WARNING,
    "correctness",
    "`cd` in RUN instead of WORKDIR",
    "a `cd` only lasts for its RUN; WORKDIR states where later steps run and is easier to follow",
    "use WORKDIR to switch to a directory",
    _per_run("cd: use WORKDIR", _any(lambda c: c.name == "cd")),
    differs="none in the rule itself; `cd` inside a heredoc body is reported too",
)
_register(
    "DL3027",
    "apt-not-apt-get",
    S.WARNING,
    "correctness",
    "`apt` instead of `apt-get`",
    "apt's command line interface is not stable for scripts and it warns about it",
    "use apt-get or apt-cache",
    _per_run("apt is meant for interactive use", _any(lambda c: c.name == "apt")),
)
_register(
    "DL3035",
    "zypper-dist-upgrade",
    S.WARNING,
    "cache",
    "`zypper dist-upgrade` in a Dockerfile",
    "a distribution upgrade makes the image depend on the build day; use a newer base",
    "use a newer base image instead",
    _per_run("zypper dist-upgrade", _any(lambda c: c.is_("zypper", "dist-upgrade", "dup"))),
)


def _useradd_big(c: Cmd) -> bool:
    if c.name != "useradd" or c.has_flag("l", "no-log-init"):
        return False
    return c.has_flag("u", "uid") and any(len(v) > 5 for v in c.flag_args("u"))


_register(
    "DL3046",
    "useradd-no-log-init",
    S.WARNING,
    "size",
    "`useradd` with a high UID and without `-l`",
    "useradd writes a sparse lastlog/faillog entry sized by the UID, which a layer "
    "stores in full: gigabytes for a large UID",
    "add `-l` (`--no-log-init`)",
    _per_run("useradd -u <high uid> without -l", _any(_useradd_big)),
)


def _wget_noisy(c: Cmd) -> bool:
    if c.name != "wget" or c.has_flag("progress"):
        return False
    quiet = c.has_flag("q", "quiet", "o", "output-file", "a", "append-output", "no-verbose")
    return not (quiet or "-nv" in c.args)


_register(
    "DL3047",
    "wget-progress",
    S.INFO,
    "correctness",
    "`wget` without progress control",
    "wget's default progress bar floods the build log with thousands of lines",
    "use `wget --progress=dot:giga <url>`, or -q / -nv",
    _per_run("wget without --progress, -q or -nv", _any(_wget_noisy)),
)


def _dl4001(ctx: LintContext) -> Iterator[Hit]:
    for st in ctx.stages:
        seen: set[str] = set()
        for inst in st.instructions:
            view = run_view(ctx, inst) if inst.cmd == "run" else None
            if view is None:
                continue
            used = {n for n in view.names() if n in ("curl", "wget")}
            seen |= used
            if used and len(seen) >= 2:
                yield Hit(inst, "both curl and wget are used", beyond=view.beyond)


_register(
    "DL4001",
    "curl-and-wget",
    S.WARNING,
    "size",
    "Both wget and curl in one stage",
    "two download tools where one would do: more to install and ship",
    "use either wget or curl",
    _dl4001,
)
_register(
    "DL4005",
    "ln-bin-sh",
    S.WARNING,
    "correctness",
    "`ln ... /bin/sh` to change the shell",
    "replacing /bin/sh behind the builder's back affects every later RUN silently",
    "use SHELL to change the default shell",
    _per_run("ln to /bin/sh: use SHELL", _any(lambda c: c.is_("ln", "/bin/sh"))),
)


def _dl3004(ctx: LintContext) -> Iterator[Hit]:
    for inst, view in _runs(ctx):
        if "sudo" in view.names():
            yield Hit(inst, "RUN uses sudo", beyond=view.beyond)


_register(
    "DL3004",
    "sudo-in-run",
    S.ERROR,
    "security",
    "sudo in RUN",
    "sudo in an image means a setuid binary and a sudoers policy shipped for attackers",
    "switch with `USER root` for the step that needs it (or use gosu at run time)",
    _dl3004,
)


def _dl3015(ctx: LintContext) -> Iterator[Hit]:
    for inst, view in _runs(ctx):
        for c in view.commands:
            if c.is_("apt-get", "install") and not (
                c.has_flag("no-install-recommends") or "APT::Install-Recommends=false" in c.args
            ):
                yield Hit(
                    inst, "apt-get install without --no-install-recommends", beyond=view.beyond
                )
                break


_register(
    "DL3015",
    "apt-recommends",
    S.INFO,
    "size",
    "`apt-get install` without `--no-install-recommends`",
    "apt also installs recommended packages the image rarely needs",
    "add `--no-install-recommends`",
    _dl3015,
)


def _dl3059(ctx: LintContext) -> Iterator[Hit]:
    # Two RUNs in a row (comments between them allowed) with the same flags, each running
    # at most two commands: hadolint's definition of "could be one RUN".
    prev: tuple[list[str], int] | None = None
    for inst in ctx.dockerfile.instructions:
        if inst.cmd != "run":
            prev = None
            continue
        view = run_view(ctx, inst)
        # hadolint counts the commands of the RUN line (never a heredoc body), and counts
        # each one twice (ShellCheck's AST has a redirection node around every command),
        # so "at most two" means one command per RUN.
        count = 0 if view is None or view.heredoc else 2 * len(view.commands)
        flags = sorted(inst.flags)
        if prev is not None and prev[0] == flags and count <= 2 and prev[1] <= 2:
            yield Hit(inst, "consecutive RUN instructions", beyond=None)
        prev = (flags, count)


_register(
    "DL3059",
    "consecutive-run-hadolint",
    S.INFO,
    "layers",
    "Multiple consecutive RUN instructions",
    "each RUN is a layer; short consecutive RUNs can usually be one",
    "join the commands with `&&` in one RUN",
    _dl3059,
)


def _dl4006(ctx: LintContext) -> Iterator[Hit]:
    for st in ctx.stages:
        ok = False  # a SHELL with -o pipefail (or a non-POSIX shell) in this stage
        for inst in st.instructions:
            if inst.cmd == "shell" and inst.value:
                words = list(inst.value)
                prog = words[0].lower()
                if any(prog.startswith(p) for p in ("pwsh", "powershell", "cmd")):
                    ok = True
                else:
                    base = words[0].rsplit("/", 1)[-1]
                    ok = base in ("bash", "zsh", "ash") and "-o" in words and "pipefail" in words
                continue
            if inst.cmd != "run" or ok or inst.json:
                continue
            view = run_view(ctx, inst)
            if view is not None and view.has_pipe:
                yield Hit(inst, "a pipe failure would go unnoticed", beyond=view.beyond)


_register(
    "DL4006",
    "pipefail-hadolint",
    S.WARNING,
    "correctness",
    "Pipe in RUN without `SHELL [... -o pipefail ...]`",
    "`sh -c 'a | b'` only checks the last command, also inside `$(a | b)`, so a failed "
    "download still produces a 'successful' layer",
    'set `SHELL ["/bin/bash", "-o", "pipefail", "-c"]` before the RUN',
    _dl4006,
    differs="like hadolint, a pipe inside `$(...)` counts (a failure there is hidden too); "
    "pipes in heredoc bodies are reported as well",
)
