"""The lint rule set. Importing this package registers every rule in `RULES`.

IDs are grouped by what the finding costs: SL1xx bytes and layers, SL2xx cache and
reproducibility, SL3xx security, SL4xx correctness. An ID is never reused for another
meaning, so ignores in users' files stay valid across versions.

hadolint's rules live beside them under their own DL ids (`hadolint_run`, `hadolint_inst`),
and ShellCheck's findings keep their SC ids (`slimage.dockerfile.shellcheck`), so a team
moving from hadolint keeps its ignores and its CI's warnings.
"""

from __future__ import annotations

import re

from slimage.dockerfile.rules import (  # noqa: F401
    cache,
    correctness,
    hadolint_inst,
    hadolint_run,
    security,
    size,
)
from slimage.dockerfile.rules.base import REGISTRY, Rule, Severity

RULES: dict[str, Rule] = dict(sorted(REGISTRY.items()))
_BY_HADOLINT: dict[str, list[str]] = {}
for _rule in RULES.values():
    if _rule.hadolint:
        _BY_HADOLINT.setdefault(_rule.hadolint, []).append(_rule.id)


_SC_ID = re.compile(r"SC[0-9]{4}")


def resolve_rule_id(text: str) -> list[str]:
    """Our rule ids for `text`: an SL id, a hadolint DL id, or a rule slug; [] if unknown."""
    key = text.strip()
    upper = key.upper()
    if upper in RULES:
        return [upper] + [r for r in _BY_HADOLINT.get(upper, []) if r != upper]
    if _SC_ID.fullmatch(upper):
        return [upper]  # a ShellCheck code: findings keep it as their rule id
    if upper in _BY_HADOLINT:
        return list(_BY_HADOLINT[upper])
    for r in RULES.values():
        if r.slug == key.lower():
            return [r.id]
    return []


__all__ = ["RULES", "Rule", "Severity", "resolve_rule_id"]
