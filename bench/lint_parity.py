"""Does `slimage lint` report what hadolint reports? Per hadolint code, on real Dockerfiles.

    python bench/lint_parity.py [--corpus bench/corpus/hadolint] [--rounds 3] [--no-timing]

Runs hadolint and slimage (one invocation each, all files) on the corpus and prints, for
every code hadolint reports: hadolint's count, how many slimage reports at the same file
and line (under that code: a DL rule, the SL rule mapped to it, or the SC code), the
misses, and slimage's extra findings under that code, each classed as deliberate (the
finding or its rule says why hadolint would not report it) or not. Findings on files
hadolint could not parse (DL1000: it then checks nothing else there) are listed apart.
Then times both tools side by side, with ShellCheck on and off.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from common import slimage_command

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


def run_hadolint(files: list[str]) -> list[dict[str, object]]:
    proc = subprocess.run(
        ["hadolint", "--no-fail", "-f", "json", *files], capture_output=True, text=True, cwd=ROOT
    )
    return json.loads(proc.stdout or "[]")


def run_slimage(files: list[str], *extra: str) -> dict[str, object]:
    proc = subprocess.run(
        [*slimage_command(), "lint", "--no-config", "--json", "-t", "none", *extra, *files],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(proc.stdout)


def parity(files: list[str]) -> tuple[str, float, list[str]]:
    theirs = run_hadolint(files)
    ours = run_slimage(files)
    sys.path.insert(0, str(ROOT / "src"))
    from slimage.dockerfile.rules import RULES

    unparsed = {str(x["file"]) for x in theirs if x["code"] == "DL1000"}
    have: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for f in ours["findings"]:  # type: ignore[union-attr]
        if f["hadolint"]:
            have[f["hadolint"]].add((f["file"], f["line"]))
    counts: Counter[str] = Counter()
    matched: Counter[str] = Counter()
    misses: list[str] = []
    theirs_at: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for x in theirs:
        code, where = str(x["code"]), (str(x["file"]), int(x["line"]))  # type: ignore[arg-type]
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
    for f in ours["findings"]:  # type: ignore[union-attr]
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
    return text, ratio, misses + ["-- extras not classed deliberate --", *bad_list]


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - t0


def timing(files: list[str], rounds: int) -> str:
    h = ["hadolint", "--no-fail", *files]
    s_on = [*slimage_command(), "lint", "--no-config", "-t", "none", *files]
    s_off = [*s_on[: -len(files)], "--no-shellcheck", *files]
    for cmd in (h, s_on, s_off):
        timed(cmd)
    hw, on, off = [], [], []
    for _ in range(rounds):
        hw.append(timed(h))
        on.append(timed(s_on))
        off.append(timed(s_off))
    mh, mon, moff = (statistics.median(x) for x in (hw, on, off))
    return (
        f"hadolint {mh * 1000:.0f} ms; slimage lint {mon * 1000:.0f} ms "
        f"({mon / mh:.3f}x, target <= 0.5x); --no-shellcheck {moff * 1000:.0f} ms "
        f"({moff / mh:.3f}x, target <= 0.2x); medians of {rounds} alternating rounds, "
        f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs"
    )


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
