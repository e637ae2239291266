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
HADOLINT_NAMES = (".hadolint.yaml", ".hadolint.yml")
_HADOLINT_KEYS = {
    "ignored",
    "trustedRegistries",
    "label-schema",
    "strict-labels",
    "failure-threshold",
    "override",
    "no-fail",
    "no-color",
    "verbose",
    "format",
    "formats",
    "disable-ignore-pragma",
}
_LABEL_TYPES = {"text", "url", "semver", "hash", "rfc3339", "spdx", "email"}
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
    # hadolint's label schema (label -> text|url|semver|hash|rfc3339|spdx|email).
    label_schema: dict[str, str] = field(default_factory=dict)
    strict_labels: bool = False
    # "hadolint": only hadolint's DL rules and ShellCheck, as a `.hadolint.yaml` expects.
    profile: str = "slimage"
    shellcheck: bool = True


def find_config(start: Path) -> Path | None:
    """Nearest `.slimage.toml`, or pyproject.toml with a [tool.slimage] table, upwards."""
    start = start.resolve()
    for directory in (start, *start.parents):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
        for name in HADOLINT_NAMES:
            if (directory / name).is_file():
                return directory / name
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
    if path.suffix in (".yaml", ".yml"):
        return load_hadolint_config(path, text)
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


def load_hadolint_config(path: Path, text: str) -> LintConfig:
    """A team's `.hadolint.yaml`, read so that CI gives the same pass/fail as hadolint:
    hadolint's rules only (profile "hadolint"), its ignores (DL and SC codes), trusted
    registries, label schema, severity overrides and failure threshold (hadolint's
    default threshold is `info`)."""
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a mapping of hadolint settings")
    for key in data:
        if key not in _HADOLINT_KEYS:
            raise ConfigError(f"{path}: {key}: unknown hadolint setting")

    def strings(key: str, value: object) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise ConfigError(f"{path}: {key}: must be a list of strings")
        return [x.strip() for x in value]

    from slimage.dockerfile.rules import resolve_rule_id

    ignore: set[str] = set()
    for item in strings("ignored", data.get("ignored")):
        ids = resolve_rule_id(item)
        if not ids:
            raise ConfigError(f"{path}: ignored: unknown rule id {item!r}")
        ignore.update(ids)
    severity: dict[str, str] = {}
    override = data.get("override") or {}
    if not isinstance(override, dict):
        raise ConfigError(f"{path}: override: must map a severity to a list of rule ids")
    for level, items in override.items():
        if level not in ("error", "warning", "info", "style"):
            raise ConfigError(f"{path}: override.{level}: unknown severity")
        for item in strings(f"override.{level}", items):
            ids = resolve_rule_id(item)
            if not ids:
                raise ConfigError(f"{path}: override.{level}: unknown rule id {item!r}")
            for rid in ids:
                severity[rid] = level
    threshold = data.get("failure-threshold", "info")
    if data.get("no-fail") is True:
        threshold = "none"
    if not isinstance(threshold, str) or threshold.strip().lower() not in THRESHOLDS:
        raise ConfigError(f"{path}: failure-threshold: must be one of {', '.join(THRESHOLDS)}")
    schema = data.get("label-schema") or {}
    if not isinstance(schema, dict):
        raise ConfigError(f"{path}: label-schema: must map label names to types")
    for label, kind in schema.items():
        if kind not in _LABEL_TYPES:
            raise ConfigError(
                f"{path}: label-schema.{label}: type must be one of {', '.join(sorted(_LABEL_TYPES))}"
            )
    strict = data.get("strict-labels", False)
    if not isinstance(strict, bool):
        raise ConfigError(f"{path}: strict-labels: must be true or false")
    return LintConfig(
        ignore=frozenset(ignore),
        severity=severity,
        failure_threshold=threshold.strip().lower(),
        trusted_registries=tuple(
            r.lower().rstrip("/")
            for r in strings("trustedRegistries", data.get("trustedRegistries"))
        ),
        source=str(path),
        label_schema={str(k): str(v) for k, v in schema.items()},
        strict_labels=strict,
        profile="hadolint",
    )
