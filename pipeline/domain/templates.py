"""Templates: versioned content per locale and channel, rendered in a jinja2 sandbox.

Shipped templates live in `pipeline/shipped_templates/*.yaml`: an `id`, a `version`
(default 1), a `priority`, the `variables` the content uses, and per locale and channel
the parts (`subject`, `text`, `html`; push also `data`, a mapping of string templates;
WhatsApp also `template`, the approved template for messages outside the 24-hour
service window: its `name`, `language` and the `parameters`, the data variables that
fill {{1}}, {{2}}, ... in order). Optional `variants` (see `pipeline.domain.variants`).

Rendering uses `StrictUndefined`, so a variable missing from the data is an error at
validation time (HTTP 422, Kafka: dead letter), never a blank in a message. The locale is
chosen by `pipeline.domain.locales.pick_locale`; dates, times and numbers are formatted
for it and the recipient's time zone by the filters of `pipeline.domain.formatting`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined
from jinja2 import TemplateError as JinjaError
from jinja2.sandbox import SandboxedEnvironment

from pipeline.domain.formatting import FILTERS, RENDER_KEY, RenderSettings, time_zone
from pipeline.domain.locales import TEMPLATE_DEFAULT_LOCALE, pick_locale
from pipeline.domain.user_view import USER_VARIABLE, UserAttributes
from pipeline.domain.variants import Variant, assign_variant, parse_variants
from pipeline.exceptions import TemplateDataError, TemplateError

__all__ = [
    "DEFAULT_LOCALE", "ApprovedTemplate", "Rendered", "Template", "TemplateCatalog", "one_line",
    "parse_template",
]  # fmt: skip

DEFAULT_LOCALE = TEMPLATE_DEFAULT_LOCALE
# C0 and C1 controls (CR, LF, VT, FF, NEL, ...) and the Unicode line and paragraph separators.
_BREAKS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """`text` with each run of line breaks and control characters turned into one space.

    A subject becomes an email header: a CR or LF from the data (requests from
    Kafka carry what their producer wrote) would start a new header, an injection
    with SMTP. Everything else, emoji joiners included, is kept as it is.
    """
    return _BREAKS.sub(" ", text).strip()


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
class Rendered:
    template: str
    locale: str
    channel: str
    text: str
    subject: str | None = None
    html: str | None = None
    variant: str | None = None
    data: Mapping[str, str] | None = None  # push: the data payload, rendered
    approved: ApprovedTemplate | None = None  # whatsapp: outside the service window
    version: int | None = None  # the template's version this was rendered from


@dataclass(frozen=True)
class Template:
    """One template: content per locale, channel and part; variants replace some parts."""

    id: str
    priority: str
    variables: tuple[str, ...]
    locales: Mapping[str, Mapping[str, Mapping[str, Any]]]
    version: int = 1
    variants: tuple[Variant, ...] = ()

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


class TemplateCatalog:
    """Every known template by id, with sandboxed jinja2 environments (text and HTML).

    `default_locale` is the tenant's default (`HERALD_DEFAULT_LOCALE`), tried after the
    request's and the profile's locale.
    """

    def __init__(self, templates: Iterable[Template], *, default_locale: str = "en") -> None:
        self.templates = {t.id: t for t in templates}
        self.default_locale = default_locale
        self.env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        self.html_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
        for env in (self.env, self.html_env):
            env.filters.update(FILTERS)
        self._compiled: dict[tuple[bool, str], Any] = {}  # (html?, source): one per text

    @classmethod
    def from_dir(cls, directory: Path, *, default_locale: str = "en") -> TemplateCatalog:
        paths = sorted(directory.glob("*.yaml"))
        return cls(
            (parse_template(yaml.safe_load(path.read_text())) for path in paths),
            default_locale=default_locale,
        )

    def get(self, template_id: str) -> Template:
        try:
            return self.templates[template_id]
        except KeyError:
            raise TemplateError(
                f"unknown template {template_id!r}",
                [{"field": "template", "message": f"unknown template {template_id!r}"}],
            ) from None

    def check(self, template_id: str, data: Mapping[str, Any]) -> Template:
        """The template, if it exists and `data` has every variable it declares."""
        template = self.get(template_id)
        missing = template.missing_variables(data)
        if missing:
            raise TemplateError(
                f"template {template_id!r} needs {', '.join(missing)}",
                [{"field": f"data.{v}", "message": "required by the template"} for v in missing],
            )
        return template

    def render(
        self,
        template_id: str,
        channel: str,
        data: Mapping[str, Any],
        locale: str | None = None,
        *,
        profile_locale: str | None = None,
        timezone: str | None = None,
        tenant: str = "",
        user_id: str = "",
        user: Mapping[str, str] | None = None,
    ) -> Rendered:
        """`channel`'s content in the locale `pick_locale` chooses.

        `locale` is the request's, `profile_locale` the user's profile's (the profiles
        increment passes it), then the catalog's default; dates and times are shown in
        `timezone` (IANA, UTC without one; TemplateDataError if unknown). A template with
        variants renders the one (`tenant`, `user_id`) is assigned, the same on every
        channel and every attempt. `user` is the profile's attributes, the variable
        `user` (`pipeline.domain.user_view`: an absent attribute is None, not an error).
        """
        template = self.check(template_id, data)
        chosen = template.resolve_locale(locale, profile_locale, self.default_locale)
        variant = template.variant_for(tenant, user_id)
        parts = template.parts(chosen, channel, variant)
        if not parts:
            raise TemplateError(f"template {template_id!r} has no {channel} content in {chosen}")
        # Ours last: a data key of the same name cannot stand in for it.
        settings = RenderSettings(chosen, time_zone(timezone), channel)
        context = {**data, USER_VARIABLE: UserAttributes(user), RENDER_KEY: settings}
        try:
            out = {
                part: self._render(part, source, context)
                for part, source in parts.items()
                if part != "template"  # the approved WhatsApp template: Meta renders it
            }
        except TemplateDataError as exc:
            raise TemplateDataError(f"template {template_id!r}: {exc}", exc.errors) from exc
        except JinjaError as exc:
            raise TemplateError(f"template {template_id!r} failed to render: {exc}") from exc
        push_data = out.get("data")
        return Rendered(
            template=template_id,
            locale=chosen,
            channel=channel,
            text=str(out.get("text", "")).strip(),
            subject=one_line(out["subject"]) if "subject" in out else None,
            html=out.get("html"),
            variant=variant,
            data=push_data if isinstance(push_data, dict) else None,
            approved=template.whatsapp_template(chosen, variant) if channel == "whatsapp" else None,
            version=template.version,
        )

    def _render(self, part: str, source: Any, data: Mapping[str, Any]) -> Any:
        """A part rendered: a string, or (push `data`) each value of a mapping."""
        if isinstance(source, Mapping):
            return {str(k): self._compile(False, str(v)).render(data) for k, v in source.items()}
        return self._compile(part == "html", str(source)).render(data)

    def _compile(self, html: bool, source: str) -> Any:
        key = (html, source)
        compiled = self._compiled.get(key)
        if compiled is None:
            env = self.html_env if html else self.env
            compiled = self._compiled[key] = env.from_string(source)
        return compiled
