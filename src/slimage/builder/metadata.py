"""Metadata steps: typed commands that change the image config (and WORKDIR's directory).

Each takes its typed command from `slimage.dockerfile.commands`, expands what BuildKit
expands with the stage's variables, and writes the config field and history text BuildKit
writes, so configs and histories match `docker build` byte for byte.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from slimage.builder import history as hist
from slimage.builder.cache import step_key
from slimage.builder.steps import StageSteps
from slimage.dockerfile.commands import (
    ArgCommand,
    CmdCommand,
    EntrypointCommand,
    EnvCommand,
    ExposeCommand,
    HealthcheckCommand,
    LabelCommand,
    MaintainerCommand,
    OnbuildCommand,
    ShellCommand,
    StopSignalCommand,
    UserCommand,
    VolumeCommand,
    WorkdirCommand,
)
from slimage.dockerfile.expand import expand_words
from slimage.fs.rootpath import mkdir_p

if TYPE_CHECKING:
    from slimage.runtime.layerdirs import Workspace


class MetadataSteps(StageSteps):
    """ENV, LABEL, ARG, USER, EXPOSE, VOLUME, STOPSIGNAL, SHELL, CMD, ENTRYPOINT,
    HEALTHCHECK, ONBUILD, MAINTAINER (config only) and WORKDIR (a layer when not /)."""

    def do_env(self, cmd: EnvCommand) -> None:
        pairs = cmd.expanded(self.state.expand_env())
        for k, val in pairs:
            self.state.set_env(k, val)
        self.state.key = step_key(self.state.key, "ENV", pairs)
        self._meta("ENV " + " ".join(f"{k}={val}" for k, val in pairs))

    def do_label(self, cmd: LabelCommand) -> None:
        pairs = cmd.expanded(self.state.expand_env())
        labels = dict(self.state.config.get("Labels") or {})
        for k, val in pairs:
            labels[k] = val
        self.state.config["Labels"] = labels
        self.state.key = step_key(self.state.key, "LABEL", pairs)
        self._meta("LABEL " + " ".join(f"{k}={val}" for k, val in pairs))

    def do_maintainer(self, cmd: MaintainerCommand) -> None:
        text = cmd.author
        self.state.data["author"] = text
        self.state.key = step_key(self.state.key, "MAINTAINER", text)
        self._meta("MAINTAINER " + text)

    def do_arg(self, cmd: ArgCommand) -> None:
        texts = []
        for k, v in cmd.args:
            if k in self.s.build_args:
                val: str | None = self.s.build_args[k]
            elif v is not None:
                val = self._x(v)
            elif k in self.meta_args and self.meta_args[k] is not None:
                val = self.meta_args[k]
            else:
                val = self.platform_args.get(k)
            self.state.args[k] = val
            if k not in self.state.arg_order:
                self.state.arg_order.append(k)
            texts.append(k if v is None else f"{k}={v}")
        self.state.key = step_key(
            self.state.key, "ARG", [(k, self.state.args[k]) for k in self.state.arg_order]
        )
        self._meta("ARG " + " ".join(texts))

    def do_user(self, cmd: UserCommand) -> None:
        user = self._x(cmd.word)
        self.state.config["User"] = user
        self.state.key = step_key(self.state.key, "USER", user)
        self._meta("USER " + user)

    def do_expose(self, cmd: ExposeCommand) -> None:
        env = self.state.expand_env()
        ports: list[str] = []
        for w in cmd.ports:
            for p in expand_words(w, env, self.escape):
                ports.extend(_expand_port(p))
        exposed = dict(self.state.config.get("ExposedPorts") or {})
        for p in ports:
            exposed[p] = {}
        self.state.config["ExposedPorts"] = exposed
        self.state.key = step_key(self.state.key, "EXPOSE", ports)
        self._meta("EXPOSE " + hist.v_port_map(ports))

    def do_volume(self, cmd: VolumeCommand) -> None:
        vols = [self._x(v) for v in cmd.volumes]
        volumes = dict(self.state.config.get("Volumes") or {})
        for v in vols:
            volumes[v] = {}
        self.state.config["Volumes"] = volumes
        self.state.key = step_key(self.state.key, "VOLUME", vols)
        self._meta("VOLUME " + hist.v_list(vols))

    def do_stopsignal(self, cmd: StopSignalCommand) -> None:
        sig = self._x(cmd.word)
        self.state.config["StopSignal"] = sig
        self.state.key = step_key(self.state.key, "STOPSIGNAL", sig)
        self._meta("STOPSIGNAL " + sig)

    def do_shell(self, cmd: ShellCommand) -> None:
        self.state.config["Shell"] = list(cmd.shell)
        self.state.key = step_key(self.state.key, "SHELL", cmd.shell)
        self._meta("SHELL " + hist.v_list(cmd.shell))

    def _argv(self, cmd: CmdCommand | EntrypointCommand) -> list[str]:
        """Exec form as written; shell form behind the stage's SHELL."""
        if not cmd.prepend_shell:
            return list(cmd.cmdline)
        return self._shell() + [cmd.cmdline[0] if cmd.cmdline else ""]

    def do_cmd(self, cmd: CmdCommand) -> None:
        args = self._argv(cmd)
        self.state.config["Cmd"] = args
        self.state.config["ArgsEscaped"] = True
        self.state.cmd_set = True
        self.state.key = step_key(self.state.key, "CMD", args)
        self._meta("CMD " + hist.q_list(args))

    def do_entrypoint(self, cmd: EntrypointCommand) -> None:
        args = self._argv(cmd)
        self.state.config["Entrypoint"] = args
        self.state.config["ArgsEscaped"] = True
        if not self.state.cmd_set:
            self.state.config["Cmd"] = None
        self.state.key = step_key(self.state.key, "ENTRYPOINT", args)
        self._meta("ENTRYPOINT " + hist.q_list(args))

    def do_healthcheck(self, cmd: HealthcheckCommand) -> None:
        health = cmd.config()
        self.state.config["Healthcheck"] = health
        self.state.key = step_key(self.state.key, "HEALTHCHECK", health)
        self._meta(hist.healthcheck_text(health))

    def do_onbuild(self, cmd: OnbuildCommand) -> None:
        text = cmd.expression
        triggers = list(self.state.config.get("OnBuild") or [])
        triggers.append(text)
        self.state.config["OnBuild"] = triggers
        self.state.key = step_key(self.state.key, "ONBUILD", text)

    def do_workdir(self, cmd: WorkdirCommand) -> None:
        path = self._x(cmd.word)
        cur = self.state.config.get("WorkingDir") or "/"
        wd = (
            posixpath.normpath(posixpath.join(cur, path))
            if not path.startswith("/")
            else posixpath.normpath(path)
        )
        if wd.startswith("//"):
            wd = wd[1:]
        self.state.config["WorkingDir"] = wd
        if wd == "/":
            self.state.key = step_key(self.state.key, "WORKDIR", wd)
            self._meta("WORKDIR " + wd)
            self.s.progress.done()
            return
        user = self.state.config.get("User") or ""
        key = step_key(self.state.key, "WORKDIR", wd, user)

        def action(ws: Workspace) -> None:
            uid, gid = self._user_ids(ws.merged, user) if user else (0, 0)
            mkdir_p(str(ws.merged), wd, uid, gid)

        self._layer_step(key, "WORKDIR " + wd, action)


def _expand_port(p: str) -> list[str]:
    proto = "tcp"
    if "/" in p:
        p, proto = p.split("/", 1)
    if ":" in p:
        p = p.rsplit(":", 1)[1]
    if "-" in p:
        a, b = p.split("-", 1)
        return [f"{n}/{proto.lower()}" for n in range(int(a), int(b) + 1)]
    return [f"{p}/{proto.lower()}"]
