"""What a template is: its parts per locale and channel, variants, the approved WhatsApp
template, and the checks its document passes when it is loaded (shipped) or saved
(`PUT /v1/templates/{id}`, with the sandbox checks of `pipeline.domain.template_checks`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.domain.locales import pick_locale
from pipeline.domain.variants import Variant, assign_variant, parse_variants
from pipeline.exceptions import TemplateError

__all__ = ["ApprovedTemplate", "Template", "parse_template"]


@dataclass(frozen=True)
class ApprovedTemplate:
    """A WhatsApp template approved by Meta, for business-initiated messages.

    Outside the 24-hour customer-service window WhatsApp takes only these: the text is
    Meta's copy, and the message carries only the values of {{1}}, {{2}}, ...
    `parameters` names the data variable of each, in order.
    """

    name: str
    language: str
    parameters: tuple[str, ...] = ()

    def values(self, data: Mapping[str, Any]) -> tuple[str, ...]:
        """The parameters' values from a request's data, in order."""
        return tuple(str(data[p]) for p in self.parameters)


@dataclass(frozen=True)
class Template:
    """One template: content per locale, channel and part; variants replace some parts."""

    id: str
    priority: str
    variables: tuple[str, ...]
    locales: Mapping[str, Mapping[str, Mapping[str, Any]]]
    version: int = 1
    variants: tuple[Variant, ...] = ()
    # What it was parsed from, as written (GET /v1/templates/{id} answers it).
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def resolve_locale(
        self, request: str | None = None, profile: str | None = None, tenant: str | None = None
    ) -> str:
        """The locale to render in: request, profile, tenant default (see `pick_locale`)."""
        return pick_locale(self.locales, request, profile, tenant)

    def missing_variables(self, data: Mapping[str, Any]) -> list[str]:
        return [v for v in self.variables if data.get(v) in (None, "")]

    def channels(self, locale: str) -> set[str]:
        return set(self.locales.get(locale, {}))

    def variant_for(self, tenant: str, user_id: str) -> str | None:
        """The variant this user gets (None without variants); see `assign_variant`."""
        return assign_variant(
            self.variants, tenant=tenant, user_id=user_id, template_id=self.id,
            version=self.version,
        )  # fmt: skip

    def parts(self, locale: str, channel: str, variant: str | None = None) -> Mapping[str, Any]:
        """The parts of `channel` in `locale` as `variant` sees them; {} if there are none."""
        own = self.locales.get(locale, {}).get(channel)
        if own is None:
            return {}
        chosen = next((v for v in self.variants if v.name == variant), None)
        return {**own, **chosen.parts(locale, channel)} if chosen else own

    def whatsapp_template(self, locale: str, variant: str | None = None) -> ApprovedTemplate | None:
        """The approved WhatsApp template of `locale` (and `variant`), if it declares one."""
        spec = self.parts(locale, "whatsapp", variant).get("template")
        if not isinstance(spec, Mapping):
            return None
        return ApprovedTemplate(
            str(spec["name"]), str(spec.get("language", locale)),
            tuple(str(p) for p in spec.get("parameters") or ()),
        )  # fmt: skip


def parse_template(doc: Any) -> Template:
    """A Template from its YAML document, its shape checked (TemplateError if wrong)."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("id"), str):
        raise TemplateError("a template needs an id")
    tid = doc["id"]
    version = doc.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TemplateError(f"template {tid!r}: version must be an integer >= 1")
    locales = doc.get("locales")
    if not isinstance(locales, Mapping) or not locales:
        raise TemplateError(f"template {tid!r} needs locales")
    template = Template(
        id=tid,
        priority=doc.get("priority", "standard"),
        variables=tuple(doc.get("variables", ())),
        locales=locales,
        version=version,
        variants=parse_variants(tid, doc.get("variants"), locales),
        document=doc,
    )
    names: list[str | None] = [v.name for v in template.variants]
    for variant in names or [None]:
        for locale in locales:
            _check_approved(template, locale, variant)
    return template


def _check_approved(template: Template, locale: str, variant: str | None) -> None:
    """The approved WhatsApp template, if any, has a name and fills only declared variables.

    Checked when the template is loaded: found when sending, outside the service window,
    it would be a message that cannot go.
    """
    spec = template.parts(locale, "whatsapp", variant).get("template")
    if spec is None:
        return
    where = f"template {template.id!r} ({locale}, whatsapp)"
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise TemplateError(f"{where}: the approved template needs a name")
    params = spec.get("parameters") or []
    unknown = [p for p in params if p not in template.variables] if isinstance(params, list) else []
    if not isinstance(params, list) or unknown:
        raise TemplateError(f"{where}: parameters must be a list of declared variables")
