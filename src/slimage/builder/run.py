"""RUN steps: the command in a runc container over the stage's rootfs, and its mounts.

Mounts come typed from `RunCommand.mounts()` (the one `--mount` parser, values expanded
with the stage's variables): secrets and caches from the store, tmpfs, bind mounts of the
context (a throw-away copy when written to or partly ignored) or of another stage/image.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slimage.builder import history as hist
from slimage.builder.baseimage import open_base
from slimage.builder.cache import step_key
from slimage.builder.steps import StageSteps
from slimage.dockerfile.commands import (
    RunCommand,
)
from slimage.dockerfile.model import Instruction
from slimage.errors import BuildError
from slimage.fs.rootpath import resolve_in_root
from slimage.runtime.spec import bind

if TYPE_CHECKING:
    from slimage.image import Layer
    from slimage.runtime.layerdirs import Workspace


class RunSteps(StageSteps):
    """RUN: the command line (shell form, exec form, heredoc script) and its mounts."""

    def do_run(self, cmd: RunCommand) -> None:
        st = self.state
        shell = self._shell()
        script: tuple[str, str] | None = None
        cmdline = cmd.cmdline[0] if cmd.cmdline else ""
        if not cmd.prepend_shell:
            args = list(cmd.cmdline)
        elif cmd.files:
            h0 = cmd.heredoc_script()
            if h0 is not None:
                if h0.text().startswith("#!"):
                    # A script with its own interpreter: BuildKit mounts it and runs it.
                    script = (f"/dev/pipes/{h0.name}", h0.text())
                    args = [script[0]]
                else:
                    args = shell + [h0.text()]
            else:
                body = cmdline + "\n" + "".join(h.content + h.name + "\n" for h in cmd.files)
                args = shell + [body]
        else:
            args = shell + [cmdline]
        build_args = [(k, st.args[k] or "") for k in st.arg_order if st.args.get(k) is not None]
        created_by = hist.run_text(args, build_args)
        env_list = list(st.config.get("Env") or [])
        envmap = st.env_map()
        for k, v in build_args:
            if k not in envmap:
                env_list.append(f"{k}={v}")
        network = (cmd.network or self.s.network or "host").replace("default", "host")
        mounts, mount_key = self._run_mounts(cmd)
        user = st.config.get("User") or ""
        cwd = st.config.get("WorkingDir") or "/"
        key = step_key(st.key, "RUN", args, env_list, user, cwd, network, mount_key, script)

        def action(ws: Workspace) -> None:
            from slimage.builder.runner import RunRequest, run_in
            from slimage.runtime.users import resolve_user

            u = resolve_user(ws.merged, user)
            env = list(env_list)
            if not any(e.startswith("HOME=") for e in env):
                env.append(f"HOME={u.home}")
            with contextlib.ExitStack() as stack:
                final = []
                if script is not None:
                    path = ws.path / "heredoc-script"
                    path.write_text(script[1])
                    path.chmod(0o755)
                    final.append(bind(str(path), script[0], readonly=True))
                for i, mnt in enumerate(mounts):
                    if "_copy" in mnt:
                        copy_dir = ws.path / "mount-copies" / str(i)
                        copied = self.s.context.materialize(mnt["_copy"], copy_dir)
                        final.append(
                            {k: v for k, v in mnt.items() if k != "_copy"} | {"source": str(copied)}
                        )
                        continue
                    if "_from" not in mnt:
                        final.append(mnt)
                        continue
                    # `--mount=type=bind,from=X`: X's rootfs, read-only, for this RUN only.
                    layers_of, source = mnt["_from"]
                    lowers = self.s.layerdirs.ensure_all(layers_of())
                    view = stack.enter_context(self.s.layerdirs.workspace(lowers, writable=False))
                    host = resolve_in_root(str(view.merged), source)
                    if not os.path.exists(host):
                        raise BuildError(f"--mount from: {source} not found")
                    final.append({k: v for k, v in mnt.items() if k != "_from"} | {"source": host})
                req = RunRequest(args, env, cwd, u.uid, u.gid, u.additional_gids, network, final)
                run_in(
                    ws.merged,
                    ws.path / "bundle",
                    req,
                    runtime=self.s.runtime,
                    on_output=self.s.progress.output,
                )

        self._layer_step(key, created_by, action)

    def _mount_source(self, ref: str, inst: Instruction) -> tuple[Callable[[], list[Layer]], str]:
        """Layers (opened lazily) and cache identity of a stage or image named by `from=`."""
        from_state = self.resolve_stage(ref)
        if from_state is not None:
            state = from_state
            return (lambda: self.s.layers_of(state)), state.key
        try:
            image = open_base(self.s.store, ref)
        except BuildError:
            raise BuildError(
                f"{self.path}:{inst.start_line}: --mount from={ref}: no such stage or image"
            ) from None
        return (lambda: list(image.layers)), image.id

    def _run_mounts(self, cmd: RunCommand) -> tuple[list[dict[str, Any]], list[Any]]:
        inst = cmd.inst
        mounts: list[dict[str, Any]] = []
        keyparts: list[Any] = []
        for m in cmd.mounts(self._x):
            mtype = m.type
            target = m.target
            if mtype == "secret":
                sid = m.cache_id or posixpath.basename(target)
                target = target or f"/run/secrets/{sid}"
                src = self.s.secrets.get(sid)
                if src is None:
                    if m.required:
                        raise BuildError(
                            f"{self.path}:{inst.start_line}: secret {sid} not provided (use --secret id={sid},src=FILE)"
                        )
                    continue
                mounts.append(bind(str(src), target, readonly=True))
                keyparts.append(["secret", sid, target])  # never the content
            elif mtype == "cache":
                if not target:
                    raise BuildError(f"{self.path}:{inst.start_line}: cache mount needs a target")
                cid = m.cache_id or target
                import hashlib

                d = (
                    self.s.store.root
                    / "build-mounts"
                    / "cache"
                    / hashlib.sha256(cid.encode()).hexdigest()[:32]
                )
                if not d.exists():
                    d.mkdir(parents=True)
                    os.chmod(d, m.mode if m.mode is not None else 0o755)
                    os.chown(d, m.uid or 0, m.gid or 0)
                mounts.append(bind(str(d), target))
                keyparts.append(["cache", target])
            elif mtype == "tmpfs":
                mounts.append(
                    {
                        "destination": target,
                        "type": "tmpfs",
                        "source": "tmpfs",
                        "options": ["nosuid", "nodev"],
                    }
                )
                keyparts.append(["tmpfs", target])
            elif mtype == "bind":
                source = m.source or "/"
                frm = m.from_
                if frm:
                    layers_of, from_key = self._mount_source(frm, inst)
                    mounts.append(
                        {
                            "destination": target,
                            "type": "bind",
                            "source": "",
                            "options": ["rbind", "rprivate"] + (["ro"] if m.readonly else []),
                            "_from": (layers_of, source),
                        }
                    )
                    keyparts.append(["bind-from", target, source, from_key])
                    continue
                # A mount source is a literal path, never a glob (BuildKit), resolved by
                # the same rule as a COPY source: no symlink can lead out of the context.
                ctx_src = self.s.context.locate(
                    source, what=f"{self.path}:{inst.start_line}: RUN --mount=type=bind"
                )
                rw = not m.readonly
                mnt = bind(str(ctx_src.path), target, readonly=not rw)
                if rw or self.s.context.hides_something(ctx_src):
                    # BuildKit gives the step a throw-away copy: writes never reach the
                    # user's files, and .dockerignore'd ones are not there to read.
                    mnt["_copy"] = ctx_src
                mounts.append(mnt)
                keyparts.append(["bind", target, rw, self.s.context.digest(ctx_src)])
            else:
                raise BuildError(f"{self.path}:{inst.start_line}: unsupported mount type {mtype!r}")
        return mounts, keyparts
