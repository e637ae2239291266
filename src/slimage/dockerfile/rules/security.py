"""Rules about run-time risk: who the container runs as, how it starts, what it leaks."""

from __future__ import annotations

from collections.abc import Iterator

from slimage.dockerfile import shell
from slimage.dockerfile.model import Instruction
from slimage.dockerfile.rules import facts
from slimage.dockerfile.rules.base import Hit, LintContext, Severity, rule

_ROOT = frozenset({"root", "0", "root:root", "0:0", "root:0", "0:root"})


def _last_user(ctx: LintContext) -> Instruction | None:
    final = ctx.final
    if final is None:
        return None
    last = None
    for inst in final.all_instructions():
        if inst.cmd == "user":
            last = inst
    return last


@rule(
    "SL301",
    "user-root",
    Severity.WARNING,
    category="security",
    hadolint="DL3002",
    summary="The final USER is root",
    why="a process running as root in the container is root on the host's kernel: any "
    "escape or writable mount is a full compromise",
    fix="create an unprivileged user and switch to it (`USER app` or `USER 10001`) at the "
    "end of the final stage",
)
def user_root(ctx: LintContext) -> Iterator[Hit]:
    last = _last_user(ctx)
    if last is not None and last.value and last.value[0].strip() in _ROOT:
        yield Hit(last, "the container runs as root")


@rule(
    "SL302",
    "user-missing",
    Severity.WARNING,
    category="security",
    summary="No USER in the final image: it runs as root",
    why="without USER the container's processes run as root (uid 0), so any escape or "
    "writable mount is a full compromise",
    fix="create an unprivileged user and add `USER app` (or a numeric `USER 10001`) to "
    "the final stage",
)
def user_missing(ctx: LintContext) -> Iterator[Hit]:
    final = ctx.final
    if final is None or _last_user(ctx) is not None:
        return
    root = final.root_base
    if facts.runs_as_nonroot_by_default(root) or root.lower() == "scratch":
        return
    yield Hit(final.from_inst, f"no USER: the image runs as root (base {root})")


def _start_commands(ctx: LintContext) -> Iterator[Instruction]:
    final = ctx.final
    if final is None:
        return
    for inst in final.all_instructions():
        if inst.cmd in ("cmd", "entrypoint"):
            yield inst


@rule(
    "SL303",
    "shell-form-cmd",
    Severity.WARNING,
    category="security",
    hadolint="DL3025",
    summary="Shell-form CMD/ENTRYPOINT",
    why="the shell becomes PID 1 and does not forward SIGTERM, so `docker stop` waits "
    "10 s then kills the app without a clean shutdown; it also needs /bin/sh, which "
    "distroless images do not have",
    fix='use the exec (JSON) form: CMD ["node", "server.js"]',
    fixable=True,
)
def shell_form(ctx: LintContext) -> Iterator[Hit]:
    for inst in _start_commands(ctx):
        if not inst.json and inst.value:
            yield Hit(inst, f"{inst.cmd.upper()} {inst.value[0]} runs under /bin/sh -c")


_RUNNERS = frozenset({"npm", "yarn", "pnpm"})


@rule(
    "SL304",
    "npm-start",
    Severity.WARNING,
    category="security",
    summary="`npm start` / `yarn start` as the container command",
    why="npm becomes PID 1: it does not forward SIGTERM to node, adds ~40 MB of npm to "
    "the image and a second process, and hides the real command",
    fix='run node directly: CMD ["node", "index.js"] (what the "start" script runs)',
)
def npm_start(ctx: LintContext) -> Iterator[Hit]:
    for inst in _start_commands(ctx):
        if inst.json:
            words = list(inst.value)
        elif inst.value:
            script = shell.split(inst.value[0])
            words = script.commands[0].unwrapped() if script.commands else []
        else:
            words = []
        if not words:
            continue
        prog = words[0].rsplit("/", 1)[-1]
        if prog in _RUNNERS and len(words) >= 2 and words[1] in ("start", "run", "run-script"):
            yield Hit(inst, f"`{' '.join(words[:3])}` starts the app through {prog}")


@rule(
    "SL305",
    "secret-in-arg-env",
    Severity.ERROR,
    category="security",
    summary="Secret passed through ARG or ENV",
    why="ENV values are stored in the image config and ARG values in its history: "
    "anyone who can pull the image can read them",
    fix="use a build secret (`RUN --mount=type=secret,id=...`) or provide it at run time",
)
def secrets(ctx: LintContext) -> Iterator[Hit]:
    for st in ctx.stages:
        for inst in [st.from_inst, *st.instructions]:
            if inst.cmd == "env":
                names = inst.value[0::3]
            elif inst.cmd == "arg":
                names = [w.partition("=")[0] for w in inst.value]
            else:
                continue
            for name in names:
                if facts.looks_secret(name):
                    yield Hit(inst, f"{inst.cmd.upper()} {name} looks like a secret")
                    break
    # Global ARGs before the first FROM.
    for inst in ctx.dockerfile.instructions:
        if inst.cmd == "from":
            break
        if inst.cmd == "arg":
            for word in inst.value:
                name = word.partition("=")[0]
                if facts.looks_secret(name):
                    yield Hit(inst, f"ARG {name} looks like a secret")
                    break


@rule(
    "SL306",
    "sudo",
    Severity.WARNING,
    category="security",
    hadolint="DL3004",
    summary="sudo in RUN",
    why="RUN already runs as the current USER; sudo in an image means a setuid binary "
    "and a sudoers policy shipped for attackers to use",
    fix="switch with `USER root` for the step that needs it, then back",
)
def sudo(ctx: LintContext) -> Iterator[Hit]:
    for _st, inst in ctx.instructions("run"):
        script = ctx.script(inst)
        if script is None:
            continue
        if any(c.argv() and c.argv()[0].rsplit("/", 1)[-1] == "sudo" for c in script.commands):
            yield Hit(inst, "RUN uses sudo")
