"""Does `slimage lint` report what hadolint reports? Per hadolint code, on real Dockerfiles.

    python bench/lint_parity.py [--corpus bench/corpus/hadolint] [--rounds 3] [--no-timing]

Runs hadolint and slimage (one invocation each, all files) on the corpus and prints, for
every code hadolint reports: hadolint's count, how many slimage reports at the same file
and line (under that code: a DL rule, the SL rule mapped to it, or the SC code), the
misses, and slimage's extra findings under that code, each classed as deliberate (the
finding or its rule says why hadolint would not report it) or not. Findings on files
hadolint could not parse (DL1000: it then checks nothing else there) are listed apart.
Then times both tools side by side: slimage with ShellCheck on, its result cache COLD (a
fresh empty cache directory each round) and WARM (the same files linted just before), and
with ShellCheck off. The cache lives in temporary directories (XDG_CACHE_HOME), never the
user's, and the warm run must give exactly the cold run's findings.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from common import slimage_command, user_env

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT / "bench" / "corpus" / "hadolint"
# hadolint codes whose misses are deliberate and left out of the parity figure.
EXCLUDED = {
    "DL1000": "hadolint's own parser rejects files BuildKit builds (a comment right after "
    "a heredoc, `--mount=from=` without target); slimage parses them as BuildKit does",
}


def corpus_files(corpus: Path) -> list[str]:
    return sorted(
        str(p.relative_to(ROOT))
        for p in corpus.rglob("*")
        if p.is_file() and "Dockerfile" in p.name
    )


def run_hadolint(files: list[str]) -> list[dict[str, Any]]:
    proc = subprocess.run(
        ["hadolint", "--no-fail", "-f", "json", *files], capture_output=True, text=True, cwd=ROOT
    )
    return json.loads(proc.stdout or "[]")


def cache_env(cache: str) -> dict[str, str]:
    """The environment with slimage's ShellCheck result cache under `cache`."""
    return dict(user_env(), XDG_CACHE_HOME=cache)


def run_slimage(files: list[str], *extra: str, cache: str) -> dict[str, Any]:
    proc = subprocess.run(
        [*slimage_command(), "lint", "--no-config", "--json", "-t", "none", *extra, *files],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=cache_env(cache),
    )
    return json.loads(proc.stdout)


def parity(files: list[str]) -> tuple[str, float, list[str]]:
    theirs = run_hadolint(files)
    with tempfile.TemporaryDirectory(prefix="slimage-sc-cache-") as cache:
        ours = run_slimage(files, cache=cache)  # cold: every script checked
        warm = run_slimage(files, cache=cache)  # warm: every script from the cache
    if warm != ours:
        sys.exit("the warm (cached) run's findings differ from the cold run's")
    sys.path.insert(0, str(ROOT / "src"))
    from slimage.dockerfile.rules import RULES

    unparsed = {str(x["file"]) for x in theirs if x["code"] == "DL1000"}
    have: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for f in ours["findings"]:
        if f["hadolint"]:
            have[f["hadolint"]].add((f["file"], f["line"]))
    counts: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    misses: list[str] = []
    theirs_at: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for x in theirs:
        code, where = str(x["code"]), (str(x["file"]), int(x["line"]))
        counts[code] += 1
        theirs_at[code].add(where)
        if where in have[code]:
            matched[code] += 1
        else:
            misses.append(f"{code} {where[0]}:{where[1]} {str(x['message'])[:90]!r}")
    extra_ok: Counter[str] = Counter()
    extra_bad: Counter[str] = Counter()
    extra_unparsed: Counter[str] = Counter()
    bad_list: list[str] = []
    reasons: dict[str, str] = {}
    for f in ours["findings"]:
        code = f["hadolint"]
        if not code or (f["file"], f["line"]) in theirs_at[code]:
            continue
        if f["file"] in unparsed:
            extra_unparsed[code] += 1
            continue
        rule = RULES.get(f["rule"])
        why = f.get("beyond_hadolint") or (rule.differs if rule else None)
        if why:
            extra_ok[code] += 1
            reasons.setdefault(code, why)
        else:
            extra_bad[code] += 1
            bad_list.append(f"{code} ({f['rule']}) {f['file']}:{f['line']} {f['message'][:80]!r}")
    codes = sorted(set(counts) | set(extra_ok) | set(extra_bad), key=lambda c: (-counts[c], c))
    rows = ["| code | hadolint | matched | missed | extra, deliberate | extra, not | why extra |"]
    rows.append("| --- | --- | --- | --- | --- | --- | --- |")
    for c in codes:
        rows.append(
            f"| {c} | {counts[c]} | {matched[c]} | {counts[c] - matched[c]} | {extra_ok[c]} | "
            f"{extra_bad[c]} | {reasons.get(c, '')[:70]} |"
        )
    total = sum(n for c, n in counts.items() if c not in EXCLUDED)
    hit = sum(n for c, n in matched.items() if c not in EXCLUDED)
    ratio = hit / total if total else 1.0
    text = "\n".join(rows)
    text += f"\n\nparity (DL and SC, {', '.join(EXCLUDED)} excluded): {hit}/{total} = {ratio:.1%}"
    text += f"\nfiles hadolint could not parse: {len(unparsed)}; slimage's findings there: "
    text += f"{sum(extra_unparsed.values())} (not counted as extras)"
    text += "\nwarm (cached) run: same findings as the cold run"
    return text, ratio, misses + ["-- extras not classed deliberate --", *bad_list]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of one run, CPU summed over the command's processes (slimage's
    shellcheck children included): on a shared machine wall time also measures the load."""
    c0, t0 = _cpu(), time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    return time.perf_counter() - t0, _cpu() - c0


def timing(files: list[str], rounds: int) -> str:
    """Medians of alternating rounds: hadolint, slimage cold, slimage warm, no ShellCheck.
    Cold is cold: each round gets a new, empty cache directory."""
    h = ["hadolint", "--no-fail", *files]
    s_on = [*slimage_command(), "lint", "--no-config", "-t", "none", *files]
    s_off = [*s_on[: -len(files)], "--no-shellcheck", *files]
    top = tempfile.mkdtemp(prefix="slimage-bench-")
    try:
        warm_env = cache_env(os.path.join(top, "warm"))
        for cmd, env in ((h, None), (s_on, warm_env), (s_off, warm_env)):
            timed(cmd, env)  # also fills the warm cache
        hw: list[tuple[float, float]] = []
        cold: list[tuple[float, float]] = []
        warm: list[tuple[float, float]] = []
        off: list[tuple[float, float]] = []
        loads = []
        for i in range(rounds):
            hw.append(timed(h))
            cold.append(timed(s_on, cache_env(os.path.join(top, f"cold{i}"))))
            warm.append(timed(s_on, warm_env))
            off.append(timed(s_off, warm_env))
            loads.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(top, ignore_errors=True)
    lines = ["| run | wall | x hadolint | CPU | x hadolint |", "| --- | --- | --- | --- | --- |"]
    mh, ch = (statistics.median(x[k] for x in hw) for k in (0, 1))
    for label, runs in (
        ("hadolint", hw),
        ("slimage lint, cache COLD (target <= 0.5x)", cold),
        ("slimage lint, cache WARM", warm),
        ("slimage lint --no-shellcheck (target <= 0.2x)", off),
    ):
        w, c = (statistics.median(x[k] for x in runs) for k in (0, 1))
        lines.append(
            f"| {label} | {w * 1000:.0f} ms | {w / mh:.3f}x | {c * 1000:.0f} ms | {c / ch:.3f}x |"
        )
    lines.append(
        f"\nmedians of {rounds} alternating rounds, load average "
        f"{min(loads):.1f}-{max(loads):.1f}, {os.cpu_count()} CPUs"
    )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-timing", action="store_true")
    args = ap.parse_args()
    files = corpus_files(args.corpus)
    if not files:
        sys.exit(f"no Dockerfiles under {args.corpus}")
    text, ratio, misses = parity(files)
    print(f"corpus: {len(files)} Dockerfiles under {args.corpus}\n")
    print(text)
    print("\nmisses:")
    for m in misses:
        print("  " + m)
    if not args.no_timing:
        print("\n" + timing(files, args.rounds))
    return 0 if ratio >= 0.97 else 1


if __name__ == "__main__":
    raise SystemExit(main())
