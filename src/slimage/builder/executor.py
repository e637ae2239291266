"""The instruction executor: one stage at a time, one instruction at a time.

A stage's state is an image under construction (config data + layer descriptors) plus the
build-time scope BuildKit keeps beside it (ARGs, the chain cache key). Metadata steps edit
the config and add an `empty_layer` history entry; COPY/ADD/WORKDIR/RUN produce a layer from
an overlay upper dir. Every layer step is looked up in the cache first.
"""

from __future__ import annotations

import contextlib
import copy
import os
import posixpath
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from slimage.builder import history as hist
from slimage.builder.cache import BuildCache, CacheEntry, step_key
from slimage.builder.context import BuildContext
from slimage.builder.fsops import Copier, CopyOpts, mkdir_p, resolve_in_root
from slimage.builder.planner import PlannedStage
from slimage.builder.progress import Progress
from slimage.dockerfile.expand import expand_word, expand_words
from slimage.dockerfile.model import Instruction
from slimage.errors import BuildError, ImageNotFoundError
from slimage.oci import mediatypes as mt
from slimage.oci.model import Descriptor, ImageConfig, Manifest
from slimage.runtime.spec import DEFAULT_PATH, bind
from slimage.store.store import Store

if TYPE_CHECKING:
    from slimage.builder.rootfs import LayerDirs, Workspace
    from slimage.image import Image, Layer
    from slimage.runtime.ocirun import OciRuntime
    from slimage.store.store import LayerInfo

DEFAULT_SHELL = ["/bin/sh", "-c"]


def rfc3339(ts: float) -> str:
    """Docker's config timestamp format (same as slimage.mutate.rfc3339, without importing
    the layer machinery on the no-op rebuild path)."""
    import datetime as _dt

    when = _dt.datetime.fromtimestamp(ts, _dt.UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    return text + "Z"


@dataclass
class BuildSettings:
    store: Store
    context: BuildContext
    cache: BuildCache
    progress: Progress
    runtime_name: str | None = None
    network: str = "host"
    build_args: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, Path] = field(default_factory=dict)
    source_date_epoch: int | None = None
    compression: str = "gzip"
    _runtime: OciRuntime | None = None
    _layerdirs: LayerDirs | None = None

    @property
    def layerdirs(self) -> LayerDirs:
        """Unpacked layers and overlay workspaces: only needed once a step really runs."""
        if self._layerdirs is None:
            from slimage.builder.rootfs import LayerDirs

            self._layerdirs = LayerDirs(self.store)
        return self._layerdirs

    @property
    def runtime(self) -> OciRuntime:
        if self._runtime is None:
            from slimage.runtime.ocirun import OciRuntime

            self._runtime = OciRuntime(self.runtime_name)
        return self._runtime

    def now(self) -> str:
        if self.source_date_epoch is not None:
            return rfc3339(self.source_date_epoch)
        return rfc3339(time.time())


@dataclass
class StageState:
    data: dict[str, Any]
    layers: list[Descriptor]
    diff_ids: list[str]
    docker_types: bool
    key: str
    args: dict[str, str | None] = field(default_factory=dict)
    arg_order: list[str] = field(default_factory=list)
    cmd_set: bool = False
    name: str = ""

    @property
    def config(self) -> dict[str, Any]:
        return self.data.setdefault("config", {})

    def env_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.config.get("Env") or []:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    def expand_env(self) -> dict[str, str]:
        """What `$VAR` sees: ARGs in scope, overridden by ENV."""
        out = {k: v for k, v in self.args.items() if v is not None}
        out.update(self.env_map())
        return out

    def set_env(self, key: str, value: str) -> None:
        env = list(self.config.get("Env") or [])
        for i, item in enumerate(env):
            if item.partition("=")[0] == key:
                env[i] = f"{key}={value}"
                break
        else:
            env.append(f"{key}={value}")
        self.config["Env"] = env

    def last_created(self) -> str | None:
        for h in reversed(self.data.get("history") or []):
            if h.get("created"):
                return h["created"]
        return self.data.get("created")

    def layer_objects(self, store: Store) -> list[Layer]:
        from slimage.image import Layer

        return [
            Layer(d, diff_id, open_blob=_blob_opener(store, d.digest))
            for d, diff_id in zip(self.layers, self.diff_ids, strict=True)
        ]

    def build(self, created: str | None) -> tuple[Manifest, ImageConfig]:
        data = self.data
        if created:
            data["created"] = created
        data["rootfs"] = {"type": "layers", "diff_ids": list(self.diff_ids)}
        config = ImageConfig.from_data(data)
        ctype = mt.DOCKER_CONFIG if self.docker_types else mt.OCI_CONFIG
        manifest = Manifest.build(
            Descriptor(ctype, config.digest, len(config.raw)), self.layers, docker=self.docker_types
        )
        return manifest, config


def _blob_opener(store: Store, digest: str) -> Callable[[], BinaryIO]:
    return lambda: store.open_blob(digest)


def _go_duration_ns(text: str) -> int:
    if not text:
        return 0
    total = 0.0
    units = {"ns": 1, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
    pos = 0
    for m in re.finditer(r"([0-9.]+)(ns|us|µs|ms|s|m|h)", text):
        if m.start() != pos:
            raise BuildError(f"invalid duration {text!r}")
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise BuildError(f"invalid duration {text!r}")
    return int(total)


def _parse_kv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part:
            continue
        k, eq, v = part.partition("=")
        out[k.strip().lower()] = v.strip() if eq else "true"
    return out


class StageExecutor:
    def __init__(
        self,
        settings: BuildSettings,
        stage: PlannedStage,
        resolve_stage: Callable[[str], StageState | None],
        meta_args: dict[str, str | None],
        escape: str,
        path: str,
    ):
        self.s = settings
        self.stage = stage
        self.resolve_stage = resolve_stage
        self.meta_args = meta_args
        self.escape = escape
        self.path = path
        self.total = 0
        self.state: StageState

    # ------------------------------------------------------------------ FROM
    def start(self) -> StageState:
        st = self.stage
        prev = self.resolve_stage(st.base) if st.from_stage is not None else None
        if prev is not None:
            state = copy.deepcopy(prev)
            state.args = {}
            state.arg_order = []
            state.cmd_set = False
        elif st.base == "scratch":
            from slimage.oci.model import Platform

            plat = Platform.host()
            data: dict[str, Any] = {
                "architecture": plat.architecture,
                "os": plat.os,
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }
            if plat.variant:
                data["variant"] = plat.variant
            state = StageState(data, [], [], False, step_key("", "scratch"))
            # BuildKit's emptyImage: PATH and WorkingDir "/" are set from the start.
            state.data["config"] = {"Env": [f"PATH={DEFAULT_PATH}"], "WorkingDir": "/"}
        else:
            manifest, config = base_config(self.s.store, st.base)
            state = StageState(
                copy.deepcopy(config.data),
                list(manifest.layers),
                list(config.diff_ids),
                mt.is_docker(manifest.media_type),
                step_key("", "from", config.digest),
            )
        state.name = st.label
        state.data.setdefault("history", [])
        state.data.setdefault("config", {})
        if not any(e.startswith("PATH=") for e in state.config.get("Env") or []):
            state.config["Env"] = [f"PATH={DEFAULT_PATH}", *(state.config.get("Env") or [])]
        self.state = state
        return state

    def onbuild_triggers(self) -> list[Instruction]:
        triggers = self.state.config.get("OnBuild") or []
        if not triggers:
            return []
        from slimage.dockerfile import parse

        self.state.config["OnBuild"] = None
        out = []
        for text in triggers:
            # A trigger is one instruction; parse it behind a FROM so it is a valid file.
            df = parse("FROM scratch\n" + text + "\n", path=f"{self.stage.base} ONBUILD")
            out.extend(df.instructions[1:])
        return out

    # ------------------------------------------------------------------ helpers
    def _x(self, word: str) -> str:
        return expand_word(word, self.state.expand_env(), self.escape)

    def _meta(self, created_by: str) -> None:
        created = (
            self.s.now() if self.s.source_date_epoch is not None else self.state.last_created()
        )
        entry: dict[str, Any] = {}
        if created:
            entry["created"] = created
        entry["created_by"] = created_by
        entry["comment"] = hist.COMMENT
        entry["empty_layer"] = True
        self.state.data["history"].append(entry)

    def _add_layer(self, entry: CacheEntry, created_by: str) -> None:
        desc = Descriptor.from_dict(entry.layer)
        mtype = desc.media_type
        comp = mt.LAYER_COMPRESSION.get(mtype, "gzip")
        want = mt.layer_media_type(comp, docker=self.state.docker_types)
        if want != mtype:
            desc = Descriptor(want, desc.digest, desc.size)
        self.state.layers.append(desc)
        self.state.diff_ids.append(entry.diff_id)
        self.state.data["history"].append(
            {"created": entry.created, "created_by": created_by, "comment": hist.COMMENT}
        )

    def _layer_step(self, key: str, created_by: str, action: Callable[[Workspace], None]) -> None:
        self.state.key = key
        hit = self.s.cache.get(key)
        if hit is not None:
            self.s.progress.cached()
            self._add_layer(hit, created_by)
            return
        lowers = self.s.layerdirs.ensure_all(self.state.layer_objects(self.s.store))
        with self.s.layerdirs.workspace(lowers) as ws:
            action(ws)
            ws.unmount()
            info = _store_upper(
                self.s.store,
                ws.upper,
                self.s.source_date_epoch,
                self.s.compression,
                self.state.docker_types,
            )
            self.s.layerdirs.adopt(info.diff_id, ws.upper)
        entry = CacheEntry(
            info.diff_id,
            Descriptor(info.media_type, info.blob, info.blob_size).to_dict(),
            self.s.now(),
        )
        self.s.cache.put(key, entry)
        self._add_layer(entry, created_by)
        self.s.progress.done()

    def _user_ids(self, rootfs: Path, spec: str | None) -> tuple[int, int]:
        from slimage.runtime.users import resolve_user

        u = resolve_user(rootfs, spec)
        return u.uid, u.gid

    # ------------------------------------------------------------------ dispatch
    def execute(self, inst: Instruction, label: str) -> None:
        cmd = inst.cmd
        handler = getattr(self, f"do_{cmd}", None)
        if handler is None:
            raise BuildError(
                f"{self.path}:{inst.start_line}: unknown instruction {inst.keyword or cmd}"
            )
        layered = cmd in ("run", "copy", "add", "workdir")
        self.s.progress.step(f"[{label}] {inst.original}")
        try:
            handler(inst)
        except BuildError as err:
            self.s.progress.error(str(err), getattr(err, "tail", None))
            raise
        if not layered:
            self.s.progress.done()

    # metadata ---------------------------------------------------------------
    def do_env(self, inst: Instruction) -> None:
        env = self.state.expand_env()
        pairs = []
        v = inst.value
        for i in range(0, len(v) - 2, 3):
            k = expand_word(v[i], env, self.escape)
            val = expand_word(v[i + 1], env, self.escape)
            pairs.append((k, val))
        for k, val in pairs:
            self.state.set_env(k, val)
        self.state.key = step_key(self.state.key, "ENV", pairs)
        self._meta("ENV " + " ".join(f"{k}={val}" for k, val in pairs))

    def do_label(self, inst: Instruction) -> None:
        env = self.state.expand_env()
        pairs = []
        v = inst.value
        for i in range(0, len(v) - 2, 3):
            pairs.append(
                (expand_word(v[i], env, self.escape), expand_word(v[i + 1], env, self.escape))
            )
        labels = dict(self.state.config.get("Labels") or {})
        for k, val in pairs:
            labels[k] = val
        self.state.config["Labels"] = labels
        self.state.key = step_key(self.state.key, "LABEL", pairs)
        self._meta("LABEL " + " ".join(f"{k}={val}" for k, val in pairs))

    def do_maintainer(self, inst: Instruction) -> None:
        text = " ".join(inst.value)
        self.state.data["author"] = text
        self.state.key = step_key(self.state.key, "MAINTAINER", text)
        self._meta("MAINTAINER " + text)

    def do_arg(self, inst: Instruction) -> None:
        texts = []
        for word in inst.value:
            k, eq, v = word.partition("=")
            if k in self.s.build_args:
                val: str | None = self.s.build_args[k]
            elif eq:
                val = self._x(v)
            elif k in self.meta_args and self.meta_args[k] is not None:
                val = self.meta_args[k]
            else:
                val = _platform_args().get(k)
            self.state.args[k] = val
            if k not in self.state.arg_order:
                self.state.arg_order.append(k)
            texts.append(word if not eq else f"{k}={v}")
        self.state.key = step_key(
            self.state.key, "ARG", [(k, self.state.args[k]) for k in self.state.arg_order]
        )
        self._meta("ARG " + " ".join(texts))

    def do_user(self, inst: Instruction) -> None:
        user = self._x(inst.value[0])
        self.state.config["User"] = user
        self.state.key = step_key(self.state.key, "USER", user)
        self._meta("USER " + user)

    def do_expose(self, inst: Instruction) -> None:
        env = self.state.expand_env()
        ports: list[str] = []
        for w in inst.value:
            for p in expand_words(w, env, self.escape):
                ports.extend(_expand_port(p))
        exposed = dict(self.state.config.get("ExposedPorts") or {})
        for p in ports:
            exposed[p] = {}
        self.state.config["ExposedPorts"] = exposed
        self.state.key = step_key(self.state.key, "EXPOSE", ports)
        self._meta("EXPOSE " + hist.v_port_map(ports))

    def do_volume(self, inst: Instruction) -> None:
        vols = [self._x(v) for v in inst.value if v.strip()]
        if not vols:
            raise BuildError(
                f"{self.path}:{inst.start_line}: VOLUME specified can not be an empty string"
            )
        volumes = dict(self.state.config.get("Volumes") or {})
        for v in vols:
            volumes[v] = {}
        self.state.config["Volumes"] = volumes
        self.state.key = step_key(self.state.key, "VOLUME", vols)
        self._meta("VOLUME " + hist.v_list(vols))

    def do_stopsignal(self, inst: Instruction) -> None:
        sig = self._x(inst.value[0])
        self.state.config["StopSignal"] = sig
        self.state.key = step_key(self.state.key, "STOPSIGNAL", sig)
        self._meta("STOPSIGNAL " + sig)

    def do_shell(self, inst: Instruction) -> None:
        if not inst.json:
            raise BuildError(
                f"{self.path}:{inst.start_line}: SHELL requires the arguments to be in JSON form"
            )
        self.state.config["Shell"] = list(inst.value)
        self.state.key = step_key(self.state.key, "SHELL", inst.value)
        self._meta("SHELL " + hist.v_list(inst.value))

    def _shell(self) -> list[str]:
        return list(self.state.config.get("Shell") or DEFAULT_SHELL)

    def do_cmd(self, inst: Instruction) -> None:
        args = (
            list(inst.value) if inst.json else self._shell() + [inst.value[0] if inst.value else ""]
        )
        self.state.config["Cmd"] = args
        self.state.config["ArgsEscaped"] = True
        self.state.cmd_set = True
        self.state.key = step_key(self.state.key, "CMD", args)
        self._meta("CMD " + hist.q_list(args))

    def do_entrypoint(self, inst: Instruction) -> None:
        args = (
            list(inst.value) if inst.json else self._shell() + [inst.value[0] if inst.value else ""]
        )
        self.state.config["Entrypoint"] = args
        self.state.config["ArgsEscaped"] = True
        if not self.state.cmd_set:
            self.state.config["Cmd"] = None
        self.state.key = step_key(self.state.key, "ENTRYPOINT", args)
        self._meta("ENTRYPOINT " + hist.q_list(args))

    def do_healthcheck(self, inst: Instruction) -> None:
        v = inst.value
        if v and v[0].upper() == "NONE":
            health: dict[str, Any] = {"Test": ["NONE"]}
        else:
            if not v or v[0].upper() != "CMD":
                raise BuildError(
                    f"{self.path}:{inst.start_line}: HEALTHCHECK: unknown type, use CMD or NONE"
                )
            test = ["CMD", *v[1:]] if inst.json else ["CMD-SHELL", v[1] if len(v) > 1 else ""]
            health = {"Test": test}
            for flag, key in (
                ("interval", "Interval"),
                ("timeout", "Timeout"),
                ("start-period", "StartPeriod"),
            ):
                val = inst.flag(flag)
                if val:
                    ns = _go_duration_ns(val)
                    if ns:
                        health[key] = ns
            retries = inst.flag("retries")
            if retries:
                health["Retries"] = int(retries)
        self.state.config["Healthcheck"] = health
        self.state.key = step_key(self.state.key, "HEALTHCHECK", health)
        self._meta(hist.healthcheck_text(health))

    def do_onbuild(self, inst: Instruction) -> None:
        child = inst.child
        text = child.original if child is not None else " ".join(inst.value)
        triggers = list(self.state.config.get("OnBuild") or [])
        triggers.append(text)
        self.state.config["OnBuild"] = triggers
        self.state.key = step_key(self.state.key, "ONBUILD", text)

    # layered ----------------------------------------------------------------
    def do_workdir(self, inst: Instruction) -> None:
        path = self._x(inst.value[0])
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

    def _chown(self, inst: Instruction) -> str | None:
        c = inst.flag("chown")
        return self._x(c) if c else None

    def _chown_ids(self, rootfs: Path, chown: str) -> tuple[int, int]:
        user, _, group = chown.partition(":")
        if user.isdigit() and (not group or group.isdigit()):
            return int(user), int(group) if group else int(user)
        from slimage.runtime.users import resolve_user

        u = resolve_user(rootfs, chown)
        return u.uid, u.gid

    def do_copy(self, inst: Instruction) -> None:
        self._copy(inst, add=False)

    def do_add(self, inst: Instruction) -> None:
        self._copy(inst, add=True)

    def _copy(self, inst: Instruction, *, add: bool) -> None:
        words = list(inst.value)
        if len(words) < 2:
            raise BuildError(
                f"{self.path}:{inst.start_line}: {inst.cmd.upper()} requires at least two arguments"
            )
        env = self.state.expand_env()
        heredocs = {h.name: h for h in inst.heredocs}
        srcs_raw, dest_raw = words[:-1], words[-1]
        srcs = []
        for s in srcs_raw:
            name = s[2:].lstrip("-").strip("'\"") if s.startswith("<<") else None
            if name and name in heredocs:
                srcs.append(s)
            else:
                srcs.append(expand_word(s, env, self.escape))
        dest = expand_word(dest_raw, env, self.escape)
        created_by = ("ADD " if add else "COPY ") + " ".join(srcs + [dest]) + hist.LAYER_SUFFIX
        chown = self._chown(inst)
        chmod_text = inst.flag("chmod")
        chmod = int(chmod_text, 8) if chmod_text else None
        from_ref = inst.flag("from")
        from_ref = self._x(from_ref) if from_ref else None
        cwd = self.state.config.get("WorkingDir") or "/"
        dest_is_dir = dest.endswith("/") or dest.endswith("/.") or dest in (".", "..")
        dest_abs = dest if dest.startswith("/") else posixpath.join(cwd, dest)
        dest_abs = posixpath.normpath(dest_abs)
        multi = len(srcs) > 1

        src_key: list[Any] = []
        from_state: StageState | None = None
        from_image: Image | None = None
        if from_ref:
            from_state = self.resolve_stage(from_ref)
            if from_state is None:
                try:
                    from_image = open_base(self.s.store, from_ref)
                except BuildError:
                    raise BuildError(
                        f"{self.path}:{inst.start_line}: COPY --from={from_ref}: no such stage or image"
                    ) from None
                src_key = ["image", from_image.id]
            else:
                src_key = ["stage", from_state.key]
        else:
            for s in srcs:
                if s.startswith("<<") and s[2:].lstrip("-").strip("'\"") in heredocs:
                    h = heredocs[s[2:].lstrip("-").strip("'\"")]
                    src_key.append(["heredoc", h.text()])
                elif add and _is_url(s):
                    src_key.append(["url", s, inst.flag("checksum")])
                else:
                    for src in self.s.context.resolve(s):
                        src_key.append([src.rel, self.s.context.digest(src)])
                    if len(self.s.context.resolve(s)) > 1:
                        multi = True
        if multi and not dest_is_dir:
            raise BuildError(
                f"{self.path}:{inst.start_line}: When using {inst.cmd.upper()} with more than one source file, "
                "the destination must be a directory and end with a /"
            )
        key = step_key(
            self.state.key,
            "ADD" if add else "COPY",
            srcs,
            dest_abs,
            dest_is_dir,
            chown,
            chmod,
            src_key,
            inst.flag("link") is not None,
        )

        def action(ws: Workspace) -> None:
            root = str(ws.merged)
            uid_gid = self._chown_ids(ws.merged, chown) if chown else None
            duid, dgid = uid_gid if uid_gid else (0, 0)
            opts = CopyOpts(
                uid=uid_gid[0] if uid_gid else None,
                gid=uid_gid[1] if uid_gid else None,
                chmod=chmod,
                context_owner=from_ref is None,
            )
            if from_ref:
                self._copy_from(
                    ws,
                    from_state,
                    from_image,
                    srcs,
                    dest_abs,
                    dest_is_dir or multi,
                    opts,
                    duid,
                    dgid,
                    inst,
                )
                return
            for s in srcs:
                hname = s[2:].lstrip("-").strip("'\"") if s.startswith("<<") else None
                if hname and hname in heredocs:
                    h = heredocs[hname]
                    body = h.text()
                    if h.expand:
                        from slimage.dockerfile.expand import expand_heredoc

                        body = expand_heredoc(body, env)
                    target = posixpath.join(dest_abs, hname) if dest_is_dir else dest_abs
                    mkdir_p(root, posixpath.dirname(target), duid, dgid)
                    host = resolve_in_root(root, target)
                    if os.path.isdir(host) and not os.path.islink(host):
                        host = os.path.join(host, hname)
                    with open(host, "w") as fh:
                        fh.write(body)
                    os.chmod(host, chmod if chmod is not None else 0o644)
                    os.lchown(host, duid, dgid)
                    continue
                if add and _is_url(s):
                    self._add_url(root, s, dest_abs, dest_is_dir, duid, dgid, chmod, inst)
                    continue
                for src in self.s.context.resolve(s):
                    self._copy_one(
                        root,
                        str(src.path),
                        posixpath.basename(src.rel) or ".",
                        dest_abs,
                        dest_is_dir or multi,
                        opts,
                        duid,
                        dgid,
                        add=add,
                        from_context=True,
                    )

        self._layer_step(key, created_by, action)

    def _copy_one(
        self,
        root: str,
        src_path: str,
        base: str,
        dest_abs: str,
        dest_is_dir: bool,
        opts: CopyOpts,
        duid: int,
        dgid: int,
        *,
        add: bool,
        from_context: bool,
    ) -> None:
        ignore = None
        if from_context:
            ctx = self.s.context

            def ignore(p: str) -> bool:
                rel = os.path.relpath(p, ctx.root)
                if not ctx.ignored(rel):
                    return False
                # An ignored dir still comes along when a `!` rule re-includes something
                # inside it (only that something, as its children are checked one by one).
                if ctx.ignore.exclusions and os.path.isdir(p) and not os.path.islink(p):
                    return not ctx.walk_included(rel)
                return True

        copier = Copier(opts, skip=ignore)
        st = os.stat(src_path)  # the named source itself is followed
        if stat.S_ISDIR(st.st_mode):
            target = mkdir_p(root, dest_abs, duid, dgid)
            copier.copy_contents(src_path, target)
            return
        if add and _is_archive(src_path):
            target = mkdir_p(root, dest_abs, duid, dgid)
            _extract_archive(src_path, target)
            return
        if dest_is_dir:
            target_dir = mkdir_p(root, dest_abs, duid, dgid)
            target = os.path.join(target_dir, os.path.basename(src_path) if from_context else base)
        else:
            host = resolve_in_root(root, dest_abs)
            if os.path.isdir(host):
                target = os.path.join(host, os.path.basename(src_path))
            else:
                mkdir_p(root, posixpath.dirname(dest_abs), duid, dgid)
                target = resolve_in_root(root, dest_abs, follow_last=False)
        real = os.path.realpath(src_path)
        copier._file(real, target, os.stat(real))

    def _copy_from(
        self,
        ws: Workspace,
        from_state: StageState | None,
        from_image: Image | None,
        srcs: list[str],
        dest_abs: str,
        dest_is_dir: bool,
        opts: CopyOpts,
        duid: int,
        dgid: int,
        inst: Instruction,
    ) -> None:
        layers = from_state.layer_objects(self.s.store) if from_state else list(from_image.layers)  # type: ignore[union-attr]
        lowers = self.s.layerdirs.ensure_all(layers)
        with self.s.layerdirs.workspace(lowers, writable=False) as src_ws:
            sroot = str(src_ws.merged)
            for s in srcs:
                matches = _glob_in_root(sroot, s)
                if not matches:
                    raise BuildError(
                        f'{self.path}:{inst.start_line}: failed to compute cache key: "{s}": not found'
                    )
                for cpath in matches:
                    host = resolve_in_root(sroot, cpath)
                    if not os.path.lexists(host):
                        raise BuildError(
                            f'{self.path}:{inst.start_line}: failed to compute cache key: "{cpath}": not found'
                        )
                    self._copy_one(
                        str(ws.merged),
                        host,
                        posixpath.basename(cpath.rstrip("/")) or ".",
                        dest_abs,
                        dest_is_dir or len(matches) > 1,
                        opts,
                        duid,
                        dgid,
                        add=False,
                        from_context=False,
                    )

    def _add_url(
        self,
        root: str,
        url: str,
        dest_abs: str,
        dest_is_dir: bool,
        uid: int,
        gid: int,
        chmod: int | None,
        inst: Instruction,
    ) -> None:
        import hashlib
        import urllib.parse
        import urllib.request

        checksum = inst.flag("checksum")
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                data = resp.read()
                modified = resp.headers.get("Last-Modified")
        except OSError as exc:
            raise BuildError(f"{self.path}:{inst.start_line}: ADD {url}: {exc}") from None
        if checksum:
            algo, _, want = checksum.partition(":")
            got = hashlib.new(algo, data).hexdigest()
            if got != want:
                raise BuildError(
                    f"{self.path}:{inst.start_line}: ADD {url}: digest mismatch {algo}:{got}: expected {checksum}"
                )
        name = posixpath.basename(urllib.parse.urlparse(url).path) or "index.html"
        target_c = posixpath.join(dest_abs, name) if dest_is_dir else dest_abs
        mkdir_p(root, posixpath.dirname(target_c), uid, gid)
        host = resolve_in_root(root, target_c, follow_last=False)
        with open(host, "wb") as fh:
            fh.write(data)
        os.chmod(host, chmod if chmod is not None else 0o600)
        os.lchown(host, uid, gid)
        if modified:
            from email.utils import parsedate_to_datetime

            ts = parsedate_to_datetime(modified).timestamp()
            os.utime(host, (ts, ts))

    def do_run(self, inst: Instruction) -> None:
        st = self.state
        shell = self._shell()
        script: tuple[str, str] | None = None
        if inst.json:
            args = list(inst.value)
        elif inst.heredocs:
            cmdline = inst.value[0] if inst.value else ""
            h0 = inst.heredocs[0]
            if len(inst.heredocs) == 1 and re.fullmatch(
                r"<<-?['\"]?" + re.escape(h0.name) + r"['\"]?", cmdline.strip()
            ):
                if h0.text().startswith("#!"):
                    # A script with its own interpreter: BuildKit mounts it and runs it.
                    script = (f"/dev/pipes/{h0.name}", h0.text())
                    args = [script[0]]
                else:
                    args = shell + [h0.text()]
            else:
                body = cmdline + "\n" + "".join(h.content + h.name + "\n" for h in inst.heredocs)
                args = shell + [body]
        else:
            args = shell + [inst.value[0] if inst.value else ""]
        build_args = [(k, st.args[k] or "") for k in st.arg_order if st.args.get(k) is not None]
        created_by = hist.run_text(args, build_args)
        env_list = list(st.config.get("Env") or [])
        envmap = st.env_map()
        for k, v in build_args:
            if k not in envmap:
                env_list.append(f"{k}={v}")
        network = (inst.flag("network") or self.s.network or "host").replace("default", "host")
        mounts, mount_key = self._run_mounts(inst)
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
                for mnt in mounts:
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
            return (lambda: state.layer_objects(self.s.store)), state.key
        try:
            image = open_base(self.s.store, ref)
        except BuildError:
            raise BuildError(
                f"{self.path}:{inst.start_line}: --mount from={ref}: no such stage or image"
            ) from None
        return (lambda: list(image.layers)), image.id

    def _run_mounts(self, inst: Instruction) -> tuple[list[dict[str, Any]], list[Any]]:
        mounts: list[dict[str, Any]] = []
        keyparts: list[Any] = []
        for spec_text in inst.flag_values("mount"):
            m = _parse_kv(spec_text)
            mtype = m.get("type", "bind")
            target = m.get("target") or m.get("dst") or m.get("destination") or ""
            if mtype == "secret":
                sid = m.get("id") or posixpath.basename(target)
                target = target or f"/run/secrets/{sid}"
                src = self.s.secrets.get(sid)
                if src is None:
                    if m.get("required") in ("true", "1"):
                        raise BuildError(
                            f"{self.path}:{inst.start_line}: secret {sid} not provided (use --secret id={sid},src=FILE)"
                        )
                    continue
                mounts.append(bind(str(src), target, readonly=True))
                keyparts.append(["secret", sid, target])  # never the content
            elif mtype == "cache":
                if not target:
                    raise BuildError(f"{self.path}:{inst.start_line}: cache mount needs a target")
                cid = m.get("id") or target
                import hashlib

                d = (
                    self.s.store.root
                    / "build-mounts"
                    / "cache"
                    / hashlib.sha256(cid.encode()).hexdigest()[:32]
                )
                if not d.exists():
                    d.mkdir(parents=True)
                    mode = int(m.get("mode", "755"), 8)
                    os.chmod(d, mode)
                    os.chown(d, int(m.get("uid", "0")), int(m.get("gid", "0")))
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
                source = m.get("source") or m.get("src") or "/"
                frm = m.get("from")
                if frm:
                    layers_of, from_key = self._mount_source(frm, inst)
                    mounts.append(
                        {
                            "destination": target,
                            "type": "bind",
                            "source": "",
                            "options": ["rbind", "rprivate"]
                            + ([] if m.get("rw") in ("true", "1") else ["ro"]),
                            "_from": (layers_of, source),
                        }
                    )
                    keyparts.append(["bind-from", target, source, from_key])
                    continue
                ctx_src = (
                    self.s.context.resolve(source.lstrip("/") or ".")[0]
                    if source.strip("/")
                    else None
                )
                path = ctx_src.path if ctx_src else self.s.context.root
                mounts.append(bind(str(path), target, readonly=m.get("rw") not in ("true", "1")))
                keyparts.append(
                    ["bind", target, self.s.context.digest(ctx_src) if ctx_src else "ctx"]
                )
            else:
                raise BuildError(f"{self.path}:{inst.start_line}: unsupported mount type {mtype!r}")
        return mounts, keyparts


def _platform_args() -> dict[str, str]:
    """BuildKit's automatic platform ARGs (values appear once the ARG is declared)."""
    from slimage.oci.model import Platform

    plat = Platform.host()
    text = f"{plat.os}/{plat.architecture}" + (f"/{plat.variant}" if plat.variant else "")
    out = {}
    for prefix in ("TARGET", "BUILD"):
        out[prefix + "PLATFORM"] = text
        out[prefix + "OS"] = plat.os
        out[prefix + "ARCH"] = plat.architecture
        out[prefix + "VARIANT"] = plat.variant or ""
    return out


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


def _is_url(s: str) -> bool:
    return s.startswith("http://") or s.startswith("https://")


def _is_archive(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(512)
    if (
        head[:2] == b"\x1f\x8b"
        or head[:3] == b"BZh"
        or head[:6] == b"\xfd7zXZ\x00"
        or head[:4] == b"\x28\xb5\x2f\xfd"
    ):
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def _extract_archive(path: str, dest: str) -> None:
    """ADD's auto-extraction, through the safe extractor (nothing lands outside DEST)."""
    import contextlib

    from slimage.errors import SlimageError
    from slimage.layers.compression import open_decompressed
    from slimage.layers.extract import extract_layer

    try:
        stream, _ = open_decompressed(open(path, "rb"), name=os.path.basename(path))
        with contextlib.closing(stream):
            extract_layer(
                stream, dest, mode="apply", label=f"ADD {os.path.basename(path)}", same_owner=True
            )
    except SlimageError as exc:
        raise BuildError(f"ADD {os.path.basename(path)}: {exc}") from None


def _glob_in_root(root: str, pattern: str) -> list[str]:
    from slimage.builder.context import _go_glob_regex, has_glob

    pat = posixpath.normpath("/" + pattern)
    if not has_glob(pat):
        return [pat]
    parts = [p for p in pat.split("/") if p]
    results = ["/"]
    for _i, comp in enumerate(parts):
        nxt = []
        for base in results:
            host = resolve_in_root(root, base)
            if not has_glob(comp):
                nxt.append(posixpath.join(base, comp))
                continue
            rx = re.compile("^" + _go_glob_regex(comp) + "$")
            try:
                names = sorted(os.listdir(host))
            except OSError:
                continue
            nxt.extend(posixpath.join(base, n) for n in names if rx.match(n))
        results = nxt
    return [r for r in results if os.path.lexists(resolve_in_root(root, r, follow_last=False))]


def base_config(store: Store, name: str) -> tuple[Manifest, ImageConfig]:
    """A base image's manifest and config, without opening its layers (the no-op
    rebuild path needs only these). A base the store lacks is pulled, as `docker build`
    would; SLIMAGE_NO_PULL=1 keeps a build hermetic."""
    from slimage.errors import InvalidImageError

    digest = _resolve_or_pull(store, name)
    manifest = store.manifest_for(digest)
    config = ImageConfig.parse(store.read_blob(manifest.config.digest))
    if len(config.diff_ids) != len(manifest.layers):
        raise InvalidImageError(f"{name}: manifest and config disagree on the layer count")
    return manifest, config


def _resolve_or_pull(store: Store, name: str) -> str:
    try:
        return store.resolve(name)
    except ImageNotFoundError:
        pass
    from slimage.transports.registry import pull_if_missing

    try:
        return pull_if_missing(store, name)
    except ImageNotFoundError as exc:
        raise BuildError(
            f"base image {name!r} is not in the store and could not be pulled ({exc}); bring "
            f"it in with `slimage load` or `slimage pull`, or from Docker with "
            f"`docker save {name} | slimage load`"
        ) from None


def open_base(store: Store, name: str) -> Image:
    from slimage.store.images import open_image

    return open_image(store, _resolve_or_pull(store, name))


def _store_upper(
    store: Store, upper: Path, epoch: int | None, compression: str, docker_types: bool
) -> LayerInfo:
    """Stream the upper dir as a layer tar straight into the store (hash + compress in
    one pass): overlay whiteouts become `.wh.` entries, opaque dirs `.wh..wh..opq`."""
    from slimage.layers.writer import stream_tree
    from slimage.store.images import store_layer_tar

    stream = stream_tree(upper, overlay_upper=True, epoch=epoch)
    try:
        return store_layer_tar(store, stream, compression=compression, docker_types=docker_types)
    finally:
        stream.close()


__all__ = ["BuildSettings", "StageExecutor", "StageState", "open_base"]
