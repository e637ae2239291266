"""`analyze --ci`: pass/fail rules over an efficiency report, like dive's `.dive-ci`.

Three rules, each disabled when its threshold is unset:

- lowest-efficiency: fail when efficiency < the threshold (a ratio, 0.9 or "90%");
- highest-reclaimable-bytes: fail when reclaimable_bytes > the threshold ("20MB");
- highest-user-reclaimable-percent: fail when user_reclaimable_ratio > the threshold,
  i.e. bytes the non-base layers made invisible, relative to what those layers added.

Thresholds come from flags, else from the config file (`--ci-config FILE`, else
`.slimage.toml` in the current directory, its `[analyze]` table), else dive's defaults
(lowest-efficiency 0.9, highest-user-reclaimable-percent 0.1). A `.dive-ci` file (YAML with a
`rules:` map and dive's key names) is accepted as the config file too.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimage.analysis.efficiency import EfficiencyReport
from slimage.errors import UsageError

DEFAULTS: dict[str, float | None] = {
    "lowest-efficiency": 0.9,
    "highest-reclaimable-bytes": None,
    "highest-user-reclaimable-percent": 0.1,
}

# Every spelling we accept for each rule: ours, with underscores, and dive's.
ALIASES = {
    "lowest-efficiency": "lowest-efficiency",
    "lowest_efficiency": "lowest-efficiency",
    "lowestefficiency": "lowest-efficiency",
    "highest-reclaimable-bytes": "highest-reclaimable-bytes",
    "highest_reclaimable_bytes": "highest-reclaimable-bytes",
    "highest-wasted-bytes": "highest-reclaimable-bytes",
    "highestwastedbytes": "highest-reclaimable-bytes",
    "highest-user-reclaimable-percent": "highest-user-reclaimable-percent",
    "highest_user_reclaimable_percent": "highest-user-reclaimable-percent",
    "highest-user-wasted-percent": "highest-user-reclaimable-percent",
    "highestuserwastedpercent": "highest-user-reclaimable-percent",
}

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9}
_UNITS.update({"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "t": 10**12, "tb": 10**12})


def parse_bytes(text: str | int | float, *, what: str = "size") -> int:
    """'20MB', '1.5GB', '512KiB', '1000' -> bytes (Docker units are SI)."""
    if isinstance(text, int | float):
        return int(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise UsageError(f"invalid {what} {text!r} (expected e.g. 20MB, 1.5GB, 1000)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_ratio(text: str | int | float, *, what: str = "ratio") -> float:
    """'0.9' or '90%' -> 0.9."""
    if isinstance(text, int | float):
        return float(text)
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise UsageError(f"invalid {what} {text!r} (expected e.g. 0.9 or 90%)") from None
    if value < 0:
        raise UsageError(f"invalid {what} {text!r} (negative)")
    return value


def _parse_value(rule: str, value: Any, source: str) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("disabled", "off")):
        return None
    try:
        if rule == "highest-reclaimable-bytes":
            return float(parse_bytes(value, what=f"{rule} in {source}"))
        return parse_ratio(value, what=f"{rule} in {source}")
    except UsageError:
        raise
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{source}: invalid value for {rule}: {value!r}") from exc


def _read_dive_yaml(text: str, source: str) -> dict[str, Any]:
    """The `.dive-ci` subset dive documents: `rules:` then `  key: value` lines."""
    out: dict[str, Any] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip() or line.strip() == "rules:":
            continue
        key, sep, value = line.strip().partition(":")
        if not sep:
            raise UsageError(f"{source}:{lineno}: expected 'key: value'")
        out[key.strip()] = value.strip().strip("'\"")
    return out


def load_config(path: str | None) -> tuple[dict[str, float | None], str]:
    """Thresholds from PATH (or ./.slimage.toml when PATH is None and it exists)."""
    if path is None:
        default = Path(".slimage.toml")
        if not default.is_file():
            return {}, ""
        path = str(default)
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read CI config ({exc.strerror})") from exc
    if p.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: invalid TOML ({exc})") from exc
        table = data.get("analyze", {})
        if not isinstance(table, dict):
            raise UsageError(f"{path}: [analyze] must be a table")
        table = table.get("ci", table) if isinstance(table.get("ci"), dict) else table
    else:
        table = _read_dive_yaml(text, path)
    out: dict[str, float | None] = {}
    for key, value in table.items():
        rule = ALIASES.get(key.lower()) or ALIASES.get(key.lower().replace("_", "-"))
        if rule is None:
            if key.lower() in ("base", "top", "verify"):
                continue
            raise UsageError(f"{path}: unknown CI rule {key!r} (known: {', '.join(DEFAULTS)})")
        out[rule] = _parse_value(rule, value, path)
    return out, path


@dataclass
class RuleResult:
    rule: str
    status: str  # PASS, FAIL, SKIP
    value: float
    threshold: float | None
    message: str


@dataclass
class CiResult:
    passed: bool
    config: str
    rules: list[RuleResult] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        out = {"PASS": 0, "FAIL": 0, "SKIP": 0}
        for r in self.rules:
            out[r.status] += 1
        return out


DISABLED = float("nan")  # a flag value that turns a rule off ("--lowest-efficiency off")


def flag_value(rule: str, text: str | None) -> float | None:
    """A threshold given on the command line: None when absent, DISABLED for off."""
    if text is None:
        return None
    if text.strip().lower() in ("off", "disabled", "none"):
        return DISABLED
    value = _parse_value(rule, text, "--" + rule)
    return DISABLED if value is None else value


def evaluate(
    report: EfficiencyReport,
    flags: dict[str, float | None],
    config_path: str | None = None,
) -> CiResult:
    """Apply the thresholds (flags over config file over defaults) to REPORT."""
    from_file, source = load_config(config_path)
    thresholds: dict[str, float | None] = dict(DEFAULTS)
    thresholds.update(from_file)
    for key, value in flags.items():
        if value is not None:
            thresholds[key] = None if math.isnan(value) else value
    results = []
    checks = [
        ("lowest-efficiency", report.efficiency, lambda v, t: v >= t, "efficiency"),
        (
            "highest-reclaimable-bytes",
            float(report.reclaimable_bytes),
            lambda v, t: v <= t,
            "reclaimable bytes",
        ),
        (
            "highest-user-reclaimable-percent",
            report.user_reclaimable_ratio,
            lambda v, t: v <= t,
            "reclaimable bytes / bytes of the non-base layers",
        ),
    ]
    for rule, value, ok, label in checks:
        t = thresholds.get(rule)
        if t is None:
            results.append(RuleResult(rule, "SKIP", value, None, "rule disabled"))
            continue
        good = ok(value, t)
        op = (
            ("≥" if rule.startswith("lowest") else "≤")
            if good
            else ("<" if rule.startswith("lowest") else ">")
        )
        results.append(
            RuleResult(
                rule, "PASS" if good else "FAIL", value, t, f"{label} {value:.4g} {op} {t:.4g}"
            )
        )
    return CiResult(all(r.status != "FAIL" for r in results), source, results)
