"""The template catalog a process starts with, from its settings.

Every worker and ingress builds it the same way: the shipped templates, the default
locale of every tenant (`HERALD_DEFAULT_LOCALE`) and the tenants' own
(`HERALD_TENANT_LOCALES`). The tenants' saved templates join it later, from
`herald.templates` (`pipeline.kafka.template_view`).
"""

from __future__ import annotations

from pipeline.domain.locales import normalise_locale, parse_tenant_locales
from pipeline.domain.templates import TemplateCatalog
from pipeline.exceptions import ConfigError
from pipeline.settings import Settings

__all__ = ["starting_catalog"]


def starting_catalog(settings: Settings) -> TemplateCatalog:
    """The shipped templates with the configured default locales (ConfigError if unusable)."""
    if normalise_locale(settings.default_locale) is None:
        raise ConfigError(f"HERALD_DEFAULT_LOCALE: {settings.default_locale!r} is not a locale")
    try:
        tenant_locales = parse_tenant_locales(settings.tenant_locales)
    except ValueError as exc:
        raise ConfigError(f"HERALD_TENANT_LOCALES: {exc}") from None
    return TemplateCatalog.from_dir(
        settings.templates_dir, default_locale=settings.default_locale,
        tenant_locales=tenant_locales,
    )  # fmt: skip
