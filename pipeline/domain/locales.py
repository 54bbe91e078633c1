"""Which of a template's locales a message is rendered in: one pure decision.

The candidates, in order: the request's `recipient.locale`, the user's profile locale
(passed by ingest from the user's profile), the tenant's default (its entry in
`HERALD_TENANT_LOCALES`, else `HERALD_DEFAULT_LOCALE`). Each is tried as given
(`es-MX`), then by its language (`es`); when none matches, the template's default
locale: `en` if it has it, else its first.

Tags are compared normalised (`es_mx`, `ES-mx` and `es-MX` are one locale), because
they come from requests, profiles and YAML keys written by different people; what is
returned is the template's own key, so the state names a locale the template has.
"""

from __future__ import annotations

import re
from collections.abc import Collection

__all__ = [
    "TEMPLATE_DEFAULT_LOCALE", "language_of", "normalise_locale", "parse_tenant_locales",
    "pick_locale",
]  # fmt: skip

TEMPLATE_DEFAULT_LOCALE = "en"
# BCP 47 as people write it: a language, then subtags of letters and digits, - or _ between.
_TAG = re.compile(r"^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*$")


def normalise_locale(tag: object) -> str | None:
    """`tag` in BCP 47's usual case (`es_mx` -> `es-MX`, `zh_hant_tw` -> `zh-Hant-TW`).

    None for anything that is not a tag (empty, blank, not a string, `../x`): such a
    candidate is skipped, never an error, since the next one decides.
    """
    if not isinstance(tag, str) or not _TAG.match(tag.strip()):
        return None
    language, *subtags = re.split("[-_]", tag.strip())
    out = [language.lower()]
    for sub in subtags:
        if len(sub) == 2 and sub.isalpha():
            out.append(sub.upper())  # region: MX
        elif len(sub) == 4 and sub.isalpha():
            out.append(sub.title())  # script: Hant
        else:
            out.append(sub.lower())  # numeric region (419), variants, extensions
    return "-".join(out)


def parse_tenant_locales(spec: str) -> dict[str, str]:
    """`acme=es-MX,globex=en` -> {tenant: locale}; ValueError naming a bad entry."""
    out = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        tenant, _, tag = item.partition("=")
        locale = normalise_locale(tag)
        if not tenant.strip() or locale is None:
            raise ValueError(f"{item!r} is not tenant=locale")
        out[tenant.strip()] = locale
    return out


def language_of(tag: str) -> str:
    """The language subtag of a normalised tag: `es-MX` -> `es`."""
    return tag.split("-", 1)[0]


def pick_locale(
    available: Collection[str],
    request: str | None = None,
    profile: str | None = None,
    tenant_default: str | None = None,
) -> str:
    """The key of `available` to render in (see the module's docstring for the order).

    `available` is a template's locales, in the template's order; it must not be empty.
    """
    keys = {normalise_locale(k): k for k in reversed(list(available))}  # first key wins
    for candidate in (request, profile, tenant_default):
        tag = normalise_locale(candidate)
        if tag is None:
            continue
        for form in (tag, language_of(tag)):
            if form in keys:
                return keys[form]
    fallback = keys.get(TEMPLATE_DEFAULT_LOCALE)
    return fallback if fallback is not None else next(iter(available))
