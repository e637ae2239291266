"""Lint configuration from `.slimage.toml` or `[tool.slimage]` in pyproject.toml.

Teams keep lint policy next to the code so every developer and CI job gets the same
answer. The file is looked up from the directory of the first Dockerfile upwards (so a
monorepo can set policy per project), or given explicitly with `--config`.

Accepted keys, either at the top level or under a `lint` table
(`[lint]` in .slimage.toml, `[tool.slimage.lint]` in pyproject.toml):

    ignore = ["SL101", "DL3059"]          # rule ids to drop (hadolint ids map to ours)
    failure-threshold = "warning"         # error | warning | info | style | none
    trusted-registries = ["docker.io", "gcr.io"]
    [lint.severity]                       # per-rule severity overrides
    SL114 = "error"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimage.errors import SlimageError

CONFIG_NAME = ".slimage.toml"
_KEYS = {"ignore", "failure-threshold", "trusted-registries", "severity"}
THRESHOLDS = ("error", "warning", "info", "style", "none")


class ConfigError(SlimageError):
    """The lint configuration file is malformed; the message names the file and key."""

    exit_code = 2


@dataclass(slots=True)
class LintConfig:
    """Policy applied on top of the rules' defaults."""

    ignore: frozenset[str] = frozenset()
    severity: dict[str, str] = field(default_factory=dict)
    failure_threshold: str = "warning"
    trusted_registries: tuple[str, ...] = ()
    source: str | None = None  # the file this came from, for messages
    # `--build-arg` values for resolving `FROM ${BASE}` (command line only).
    build_args: dict[str, str] = field(default_factory=dict)


def find_config(start: Path) -> Path | None:
    """Nearest `.slimage.toml`, or pyproject.toml with a [tool.slimage] table, upwards."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            try:
                data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
                continue
            if isinstance(data.get("tool"), dict) and "slimage" in data["tool"]:
                return pyproject
    return None


def load_config(path: Path) -> LintConfig:
    """Read and check a config file; every mistake is a ConfigError naming file and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        tool = data.get("tool", {})
        data = tool.get("slimage", {}) if isinstance(tool, dict) else {}
        prefix = "tool.slimage"
    else:
        prefix = ""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: [{prefix}] must be a table")
    if isinstance(data.get("lint"), dict):
        data = data["lint"]
        prefix = f"{prefix}.lint" if prefix else "lint"
    return config_from_mapping(data, source=str(path), prefix=prefix)


def config_from_mapping(data: dict[str, Any], *, source: str, prefix: str = "") -> LintConfig:
    """Validate a parsed table into a LintConfig."""
    from slimage.dockerfile.rules import resolve_rule_id
    from slimage.dockerfile.rules.base import Severity

    def where(key: str) -> str:
        return f"{source}: {prefix + '.' if prefix else ''}{key}"

    for key in data:
        if key not in _KEYS and not isinstance(data[key], dict):
            raise ConfigError(f"{where(key)}: unknown key (known: {', '.join(sorted(_KEYS))})")

    ignore: set[str] = set()
    raw_ignore = data.get("ignore", [])
    if not isinstance(raw_ignore, list) or not all(isinstance(x, str) for x in raw_ignore):
        raise ConfigError(f"{where('ignore')}: must be a list of rule ids")
    for item in raw_ignore:
        ids = resolve_rule_id(item)
        if not ids:
            raise ConfigError(f"{where('ignore')}: unknown rule id {item!r}")
        ignore.update(ids)

    severity: dict[str, str] = {}
    raw_sev = data.get("severity", {})
    if not isinstance(raw_sev, dict):
        raise ConfigError(f'{where("severity")}: must be a table of RULE = "severity"')
    for key, value in raw_sev.items():
        ids = resolve_rule_id(key)
        if not ids:
            raise ConfigError(f"{where('severity')}: unknown rule id {key!r}")
        if not isinstance(value, str):
            raise ConfigError(f"{where('severity.' + key)}: must be a string")
        try:
            Severity.parse(value)
        except ValueError as exc:
            raise ConfigError(f"{where('severity.' + key)}: {exc}") from None
        for rid in ids:
            severity[rid] = value.strip().lower()

    threshold = data.get("failure-threshold", "warning")
    if not isinstance(threshold, str) or threshold.strip().lower() not in THRESHOLDS:
        raise ConfigError(f"{where('failure-threshold')}: must be one of {', '.join(THRESHOLDS)}")

    registries = data.get("trusted-registries", [])
    if not isinstance(registries, list) or not all(isinstance(x, str) for x in registries):
        raise ConfigError(f"{where('trusted-registries')}: must be a list of registry names")

    return LintConfig(
        ignore=frozenset(ignore),
        severity=severity,
        failure_threshold=threshold.strip().lower(),
        trusted_registries=tuple(r.strip().lower().rstrip("/") for r in registries),
        source=source,
    )
