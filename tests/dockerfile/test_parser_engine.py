"""Differential check of variable expansion against the real Docker engine.

A `FROM scratch` Dockerfile made only of metadata instructions builds without running
anything; the engine's image config then shows exactly how it expanded each ENV, LABEL,
WORKDIR, USER, EXPOSE and STOPSIGNAL. We compute the same values from our parse tree.
(The engine here is 20.10 without buildx, so this is the classic builder, which uses
BuildKit's shell lexer of its time: the non-colon `${V-w}`/`${V+w}` forms, added to
BuildKit later, are covered by unit tests instead.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from slimage.dockerfile import expand_args, parse, stages
from slimage.dockerfile.commands import cmdline, healthcheck, key_values, prepends_shell
from slimage.dockerfile.stages import arg_pairs

DOCKERFILE = r"""FROM scratch
ARG VERSION=1.2
ARG EMPTY=
ENV A=1 B="two words" C='single $A' D=pre\ $A\ post
ENV LEGACY value with  spaces $A
ENV E=${A}x F=${UNSET:-dflt} G=${EMPTY:-e} I=${A:+set} Z=${UNSET:+set}
ENV L="${B}" M=\$A N="a\"b" O=$VERSION P="${VERSION:-none}-$A" Q=a'b c'd
LABEL version="$VERSION" "with space"="x y" plain=$B
WORKDIR /srv/${A}/app
USER ${UNSET:-app}:${A}
EXPOSE ${PORT:-8080} 9${A}/udp
STOPSIGNAL SIG${UNSET:-TERM}
"""


def our_config(text: str) -> dict[str, object]:
    """Walk the single stage the way the builder does: each instruction is expanded with
    the variables set *before* it (ARG defaults and ENV)."""
    df = parse(text)
    (stage,) = stages(df)
    env: dict[str, str] = {}
    args: dict[str, str] = {}
    labels: dict[str, str] = {}
    ports: set[str] = set()
    single: dict[str, str] = {}
    for inst in stage.instructions:
        scope = {**args, **env}
        if inst.cmd == "arg":
            for word, (key, value) in zip(expand_args(inst, scope), arg_pairs(inst), strict=True):
                if value is not None:
                    args[key] = word.partition("=")[2]
        elif inst.cmd == "env":
            env.update(key_values(inst, scope))
        elif inst.cmd == "label":
            labels.update(key_values(inst, scope))
        elif inst.cmd == "expose":
            ports.update(p if "/" in p else p + "/tcp" for p in expand_args(inst, scope))
        elif inst.cmd in ("workdir", "user", "stopsignal"):
            key = {"workdir": "WorkingDir", "user": "User", "stopsignal": "StopSignal"}[inst.cmd]
            single[key] = expand_args(inst, scope)[0]
    return {"Env": env, "Labels": labels, "ExposedPorts": ports, **single}


def test_our_expansion_without_engine() -> None:
    env = our_config(DOCKERFILE)["Env"]
    assert isinstance(env, dict)
    assert env["D"] == "pre  post"  # A is not set yet on its own ENV line
    assert env["E"] == "1x" and env["P"] == "1.2-1" and env["Q"] == "ab cd"


@pytest.mark.docker
def test_expansion_matches_the_engine(tmp_path: Path, docker_engine: str) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    tag = f"slimage-test/expand-{uuid.uuid4().hex[:12]}"
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    subprocess.run(
        [docker_engine, "build", "-q", "--network", "host", "-t", tag, str(tmp_path)],
        check=True,
        capture_output=True,
        env=env,
    )
    try:
        out = subprocess.run(
            [docker_engine, "image", "inspect", tag, "--format", "{{json .Config}}"],
            check=True,
            capture_output=True,
        ).stdout
    finally:
        subprocess.run([docker_engine, "rmi", tag], capture_output=True)
    engine = json.loads(out)
    ours = our_config(DOCKERFILE)
    engine_env = dict(e.split("=", 1) for e in engine["Env"])
    engine_env.pop("PATH", None)  # the engine's default for scratch
    assert ours["Env"] == engine_env
    assert ours["Labels"] == engine["Labels"]
    assert ours["WorkingDir"] == engine["WorkingDir"]
    assert ours["User"] == engine["User"]
    assert ours["StopSignal"] == engine["StopSignal"]
    assert ours["ExposedPorts"] == set(engine["ExposedPorts"])


FORMS = """\
# escape=`
FROM scratch
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
LABEL a=one `
# a comment inside the continuation
    b=two

LABEL c="C:\\path" d=x`
y `

  e=z
ONBUILD RUN echo hi
onbuild  COPY --from=x a b
ENTRYPOINT ['single', 'quoted']
CMD [ "exec",\t"form" ]
HEALTHCHECK --interval=1m30s --timeout=3s --retries=2 CMD curl -f http://localhost/ || exit 1
STOPSIGNAL 9
"""


def our_forms(text: str) -> dict[str, object]:
    """Config fields that depend on parsing alone: exec vs shell form (with the JSON
    fallback), SHELL, continuations with comments and empty lines, a backtick escape,
    ONBUILD triggers and HEALTHCHECK options."""
    df = parse(text)
    shell = ["/bin/sh", "-c"]
    out: dict[str, object] = {"Labels": {}, "OnBuild": []}
    for inst in df.instructions[1:]:
        if inst.cmd == "shell":
            shell = cmdline(inst)
            out["Shell"] = shell
        elif inst.cmd in ("cmd", "entrypoint"):
            key = "Cmd" if inst.cmd == "cmd" else "Entrypoint"
            out[key] = (shell + cmdline(inst)) if prepends_shell(inst) else cmdline(inst)
        elif inst.cmd == "label":
            out["Labels"].update(key_values(inst, {}, df.escape))  # type: ignore[attr-defined]
        elif inst.cmd == "onbuild":
            out["OnBuild"].append(re.sub(r"(?i)^\s*ONBUILD\s*", "", inst.original))  # type: ignore[attr-defined]
        elif inst.cmd == "healthcheck":
            out["Healthcheck"] = healthcheck(inst)
        elif inst.cmd == "stopsignal":
            out["StopSignal"] = inst.value[0]
    return out


@pytest.mark.docker
def test_forms_match_the_engine(tmp_path: Path, docker_engine: str) -> None:
    (tmp_path / "Dockerfile").write_text(FORMS)
    tag = f"slimage-test/forms-{uuid.uuid4().hex[:12]}"
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    subprocess.run(
        [docker_engine, "build", "-q", "--network", "host", "-t", tag, str(tmp_path)],
        check=True,
        capture_output=True,
        env=env,
    )
    try:
        out = subprocess.run(
            [docker_engine, "image", "inspect", tag, "--format", "{{json .Config}}"],
            check=True,
            capture_output=True,
        ).stdout
    finally:
        subprocess.run([docker_engine, "rmi", tag], capture_output=True)
    engine = json.loads(out)
    ours = our_forms(FORMS)
    for key in ("Shell", "Entrypoint", "Cmd", "Labels", "OnBuild", "Healthcheck", "StopSignal"):
        assert ours[key] == engine[key], key
