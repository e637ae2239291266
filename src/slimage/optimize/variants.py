"""The Dockerfiles of the generated variants.

Each generated Dockerfile is the user's own Dockerfile, byte for byte, with its last stage
named (it becomes the build stage), followed by a run-time stage that copies only the
app's files (see `appfiles`) onto a base: the same base (`multi-stage`), a `slimage base`
preset (`distroless`), or the `musl` preset. The run-time stage's command is always in
exec form with an absolute program, so it works without a shell.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from slimage.analysis.compat import ImageFiles
from slimage.dockerfile import Dockerfile, stages
from slimage.optimize.appfiles import AppFiles, find_program

PRESET_TAG = "slimage-base/{preset}:bookworm"
VARIANTS = ("as-written", "fixed", "multi-stage", "distroless", "musl", "minified")


class VariantSkipped(Exception):
    """This variant cannot be made for this app; the message says why (one line)."""


@dataclass
class Generated:
    text: str  # the whole Dockerfile
    base: str  # the run-time stage's FROM
    preset: str = ""  # the slimage base preset it needs, if any
    note: str = ""


def preset_tag(preset: str) -> str:
    return PRESET_TAG.format(preset=preset)


def build_stage_text(df: Dockerfile, build_args: dict[str, str]) -> tuple[str, str]:
    """The user's Dockerfile with its last stage named; (text, that name)."""
    st = stages(df, build_args)
    last = st[-1]
    if last.name:
        return df.text if df.text.endswith("\n") else df.text + "\n", last.name
    taken = {s.name for s in st if s.name}
    name = "build"
    n = 1
    while name in taken:
        n += 1
        name = f"build{n}"
    lines = list(df.lines)
    i = last.from_instruction.end_line - 1
    lines[i] = lines[i].rstrip("\r\n") + f" AS {name}\n"
    text = "".join(lines)
    return (text if text.endswith("\n") else text + "\n"), name


def _json(words: list[str]) -> str:
    return json.dumps(words)


def header(variant: str, dockerfile: str, context: str, preset: str) -> str:
    """The first comment: what this file is and how to build it with both engines."""
    lines = [
        f"# slimage optimize: the `{variant}` variant of {dockerfile}.",
        f"# Build it: slimage build -f THIS_FILE {context}",
    ]
    if preset:
        tag = preset_tag(preset)
        lines.append(
            f"# Its base comes from Debian packages: slimage base build {preset} -t {tag}; "
            "add --load to that command, and `docker build -f THIS_FILE "
            f"{context}` works too."
        )
    else:
        lines.append(f"# With Docker: docker build -f THIS_FILE {context}")
    return "\n".join(lines) + "\n"


def with_header(text: str, head: str) -> str:
    """HEAD placed after the parser directives (`# syntax=`, `# escape=`), which must stay
    the first lines of the file."""
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and re.match(r"^#\s*(syntax|escape|check)\s*=", lines[i], re.I):
        i += 1
    return "".join(lines[:i]) + head + "".join(lines[i:])


def _config_lines(cfg: dict, base_config: dict, *, same_base: bool) -> list[str]:
    """ENV, WORKDIR, USER, EXPOSE, STOPSIGNAL the user's stages set (not the base's)."""
    out: list[str] = []
    base_env = dict(e.split("=", 1) for e in base_config.get("Env") or [] if "=" in e)
    for item in cfg.get("Env") or []:
        k, _, v = item.partition("=")
        if base_env.get(k) == v or k == "PATH" and not same_base:
            continue
        out.append(f"ENV {k}={json.dumps(v)}")
    wd = cfg.get("WorkingDir") or ""
    if wd and wd != (base_config.get("WorkingDir") or ""):
        out.append(f"WORKDIR {wd}")
    user = cfg.get("User") or ""
    if user and (user != (base_config.get("User") or "") or not same_base):
        out.append(f"USER {user}")
    ports = sorted(cfg.get("ExposedPorts") or {})
    if ports:
        out.append("EXPOSE " + " ".join(ports))
    sig = cfg.get("StopSignal") or ""
    if sig:
        out.append(f"STOPSIGNAL {sig}")
    return out


def _copies(app: AppFiles, stage: str, extra: list[str]) -> list[str]:
    out = [f"COPY --from={stage} /{p} /{p}" for p in app.copy_roots]
    for d, paths in sorted(app.scattered.items()):
        srcs = [f"/{p}" for p in paths]
        out.append(f"COPY --from={stage} {_json([*srcs, '/' + d + '/'])}")
    for p in extra:
        out.append(f"COPY --from={stage} /{p} /{p}")
    return out


def _command(app: AppFiles, program: str, preset_entrypoint: list[str] | None) -> list[str]:
    """ENTRYPOINT/CMD in exec form, the program absolute, as the user split them."""
    assert app.entry is not None
    argv = [program, *app.entry.argv[1:]]
    if preset_entrypoint and preset_entrypoint[0] == program:
        return [f"ENTRYPOINT {_json(preset_entrypoint)}", f"CMD {_json(argv[1:])}"]
    n_ep = len(app.entry.entrypoint)
    if n_ep and not app.entry.note:
        return [f"ENTRYPOINT {_json(argv[:n_ep])}", f"CMD {_json(argv[n_ep:])}"]
    return [f"ENTRYPOINT {_json(argv)}", "CMD []"]


def runtime_stage(
    *,
    base: str,
    stage: str,
    app: AppFiles,
    config: dict,
    base_config: dict,
    program: str,
    same_base: bool,
    preset_entrypoint: list[str] | None = None,
    extra: list[str] | None = None,
    title: str,
) -> str:
    lines = [
        "",
        f"# {title}",
        f"FROM {base}",
        *_copies(app, stage, extra or []),
        *_config_lines(config, base_config, same_base=same_base),
        *_command(app, program, preset_entrypoint),
    ]
    return "\n".join(lines) + "\n"


def generate(
    variant: str,
    *,
    df: Dockerfile,
    build_args: dict[str, str],
    app: AppFiles,
    config: dict,
    base_ref: str,
    base_config: dict,
    target: ImageFiles | None = None,
    preset: str = "",
    preset_entrypoint: list[str] | None = None,
    context: str = ".",
) -> Generated:
    """The Dockerfile of VARIANT (multi-stage, distroless or musl). TARGET is the preset's
    files, where the run-time program must be found. Raises VariantSkipped."""
    assert app.entry is not None
    if not app.entry.argv:
        raise VariantSkipped("the image names no ENTRYPOINT or CMD to run")
    text, stage = build_stage_text(df, build_args)
    extra: list[str] = []
    if variant == "multi-stage":
        program = app.entry.argv[0]  # the same base: its PATH finds it as before
        base, same = base_ref, True
        title = "slimage optimize: the run-time stage, on the same base, with only the app's files"
    else:
        if app.entry.needs_shell:
            raise VariantSkipped(f"needs a shell: {app.entry.needs_shell}")
        assert target is not None
        if app.program_in_app:
            program = "/" + app.program
        else:
            found = find_program(target, app.entry.argv[0].rsplit("/", 1)[-1])
            if not found and app.program and variant == "musl":
                extra.append(app.program)
                found = app.program
            if not found:
                raise VariantSkipped(
                    f"the {preset} preset has no {app.entry.argv[0]} (the program CMD runs)"
                )
            program = "/" + found
        base, same = preset_tag(preset), False
        title = f"slimage optimize: the run-time stage, on slimage's {preset} base"
    body = runtime_stage(
        base=base,
        stage=stage,
        app=app,
        config=config,
        base_config=base_config,
        program=program,
        same_base=same,
        preset_entrypoint=preset_entrypoint,
        extra=extra,
        title=title,
    )
    head = header(variant, df.path, context, preset if not same else "")
    return Generated(with_header(text + body, head), base, preset if not same else "")
