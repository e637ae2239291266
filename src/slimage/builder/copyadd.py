"""COPY and ADD steps: what lands in the layer, from where, with which owner and mode.

Sources are the typed command's (heredoc files already told apart from context paths);
context paths go through `BuildContext`, which never lets a symlink lead outside it, and
sources in another stage or image are resolved inside that rootfs.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slimage.builder import history as hist
from slimage.builder.baseimage import open_base
from slimage.builder.cache import step_key
from slimage.builder.context import has_glob
from slimage.builder.fsops import Copier, CopyOpts
from slimage.builder.state import StageState
from slimage.builder.steps import StageSteps
from slimage.dockerfile.commands import (
    AddCommand,
    CopyCommand,
)
from slimage.dockerfile.expand import expand_heredoc, expand_word
from slimage.dockerfile.model import Instruction
from slimage.errors import BuildError
from slimage.fs.rootpath import mkdir_p, resolve_in_root

if TYPE_CHECKING:
    from slimage.builder.fetch import Fetched
    from slimage.image import Image
    from slimage.runtime.layerdirs import Workspace


class CopyAddSteps(StageSteps):
    """COPY and ADD: from the context (through its one path resolver), from a stage
    or image, from heredocs, and ADD's URLs and archives."""

    def _chown(self, cmd: CopyCommand) -> str | None:
        return self._x(cmd.chown) if cmd.chown else None

    def _chown_ids(self, rootfs: Path, chown: str) -> tuple[int, int]:
        user, _, group = chown.partition(":")
        if user.isdigit() and (not group or group.isdigit()):
            return int(user), int(group) if group else int(user)
        from slimage.runtime.users import resolve_user

        u = resolve_user(rootfs, chown)
        return u.uid, u.gid

    def do_copy(self, cmd: CopyCommand) -> None:
        self._copy(cmd, add=False)

    def do_add(self, cmd: AddCommand) -> None:
        self._copy(cmd, add=True)

    def _copy(self, cmd: CopyCommand, *, add: bool) -> None:
        # ADD's URLs, asked before the key is made (the key holds what they serve); a
        # body downloaded then waits in the store's tmp/ until the step has used it.
        urls: dict[str, _UrlSource] = {}
        try:
            self._copy_step(cmd, add, urls)
        finally:
            for u in urls.values():
                u.discard()

    def _copy_step(self, cmd: CopyCommand, add: bool, urls: dict[str, _UrlSource]) -> None:
        inst = cmd.inst
        env = self.state.expand_env()
        # Heredoc sources stay as written; every other word is expanded.
        srcs = [
            s if cmd.inline_file(s) is not None else expand_word(s, env, self.escape)
            for s in cmd.source_words
        ]
        dest = expand_word(cmd.dest, env, self.escape)
        created_by = ("ADD " if add else "COPY ") + " ".join(srcs + [dest]) + hist.LAYER_SUFFIX
        chown = self._chown(cmd)
        chmod = cmd.chmod_value(self._x)
        add_cmd = cmd if isinstance(cmd, AddCommand) else None
        checksum = add_cmd.checksum_value(self._x) if add_cmd is not None else None
        from_ref = self._x(cmd.from_) if cmd.from_ else None
        cwd = self.state.config.get("WorkingDir") or "/"
        dest_is_dir = dest.endswith("/") or dest.endswith("/.") or dest in (".", "..")
        dest_abs = dest if dest.startswith("/") else posixpath.join(cwd, dest)
        dest_abs = posixpath.normpath(dest_abs)
        multi = len(srcs) > 1
        what = f"{self.path}:{inst.start_line}: {'ADD' if add else 'COPY'}"

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
                inline = cmd.inline_file(s)
                if inline is not None:
                    src_key.append(["heredoc", inline.data])
                elif add and _is_url(s):
                    if s not in urls:
                        urls[s] = self._resolve_url(s, checksum, what)
                    src_key.append(["url", s, urls[s].digest])
                else:
                    found = self.s.context.resolve(s, what=what)
                    for src in found:
                        src_key.append([src.rel, self.s.context.digest(src)])
                    if len(found) > 1:
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
            cmd.link,
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
                inline = cmd.inline_file(s)
                if inline is not None:
                    hname = inline.name
                    body = inline.data
                    if inline.expand:
                        body = expand_heredoc(body, env)
                    target = posixpath.join(dest_abs, hname) if dest_is_dir else dest_abs
                    mkdir_p(root, posixpath.dirname(target), duid, dgid)
                    if os.path.isdir(resolve_in_root(root, target)):
                        target = posixpath.join(target, hname)
                    # Like a file COPY (and Docker), a symlink at the target is replaced,
                    # never written through: its target would be read on the host.
                    host = resolve_in_root(root, target, follow_last=False)
                    if os.path.islink(host):
                        os.unlink(host)
                    elif os.path.isdir(host):
                        raise BuildError(f"{what} <<{hname}: {target} is a directory")
                    fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW)
                    with open(fd, "w") as fh:
                        fh.write(body)
                    os.chmod(host, chmod if chmod is not None else 0o644)
                    os.lchown(host, duid, dgid)
                    continue
                if add and _is_url(s):
                    self._add_url(root, urls[s], dest_abs, dest_is_dir, duid, dgid, chmod, inst)
                    continue
                for src in self.s.context.resolve(s, what=what):
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
        # SRC_PATH is already resolved (BuildContext.locate or resolve_in_root): it holds
        # no symlink, so following it here cannot leave the context or the source rootfs.
        copier = Copier(opts, skip=self.s.context.skip_path if from_context else None)
        st = os.stat(src_path)
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
            target = os.path.join(target_dir, base)
        else:
            host = resolve_in_root(root, dest_abs)
            if os.path.isdir(host):
                target = os.path.join(host, base)
            else:
                mkdir_p(root, posixpath.dirname(dest_abs), duid, dgid)
                target = resolve_in_root(root, dest_abs, follow_last=False)
        copier._file(src_path, target, st)

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
        layers = self.s.layers_of(from_state) if from_state else list(from_image.layers)  # type: ignore[union-attr]
        lowers = self.s.layerdirs.ensure_all(layers)
        with self.s.layerdirs.workspace(lowers, writable=False) as src_ws:
            sroot = str(src_ws.merged)
            for s in srcs:
                matches = _glob_in_root(sroot, s)
                if not matches:
                    # A wildcard matching nothing copies nothing (BuildKit's
                    # AllowEmptyWildcard), once the directory before it exists.
                    missing = _glob_prefix(s) if has_glob(s) else s
                    if has_glob(s) and os.path.lexists(resolve_in_root(sroot, missing)):
                        continue
                    raise BuildError(
                        f'{self.path}:{inst.start_line}: failed to compute cache key: "{missing}": not found'
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

    def _resolve_url(self, url: str, checksum: tuple[str, str] | None, what: str) -> _UrlSource:
        """What URL serves now, for the step's key. A `--checksum` is taken as the digest
        without asking (BuildKit does the same: the pin is checked when the step runs);
        otherwise the URL is asked with what its last download recorded, and a changed or
        unknown body is downloaded here, as the key needs its digest."""
        from slimage.builder.fetch import fetch

        cache = self.s.cache
        if checksum is not None:
            pinned = ":".join(checksum)
            cache.note_url({"url": url, "pinned": pinned})
            return _UrlSource(url, pinned, pinned=True)
        got = fetch(
            url,
            str(self.s.store.tmp_dir),
            checksum=None,
            what=what,
            known=cache.url_records(url),
            lock=True,
        )
        rec = got.record
        if got.fresh:
            cache.put_url(rec)
        cache.note_url(rec.to_dict() if rec.revalidatable() else {"url": url})
        return _UrlSource(url, rec.digest, fetched=got if got.fresh else None)

    def _add_url(
        self,
        root: str,
        src: _UrlSource,
        dest_abs: str,
        dest_is_dir: bool,
        uid: int,
        gid: int,
        chmod: int | None,
        inst: Instruction,
    ) -> None:
        import urllib.parse

        from slimage.builder.fetch import fetch

        url = src.url
        what = f"{self.path}:{inst.start_line}: ADD"
        name = posixpath.basename(urllib.parse.urlparse(url).path)
        if name in ("", ".", ".."):
            name = "index.html"
        target_c = posixpath.join(dest_abs, name) if dest_is_dir else dest_abs
        parent = mkdir_p(root, posixpath.dirname(target_c), uid, gid)
        if os.path.isdir(resolve_in_root(root, target_c)):
            target_c = posixpath.join(target_c, name)
        # The last component is not followed: a symlink there is replaced, never written
        # through (its target would be read on the host).
        host = resolve_in_root(root, target_c, follow_last=False)
        if os.path.isdir(host) and not os.path.islink(host):
            raise BuildError(f"{what} {url}: {target_c} is a directory")
        tmp_dir = os.path.dirname(host) or parent
        if src.fetched is not None and src.fetched.path is not None:
            # Downloaded for the key: copied in (the store's tmp/ is another filesystem
            # than the overlay), the original kept for a second use of the URL.
            tmp, mtime = _copy_in(src.fetched.path, tmp_dir), src.fetched.mtime
        else:
            # Pinned, or "not modified" but the layer is not cached: the body is needed now,
            # and must be the one the key was made from.
            got = fetch(
                url,
                tmp_dir,
                checksum=src.digest if src.pinned else None,
                what=what,
                expect=None if src.pinned else src.digest,
            )
            assert got.path is not None
            tmp, mtime = got.path, got.mtime
        try:
            os.chmod(tmp, chmod if chmod is not None else 0o600)
            os.lchown(tmp, uid, gid)
            if mtime is not None:
                with contextlib.suppress(OSError, OverflowError, ValueError):
                    os.utime(tmp, (mtime, mtime))
            os.replace(tmp, host)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


@dataclass
class _UrlSource:
    """One URL of an ADD, as its step's key saw it."""

    url: str
    # The step key's part: sha256:<hex> of the body, or the --checksum pin (any
    # algorithm), so a pinned ADD and an unpinned one of the same body share their
    # layer, as in BuildKit.
    digest: str
    pinned: bool = False
    fetched: Fetched | None = None  # the body, when it was downloaded for the key

    def discard(self) -> None:
        if self.fetched is not None:
            self.fetched.discard()


def _copy_in(path: str, tmp_dir: str) -> str:
    """A copy of PATH in a new temp file in TMP_DIR (the caller renames or removes it)."""
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=".slimage-add-")
    try:
        with open(path, "rb") as src, open(fd, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


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
            extract_layer(stream, dest, mode="apply", label=os.path.basename(path), same_owner=True)
    except SlimageError as exc:
        raise BuildError(f"ADD {os.path.basename(path)}: {exc}") from None


def _glob_prefix(pattern: str) -> str:
    """The components of PATTERN before its first wildcard one: the directory BuildKit
    resolves (following symlinks) and requires, before matching the rest inside it."""
    parts = posixpath.normpath("/" + pattern).split("/")
    first = next(i for i, part in enumerate(parts) if has_glob(part))
    return "/".join(parts[:first]) or "/"


def _glob_in_root(root: str, pattern: str) -> list[str]:
    from slimage.builder.context import _go_glob_regex

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
