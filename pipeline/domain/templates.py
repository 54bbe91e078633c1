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
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined
from jinja2 import TemplateError as JinjaError
from jinja2.sandbox import SandboxedEnvironment

from pipeline.domain.formatting import FILTERS, RENDER_KEY, RenderSettings, time_zone
from pipeline.domain.locales import TEMPLATE_DEFAULT_LOCALE
from pipeline.domain.template_model import ApprovedTemplate, Template, parse_template
from pipeline.domain.user_view import USER_VARIABLE, UserAttributes
from pipeline.exceptions import TemplateDataError, TemplateError

__all__ = [
    "COMPILED_CACHE", "DEFAULT_LOCALE", "ApprovedTemplate", "Rendered", "Template",
    "TemplateCatalog", "one_line", "parse_template",
]  # fmt: skip

DEFAULT_LOCALE = TEMPLATE_DEFAULT_LOCALE
COMPILED_CACHE = 2048  # compiled sources kept; saved templates replace older versions
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


class TemplateCatalog:
    """Every known template by id, with sandboxed jinja2 environments (text and HTML).

    The shipped templates serve every tenant; a tenant's saved templates (the registry,
    `herald.templates`, applied by `store` and `drop`) take their place for that tenant
    only. A tenant's default locale is its entry of `tenant_locales` (`HERALD_TENANT_LOCALES`),
    else `default_locale` (`HERALD_DEFAULT_LOCALE`), tried
    after the request's and the profile's locale.
    """

    def __init__(
        self, templates: Iterable[Template], *, default_locale: str = "en",
        tenant_locales: Mapping[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.templates = {t.id: t for t in templates}
        self.saved: dict[tuple[str, str], Template] = {}  # (tenant, id) -> the tenant's own
        self.default_locale = default_locale
        self.tenant_locales = dict(tenant_locales or {})  # tenant -> its default locale
        self.env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        self.html_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
        for env in (self.env, self.html_env):
            env.filters.update(FILTERS)
        # (html?, source) -> compiled, least recently used first: bounded, as saved
        # versions replace each other for as long as the worker runs.
        self._compiled: OrderedDict[tuple[bool, str], Any] = OrderedDict()

    @classmethod
    def from_dir(
        cls, directory: Path, *, default_locale: str = "en",
        tenant_locales: Mapping[str, str] | None = None,
    ) -> TemplateCatalog:  # fmt: skip
        paths = sorted(directory.glob("*.yaml"))
        return cls(
            (parse_template(yaml.safe_load(path.read_text())) for path in paths),
            default_locale=default_locale, tenant_locales=tenant_locales,
        )  # fmt: skip

    def default_for(self, tenant: str) -> str:
        """The tenant's default locale: its own (HERALD_TENANT_LOCALES), else everyone's."""
        return self.tenant_locales.get(tenant, self.default_locale)

    def store(self, tenant: str, template: Template) -> None:
        """A tenant's saved template, from now on used for the tenant's messages."""
        self.saved[(tenant, template.id)] = template

    def drop(self, tenant: str, template_id: str) -> None:
        """Forget a tenant's saved template: the shipped one (if any) serves again."""
        self.saved.pop((tenant, template_id), None)

    def find(self, template_id: str, tenant: str = "") -> Template | None:
        """The template `tenant` sees under `template_id`: its own, else the shipped one."""
        return self.saved.get((tenant, template_id)) or self.templates.get(template_id)

    def listing(self, tenant: str) -> list[Template]:
        """Every template `tenant` sees, by id."""
        ids = {*self.templates, *(tid for t, tid in self.saved if t == tenant)}
        return [t for t in (self.find(tid, tenant) for tid in sorted(ids)) if t is not None]

    def get(self, template_id: str, tenant: str = "") -> Template:
        found = self.find(template_id, tenant)
        if found is None:
            raise TemplateError(
                f"unknown template {template_id!r}",
                [{"field": "template", "message": f"unknown template {template_id!r}"}],
            )
        return found

    def check(self, template_id: str, data: Mapping[str, Any], tenant: str = "") -> Template:
        """The template, if it exists and `data` has every variable it declares."""
        template = self.get(template_id, tenant)
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
        template = self.check(template_id, data, tenant)
        chosen = template.resolve_locale(locale, profile_locale, self.default_for(tenant))
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
            if len(self._compiled) > COMPILED_CACHE:
                self._compiled.popitem(last=False)
        else:
            self._compiled.move_to_end(key)
        return compiled
