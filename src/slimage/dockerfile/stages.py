"""Stage view over a parsed Dockerfile: FROMs, their names, bases and global ARGs.

BuildKit resolves `FROM ${BASE}` with the ARGs declared before the first FROM ("meta
args"), the `--build-arg` values and the automatic platform args (`TARGETARCH`, ...);
nothing declared inside a stage is visible there. The builder's planner, the linter and
the fixer all need that exact view, so this is the only place that splits a Dockerfile
into stages (they once had three splitters, and they disagreed).
"""

from __future__ import annotations

import platform as _platform
from collections.abc import Mapping

from slimage.dockerfile.commands import arg_pairs
from slimage.dockerfile.expand import ExpansionError, ShellLex
from slimage.dockerfile.model import Dockerfile, Instruction, Stage
from slimage.errors import DockerfileError

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def host_platform() -> str:
    """`linux/<arch>` of this machine, in OCI spelling."""
    machine = _platform.machine().lower()
    return f"linux/{_ARCH.get(machine, machine)}"


def platform_args(
    target_platform: str | None = None,
    build_platform: str | None = None,
    target_stage: str = "default",
) -> dict[str, str]:
    """BuildKit's automatic args (BUILDPLATFORM, TARGETOS, TARGETARCH, ...)."""
    bp = build_platform or host_platform()
    tp = target_platform or bp
    out: dict[str, str] = {}
    for prefix, plat in (("BUILD", bp), ("TARGET", tp)):
        parts = plat.split("/")
        out[prefix + "PLATFORM"] = plat
        out[prefix + "OS"] = parts[0]
        out[prefix + "OSVERSION"] = ""
        out[prefix + "ARCH"] = parts[1] if len(parts) > 1 else ""
        out[prefix + "VARIANT"] = parts[2] if len(parts) > 2 else ""
    out["TARGETSTAGE"] = target_stage
    return out


def global_args(dockerfile: Dockerfile) -> list[Instruction]:
    """ARG instructions before the first FROM (BuildKit's meta args)."""
    out: list[Instruction] = []
    for inst in dockerfile.instructions:
        if inst.cmd == "from":
            break
        if inst.cmd == "arg":
            out.append(inst)
    return out


def meta_args(
    dockerfile: Dockerfile,
    build_args: Mapping[str, str] | None = None,
    *,
    defaults: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The variables visible to FROM lines: platform args, then each global ARG
    (a `--build-arg` wins over its default; defaults are expanded in order)."""
    build_args = build_args or {}
    env: dict[str, str] = dict(platform_args() if defaults is None else defaults)
    for key in env:
        if key in build_args:
            env[key] = build_args[key]
    lex = ShellLex(dockerfile.escape)
    for inst in global_args(dockerfile):
        for key, value in arg_pairs(inst):
            if key in build_args:
                value = build_args[key]
            elif value is not None:
                try:
                    value = lex.process_word(value, env)
                except ExpansionError as exc:
                    raise _err(dockerfile, inst, str(exc)) from None
            if value is not None:
                env[key] = value
    return env


def global_arg_values(
    dockerfile: Dockerfile,
    build_args: Mapping[str, str] | None = None,
    *,
    defaults: Mapping[str, str] | None = None,
) -> dict[str, str | None]:
    """Each ARG declared before the first FROM -> its value (None: declared, no value).
    An `ARG X` inside a stage, without a default, takes this value (BuildKit)."""
    env = meta_args(dockerfile, build_args, defaults=defaults)
    return {key: env.get(key) for inst in global_args(dockerfile) for key, _ in arg_pairs(inst)}


def _err(dockerfile: Dockerfile, inst: Instruction, message: str) -> DockerfileError:
    return DockerfileError(message, file=dockerfile.path, line=inst.start_line, col=1)


def stages(
    dockerfile: Dockerfile,
    build_args: Mapping[str, str] | None = None,
    *,
    defaults: Mapping[str, str] | None = None,
    strict: bool = True,
) -> list[Stage]:
    """Split instructions into stages; bases and platforms expanded with the meta ARGs,
    the platform args (`defaults`, else this host's) and `build_args`.

    `strict=False` is the linter's view: a base or platform that cannot be expanded (a
    `FROM ${BASE}` that needs a --build-arg) is kept as written instead of refused."""
    try:
        env = meta_args(dockerfile, build_args, defaults=defaults)
    except DockerfileError:
        if strict:
            raise
        env = dict(platform_args() if defaults is None else defaults)
    lex = ShellLex(dockerfile.escape)

    def expand(inst: Instruction, word: str, what: str) -> str:
        try:
            value = lex.process_word(word, env)
        except ExpansionError as exc:
            if strict:
                raise _err(dockerfile, inst, str(exc)) from None
            return word
        if not value:
            if strict:
                raise _err(dockerfile, inst, what)
            return word
        return value

    out: list[Stage] = []
    for inst in dockerfile.instructions:
        if inst.cmd == "from":
            args = inst.value
            if not args:
                if strict:
                    raise _err(dockerfile, inst, "FROM requires either one or three arguments")
                args = [""]
            name = args[2].lower() if len(args) == 3 and args[1].lower() == "as" else None
            base = expand(inst, args[0], f"base name ({args[0]}) should not be blank")
            plat = inst.flag("platform")
            plat_expanded = None
            if plat:
                plat_expanded = expand(inst, plat, f"empty platform value from expression {plat}")
            out.append(
                Stage(
                    index=len(out),
                    name=name,
                    base=args[0],
                    base_expanded=base,
                    platform=plat,
                    from_instruction=inst,
                    platform_expanded=plat_expanded,
                )
            )
        elif out:
            out[-1].instructions.append(inst)
    return out
