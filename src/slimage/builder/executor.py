"""The stage executor: one stage at a time, one typed command at a time.

The planner hands over stages whose instructions are already typed and checked
(`slimage.dockerfile.commands`); this module starts a stage from its base and dispatches
each command on its type to the step family that handles it:

- `state`: the stage under construction and the build's settings;
- `baseimage`: FROM's base, from the store or pulled;
- `steps`: expansion, history entries, the cached layer step;
- `metadata`, `copyadd`, `run`: the steps themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slimage.builder.baseimage import base_config, open_base
from slimage.builder.cache import step_key
from slimage.builder.copyadd import CopyAddSteps
from slimage.builder.metadata import MetadataSteps
from slimage.builder.run import RunSteps
from slimage.builder.state import BuildSettings, StageState, rfc3339
from slimage.dockerfile.commands import (
    AddCommand,
    ArgCommand,
    CmdCommand,
    Command,
    CopyCommand,
    EntrypointCommand,
    EnvCommand,
    ExposeCommand,
    HealthcheckCommand,
    LabelCommand,
    MaintainerCommand,
    OnbuildCommand,
    RunCommand,
    ShellCommand,
    StopSignalCommand,
    UserCommand,
    VolumeCommand,
    WorkdirCommand,
    command_of,
)
from slimage.errors import BuildError
from slimage.runtime.spec import DEFAULT_PATH


class StageExecutor(MetadataSteps, CopyAddSteps, RunSteps):
    """Runs one planned stage: FROM (`start`), ONBUILD triggers, then each typed
    command, dispatched on its type."""

    def start(self) -> StageState:
        st = self.stage
        prev = self.resolve_stage(st.base) if st.from_stage is not None else None
        if prev is not None:
            state = prev.derive()
        elif st.base == "scratch":
            state = StageState(self.s.store, None, step_key("", "scratch"))
            # BuildKit's emptyImage: PATH and WorkingDir "/" are set from the start.
            state.data["config"] = {"Env": [f"PATH={DEFAULT_PATH}"], "WorkingDir": "/"}
        else:
            manifest, config = base_config(self.s.store, st.base)
            state = StageState(
                self.s.store, (manifest, config), step_key("", "from", config.digest)
            )
        state.name = st.label
        if not any(e.startswith("PATH=") for e in state.config.get("Env") or []):
            state.config["Env"] = [f"PATH={DEFAULT_PATH}", *(state.config.get("Env") or [])]
        self.state = state
        return state

    def onbuild_triggers(self) -> list[Command]:
        triggers = self.state.config.get("OnBuild") or []
        if not triggers:
            return []
        from slimage.dockerfile import parse

        self.state.config["OnBuild"] = None
        out: list[Command] = []
        for text in triggers:
            # A trigger is one instruction; parse it behind a FROM so it is a valid file.
            df = parse("FROM scratch\n" + text + "\n", path=f"{self.stage.base} ONBUILD")
            out.extend(command_of(inst, df) for inst in df.instructions[1:])
        return out

    def execute(self, cmd: Command, label: str) -> None:
        """Run one typed command; the handler is chosen by the command's type."""
        handler = self._handlers().get(type(cmd))
        inst = cmd.inst
        if handler is None:  # pragma: no cover - every typed command has a handler
            raise BuildError(
                f"{self.path}:{inst.start_line}: unknown instruction {inst.keyword or inst.cmd}"
            )
        layered = isinstance(cmd, (RunCommand, CopyCommand, WorkdirCommand))
        self.s.progress.step(f"[{label}] {inst.original}")
        try:
            handler(cmd)
        except BuildError as err:
            self.s.progress.error(str(err), getattr(err, "tail", None))
            raise
        if not layered:
            self.s.progress.done()

    def _handlers(self) -> dict[type[Command], Callable[[Any], None]]:
        return {
            EnvCommand: self.do_env,
            LabelCommand: self.do_label,
            MaintainerCommand: self.do_maintainer,
            ArgCommand: self.do_arg,
            UserCommand: self.do_user,
            ExposeCommand: self.do_expose,
            VolumeCommand: self.do_volume,
            StopSignalCommand: self.do_stopsignal,
            ShellCommand: self.do_shell,
            CmdCommand: self.do_cmd,
            EntrypointCommand: self.do_entrypoint,
            HealthcheckCommand: self.do_healthcheck,
            OnbuildCommand: self.do_onbuild,
            WorkdirCommand: self.do_workdir,
            CopyCommand: self.do_copy,
            AddCommand: self.do_add,
            RunCommand: self.do_run,
        }


__all__ = ["BuildSettings", "StageExecutor", "StageState", "base_config", "open_base", "rfc3339"]
