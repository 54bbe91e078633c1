"""A/B variants: weighted alternatives of one template, and which one a user gets.

A variant changes only what it tests: it names the parts it replaces (per locale,
channel and part, e.g. `en.email.subject`), and every other part is the template's
own. So each variant has every channel in every locale the template has, by
construction, and a variant with no overrides is the template as written (the control).

The assignment is a pure function of (tenant, userId, template id, template version):
a SHA-256 of those four picks a point in [0, total weight), and the variants, in
name order, own consecutive ranges as wide as their weights. No state, no clock, no
randomness: a retry, a fallback to the next channel, a replay after a crash and a
second worker all pick the same variant; a new template version reshuffles on purpose
(the test changed, so the population is drawn again).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.exceptions import TemplateError

__all__ = ["Variant", "assign_variant", "bucket", "parse_variants"]

_SEP = "\x1f"  # the unit separator: no id or user id carries it, so keys cannot collide


@dataclass(frozen=True)
class Variant:
    """One weighted alternative: its name, weight and the parts it replaces."""

    name: str
    weight: int
    locales: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)

    def parts(self, locale: str, channel: str) -> Mapping[str, Any]:
        """The parts this variant replaces on `channel` in `locale` (often none)."""
        return self.locales.get(locale, {}).get(channel, {})


def bucket(tenant: str, user_id: str, template_id: str, version: int, total: int) -> int:
    """A point in [0, total), the same for the same four inputs, uniform over users."""
    key = _SEP.join((tenant, user_id, template_id, str(version))).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % total


def assign_variant(
    variants: Sequence[Variant], *, tenant: str, user_id: str, template_id: str, version: int
) -> str | None:
    """The name of the variant this user gets; None when the template has no variants.

    The ranges follow the names' order, not the YAML's, so reordering the file changes
    nobody's variant; changing a weight moves only the users near the boundaries.
    """
    ordered = sorted(variants, key=lambda v: v.name)
    total = sum(v.weight for v in ordered)
    if total <= 0:
        return None
    point = bucket(tenant, user_id, template_id, version, total)
    for variant in ordered:
        if point < variant.weight:
            return variant.name
        point -= variant.weight
    raise AssertionError("unreachable: the point is below the total weight")


def parse_variants(
    template_id: str, doc: Any, locales: Mapping[str, Mapping[str, Mapping[str, Any]]]
) -> tuple[Variant, ...]:
    """The `variants:` block of a template document, checked against its `locales`.

    Each variant is `{weight: N, locales: {...parts it replaces...}}`. A variant may
    only replace parts the template has (a typo would otherwise be content nobody sees),
    and the weights must be non-negative integers with a positive sum.
    """
    if doc is None:
        return ()
    if not isinstance(doc, Mapping) or not doc:
        raise _bad(template_id, "variants must be a mapping of name to {weight, locales}")
    variants = []
    for name, spec in doc.items():
        spec = spec or {}
        weight = spec.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
            raise _bad(template_id, f"variant {name!r} needs a weight: an integer >= 0")
        overrides = spec.get("locales") or {}
        for locale, channels in overrides.items():
            for channel, parts in (channels or {}).items():
                for part in parts or {}:
                    if part not in locales.get(locale, {}).get(channel, {}):
                        where = f"{locale}.{channel}.{part}"
                        raise _bad(template_id, f"variant {name!r} replaces {where}, "
                                   "which the template does not have")  # fmt: skip
        variants.append(Variant(str(name), weight, overrides))
    if sum(v.weight for v in variants) <= 0:
        raise _bad(template_id, "the variants' weights add up to 0")
    return tuple(variants)


def _bad(template_id: str, message: str) -> TemplateError:
    return TemplateError(f"template {template_id!r}: {message}")
