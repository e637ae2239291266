"""Where an image's bytes are, and which of them are wasted.

Every layer is applied, in order, to a merged filesystem (`slimage.fs.tree`). Whenever
bytes some layer stored stop being visible (a later layer overwrote or deleted the file,
or hid its directory), that is recorded against the path, the layer that stored the bytes
and the layer that hid them.

The figures, all under Docker's SIZE rule (regular-file bytes plus the UTF-8 length of each
symlink target; hardlinks, directories and whiteouts 0):

- ``total_bytes``: sum of the layer sizes, i.e. what `docker history` adds up to;
- ``merged_bytes``: what the final filesystem shows: every visible regular file (a file
  with several hardlinked names once) plus every visible symlink's target length;
- ``reclaimable_bytes = total_bytes - merged_bytes``: bytes stored for paths a later layer
  overwrote or deleted. Each stored copy counts once, at the moment it is hidden, so a
  file written three times and then deleted counts its three copies, never more (dive
  counts a path once per layer that *mentions* it, see wagoodman/dive#684). It is also
  the sum of the recorded waste, which the tests check;
- ``efficiency = merged_bytes / total_bytes`` (1.0 for an empty image).

Symlinks count in both totals, so reclaimable is never negative for an image whose layers
obey the SIZE rule; it is 0 for a single-layer image.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slimage.analysis.target import ScanTarget, open_target
from slimage.fs.scan import Verifier, apply_records, is_plain_tar, parse_records, scan_layer
from slimage.fs.tree import FILE, MergedTree
from slimage.image import Image
from slimage.oci.model import HistoryEntry
from slimage.store.store import default_root
from slimage.store.verified import VerifiedCache


@dataclass
class LayerReport:
    index: int
    diff_id: str
    size_bytes: int
    created_by: str
    created: str | None
    comment: str
    base: bool
    added: int
    added_bytes: int
    modified: int
    modified_bytes: int
    removed: int
    removed_bytes: int
    wasted_bytes: int  # bytes this layer stored that later layers hid
    hidden_bytes: int  # bytes this layer hid (stored by it or by lower layers)
    entries: int


@dataclass
class ReclaimablePath:
    path: str
    reclaimable_bytes: int
    copies: int  # stored copies that are not visible any more
    written_by: list[int]  # layers whose copy of the path is hidden
    removed_by: list[int]  # layers that overwrote or deleted it
    written_by_instructions: list[str] = field(default_factory=list)
    removed_by_instructions: list[str] = field(default_factory=list)


@dataclass
class LargeFile:
    path: str
    size_bytes: int
    layer: int


@dataclass
class EfficiencyReport:
    image: str
    id: str
    total_bytes: int
    merged_bytes: int
    reclaimable_bytes: int
    efficiency: float
    base_layers: int
    base_rule: str
    user_bytes: int  # sum of the sizes of the non-base layers
    user_reclaimable_bytes: int  # bytes hidden by non-base layers
    user_reclaimable_ratio: float  # user_reclaimable_bytes / user_bytes
    files: int
    directories: int
    layers: list[LayerReport]
    top_reclaimable: list[ReclaimablePath]
    largest_files: list[LargeFile]
    read_mode: str  # "seek+verify", "seek" (not verified), "stream" (verified) or a mix
    seconds: float


class _Waste:
    """Per-path waste, kept compact: path -> [bytes, copies, written mask, removed mask]."""

    def __init__(self) -> None:
        self.paths: dict[str, list[int]] = {}

    def __call__(self, path: str, nbytes: int, stored: int, hidden_by: int) -> None:
        rec = self.paths.get(path)
        if rec is None:
            self.paths[path] = [nbytes, 1, 1 << stored, 1 << hidden_by]
        else:
            rec[0] += nbytes
            rec[1] += 1
            rec[2] |= 1 << stored
            rec[3] |= 1 << hidden_by


def _bits(mask: int) -> list[int]:
    out = []
    i = 0
    while mask:
        if mask & 1:
            out.append(i)
        mask >>= 1
        i += 1
    return out


def layer_history(image: Image) -> list[HistoryEntry]:
    """The history entry that made each layer (a blank one when history is short)."""
    out = [HistoryEntry() for _ in image.layers]
    for entry, idx in image.config.layer_history():
        if idx is not None and idx < len(out):
            out[idx] = entry
    return out


def guess_base_layers(image: Image) -> tuple[int, str]:
    """How many bottom layers came from the FROM image, and why we think so.

    A Dockerfile build copies the base's history and appends its own. Base images end with
    a metadata step that sets what runs (CMD/ENTRYPOINT, e.g. debian's `CMD ["bash"]`,
    node's `CMD ["node"]`), and a build rarely sets one before adding its layers; so the
    base is everything below the last CMD/ENTRYPOINT step that is followed by a layer.
    Without such a step, the first layer alone is the base (dive's rule).
    """
    boundary = None  # layers below the latest CMD/ENTRYPOINT step seen so far
    best = None  # the latest such boundary that a layer followed
    layers_before = 0
    for entry, idx in image.config.layer_history():
        if idx is not None:
            layers_before = idx + 1
            if boundary is not None:
                best = boundary
            continue
        text = entry.created_by
        marker = text.split("#(nop)")[-1].strip() if "#(nop)" in text else text.strip()
        if marker.startswith(("CMD", "ENTRYPOINT")):
            boundary = layers_before
    if best is not None and 0 < best < len(image.layers):
        return best, "history: the layers below the base image's CMD/ENTRYPOINT"
    if len(image.layers) > 1:
        return 1, "first layer (no base CMD/ENTRYPOINT in history)"
    return 0, "single layer"


# Below this, a second process costs more than it saves. SLIMAGE_ANALYZE_JOBS=1 never uses
# one, =2 always does (tests); by default only for big images and when a core is idle.
PARALLEL_MIN_BYTES = 1 << 30


def _start_worker(target: ScanTarget, in_place: list[int]) -> tuple[Any, dict[int, Any]]:
    """(pool, futures of records by layer index) when worth it, else (None, {})."""
    jobs = os.environ.get("SLIMAGE_ANALYZE_JOBS", "")
    cores = len(os.sched_getaffinity(0))
    if jobs == "1" or cores < 2 or len(in_place) < 2:
        return None, {}
    if jobs != "2" and not _idle_core(cores):
        # No idle core: measured on a busy 2-core machine, the second process then saves
        # nothing and costs ~45 MB.
        return None, {}
    slices = {i: where for i in in_place if (where := target.slices[i]) is not None}
    if jobs != "2" and sum(s.length for s in slices.values()) < PARALLEL_MIN_BYTES:
        return None, {}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )
    futures = {
        i: pool.submit(parse_records, slices[i], layer_label(target.image, i)) for i in in_place[1:]
    }
    return pool, futures


def _die_with_parent(parent: int) -> None:
    """In the helper process: end when the analysing process does, however it ends. A
    forked helper holds both ends of its work pipe, so it would never see EOF and would
    wait forever if its parent were killed (as `dive` was when its terminal closed)."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    # Ctrl-C and a closing terminal signal the whole process group: the parent decides
    # what happens (it stops the helper), so the helper does not die first under it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(0)


def _idle_core(cores: int) -> bool:
    """Whether another core is free right now. The kernel's count of runnable tasks
    (this process included) says so; the load average does not: it remembers the last
    minute, so a second `analyze` just after a first saw its predecessor's load and went
    serial (2.75 s against 2.0 s on the 2 GB archive). The least of a few looks over
    ~10 ms: a short-lived process (a shell prompt, a terminal poll) does not hold a
    core, and one glance that caught it sent the pass serial."""
    least: int | None = None
    try:
        for attempt in range(5):
            if attempt:
                time.sleep(0.002)
            with open("/proc/stat", "rb") as f:
                for line in f:
                    if line.startswith(b"procs_running "):
                        running = int(line.split()[1])
                        least = running if least is None else min(least, running)
                        break
    except (OSError, ValueError):
        least = None
    if least is None:
        return os.getloadavg()[0] <= cores - 1.5
    return least - 1 <= cores - 2


def _kill_workers(pool: Any) -> None:
    """End the helper process now rather than let `shutdown` wait for the layer it is
    parsing (seconds on a big layer) after the user has already left."""
    for proc in list(getattr(pool, "_processes", {}).values()):
        proc.kill()


def _result(future: Any, cancel: threading.Event | None) -> Any:
    if cancel is None:
        return future.result()
    while True:
        try:
            return future.result(timeout=0.1)
        except TimeoutError:
            if cancel.is_set():
                raise AnalysisCancelled() from None


def _cancellable(apply: Callable[[Any], Any], cancel: threading.Event) -> Callable[[Any], Any]:
    """APPLY, checking CANCEL every 4096 entries (a check per entry would cost ~2%)."""
    count = 0

    def wrapped(entry: Any) -> Any:
        nonlocal count
        count += 1
        if not count & 4095 and cancel.is_set():
            raise AnalysisCancelled()
        return apply(entry)

    return wrapped


def layer_label(image: Image, i: int) -> str:
    """How an error names layer I (0-based) of IMAGE: where the image came from (the
    archive or layout path), the layer's 1-based number and its diff_id, as ingest does."""
    where = f"{image.source}: " if image.source else ""
    return f"{where}layer {i + 1} ({image.layers[i].diff_id})"


def analyze_image(
    target: ScanTarget | str,
    *,
    verify: bool = True,
    base_layers: int | None = None,
    top: int = 20,
    largest: int = 20,
    progress: Callable[[int, int], None] | None = None,
    detail: bool = False,
    on_layer: Callable[[int, MergedTree], None] | None = None,
) -> EfficiencyReport:
    """Analyse an image (a ScanTarget, or anything `open_target` accepts).

    DETAIL keeps each path's mode, owner and symlink target in the tree; ON_LAYER(i, tree)
    is called after layer i is applied. Both serve `slimage dive`, which keeps a view of
    the tree after every layer: one pass gives it the report and the views together."""
    analysis = Analysis(
        target, verify=verify, base_layers=base_layers, top=top, largest=largest, detail=detail
    )
    analysis.start()
    return analysis.run(progress=progress, on_layer=on_layer)


class AnalysisCancelled(Exception):
    """`Analysis.run` was told to stop (the user left `dive` while its layers were read)."""


class Analysis:
    """One pass over an image's layers, in two steps so that a caller can do other work
    between them: `start` forks the helper process that parses big layers (fork must come
    before the caller starts any thread) and starts hashing; `run`, which may then run on
    another thread, reads and applies every layer and returns the report. `slimage dive`
    paints its window between the two."""

    def __init__(
        self,
        target: ScanTarget | str,
        *,
        verify: bool = True,
        base_layers: int | None = None,
        top: int = 20,
        largest: int = 20,
        detail: bool = False,
    ) -> None:
        self.started = time.perf_counter()
        self.target = open_target(target) if isinstance(target, str) else target
        self.image = self.target.image
        self.image.check_consistent()
        self.verify = verify
        self.base_layers = base_layers
        self.top = top
        self.largest = largest
        self.detail = detail
        self._verifier = Verifier(VerifiedCache(default_root()))
        self._pool: Any = None
        self._futures: dict[int, Any] = {}

    def start(self) -> None:
        target = self.target
        in_place: list[int] = []
        for i, layer in enumerate(self.image.layers):
            where = target.slices[i] if i < len(target.slices) else None
            if where is not None and is_plain_tar(where):
                in_place.append(i)
                if self.verify:
                    self._verifier.add(f"layer {i} ({layer.diff_id})", where, layer.diff_id)
        # Big images: a second process parses the in-place layers after the first one while
        # this one parses the first and applies everything in order. Forked before any
        # thread of ours starts (the verifier's), as fork requires.
        self._pool, self._futures = _start_worker(target, in_place)
        self._verifier.start()

    def run(
        self,
        *,
        progress: Callable[[int, int], None] | None = None,
        on_layer: Callable[[int, MergedTree], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> EfficiencyReport:
        """Read every layer (after `start`). CANCEL, when set, stops the pass within a few
        thousand entries with `AnalysisCancelled`, and the helper process is killed."""
        # The tree is made of many small tuples and dicts that never form cycles: the
        # cyclic GC would only rescan them again and again as they accumulate (~10% of the
        # run).
        gc_was_on = gc.isenabled()
        gc.disable()
        try:
            return self._run(progress, on_layer, cancel)
        finally:
            if gc_was_on:
                gc.enable()

    def _run(
        self,
        progress: Callable[[int, int], None] | None,
        on_layer: Callable[[int, MergedTree], None] | None,
        cancel: threading.Event | None,
    ) -> EfficiencyReport:
        target, image, verify = self.target, self.image, self.verify
        verifier, pool, futures = self._verifier, self._pool, self._futures
        top, largest, base_layers = self.top, self.largest, self.base_layers
        history = layer_history(image)
        waste = _Waste()
        tree = MergedTree(detail=self.detail, on_waste=waste)
        apply = tree.apply if cancel is None else _cancellable(tree.apply, cancel)
        sizes: list[int] = []
        modes: set[str] = set()
        try:
            for i, layer in enumerate(image.layers):
                if progress is not None:
                    progress(i, len(image.layers))
                label = layer_label(image, i)
                tree.begin_layer(label)
                if i in futures:
                    apply_records(_result(futures[i], cancel), apply)
                    modes.add("seek+verify" if verify else "seek")
                else:
                    where = target.slices[i] if i < len(target.slices) else None
                    modes.add(
                        scan_layer(
                            layer,
                            apply,
                            where=where,
                            verify=verify,
                            verifier=verifier,
                            name=label,
                        )
                    )
                sizes.append(tree.end_layer().size_bytes)
                if on_layer is not None:
                    on_layer(i, tree)
        except BaseException as exc:
            verifier.abort()
            if pool is not None and isinstance(exc, AnalysisCancelled):
                _kill_workers(pool)
            raise
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        verifier.finish()

        total = sum(sizes)
        merged = tree.merged_bytes()
        reclaimable = total - merged
        if base_layers is None:
            base, rule = guess_base_layers(image)
        else:
            base, rule = max(0, min(base_layers, len(image.layers))), "--base"
        user_bytes = sum(sizes[base:])
        user_reclaimable = sum(ch.hidden_bytes for ch in tree.layers[base:])
        layers = []
        for i, (ch, size) in enumerate(zip(tree.layers, sizes, strict=True)):
            h = history[i]
            layers.append(
                LayerReport(
                    index=i,
                    diff_id=image.layers[i].diff_id,
                    size_bytes=size,
                    created_by=h.created_by,
                    created=h.created,
                    comment=h.comment,
                    base=i < base,
                    added=ch.added,
                    added_bytes=ch.added_bytes,
                    modified=ch.modified,
                    modified_bytes=ch.modified_bytes,
                    removed=ch.removed,
                    removed_bytes=ch.removed_bytes,
                    wasted_bytes=ch.wasted_bytes,
                    hidden_bytes=ch.hidden_bytes,
                    entries=ch.entries,
                )
            )
        worst = heapq.nlargest(top, waste.paths.items(), key=lambda kv: kv[1][0])
        top_paths = []
        for path, (nbytes, copies, wrote, removed) in worst:
            w, r = _bits(wrote), _bits(removed)
            top_paths.append(
                ReclaimablePath(
                    path="/" + path,
                    reclaimable_bytes=nbytes,
                    copies=copies,
                    written_by=w,
                    removed_by=r,
                    written_by_instructions=[history[j].created_by for j in w],
                    removed_by_instructions=[history[j].created_by for j in r],
                )
            )
        big = heapq.nlargest(
            largest,
            ((n.size, p, n.layer) for p, n in tree.iter_files() if n.kind == FILE),
        )
        dirs, files = tree.count()
        return EfficiencyReport(
            image=image.repo_tags[0] if image.repo_tags else image.source,
            id=image.id,
            total_bytes=total,
            merged_bytes=merged,
            reclaimable_bytes=reclaimable,
            efficiency=(merged / total) if total else 1.0,
            base_layers=base,
            base_rule=rule,
            user_bytes=user_bytes,
            user_reclaimable_bytes=user_reclaimable,
            user_reclaimable_ratio=(user_reclaimable / user_bytes) if user_bytes else 0.0,
            files=files,
            directories=dirs,
            layers=layers,
            top_reclaimable=top_paths,
            largest_files=[LargeFile("/" + p, s, layer) for s, p, layer in big],
            read_mode="+".join(sorted(modes)) if modes else "none",
            seconds=round(time.perf_counter() - self.started, 3),
        )
