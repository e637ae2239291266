"""The lint rule set. Importing this package registers every rule in `RULES`.

IDs are grouped by what the finding costs: SL1xx bytes and layers, SL2xx cache and
reproducibility, SL3xx security, SL4xx correctness. An ID is never reused for another
meaning, so ignores in users' files stay valid across versions.
"""

from __future__ import annotations

from slimage.dockerfile.rules import cache, correctness, security, size  # noqa: F401
from slimage.dockerfile.rules.base import REGISTRY, Rule, Severity

RULES: dict[str, Rule] = dict(sorted(REGISTRY.items()))
_BY_HADOLINT: dict[str, list[str]] = {}
for _rule in RULES.values():
    if _rule.hadolint:
        _BY_HADOLINT.setdefault(_rule.hadolint, []).append(_rule.id)


def resolve_rule_id(text: str) -> list[str]:
    """Our rule ids for `text`: an SL id, a hadolint DL id, or a rule slug; [] if unknown."""
    key = text.strip()
    upper = key.upper()
    if upper in RULES:
        return [upper]
    if upper in _BY_HADOLINT:
        return list(_BY_HADOLINT[upper])
    for r in RULES.values():
        if r.slug == key.lower():
            return [r.id]
    return []


__all__ = ["RULES", "Rule", "Severity", "resolve_rule_id"]
