"""Templates: versioned content per locale and channel, rendered in a jinja2 sandbox.

Shipped templates live in `pipeline/shipped_templates/*.yaml`. Rendering uses
`StrictUndefined`, so a variable missing from the data is an error at
validation time (HTTP 422, Kafka: dead letter), never a blank in a message.
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

from pipeline.exceptions import TemplateError

__all__ = ["DEFAULT_LOCALE", "Rendered", "Template", "TemplateCatalog", "one_line"]

DEFAULT_LOCALE = "en"
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


@dataclass(frozen=True)
class Template:
    id: str
    priority: str
    variables: tuple[str, ...]
    locales: Mapping[str, Mapping[str, Mapping[str, str]]]

    def resolve_locale(self, *candidates: str | None) -> str:
        """First candidate the template has, trying `es-ES` then `es`; else English."""
        for cand in candidates:
            if not cand:
                continue
            for form in (cand, cand.replace("_", "-").split("-")[0].lower()):
                if form in self.locales:
                    return form
        return DEFAULT_LOCALE if DEFAULT_LOCALE in self.locales else next(iter(self.locales))

    def missing_variables(self, data: Mapping[str, Any]) -> list[str]:
        return [v for v in self.variables if data.get(v) in (None, "")]

    def channels(self, locale: str) -> set[str]:
        return set(self.locales.get(locale, {}))


class TemplateCatalog:
    """Every known template by id, with one sandboxed jinja2 environment."""

    def __init__(self, templates: Iterable[Template]) -> None:
        self.templates = {t.id: t for t in templates}
        self.env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        self.html_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)
        self._compiled: dict[tuple[str, str, str, str], Any] = {}

    @classmethod
    def from_dir(cls, directory: Path) -> TemplateCatalog:
        templates = []
        for path in sorted(directory.glob("*.yaml")):
            doc = yaml.safe_load(path.read_text())
            templates.append(
                Template(
                    id=doc["id"],
                    priority=doc.get("priority", "standard"),
                    variables=tuple(doc.get("variables", ())),
                    locales=doc["locales"],
                )
            )
        return cls(templates)

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
        self, template_id: str, channel: str, data: Mapping[str, Any], *locales: str | None
    ) -> Rendered:
        template = self.check(template_id, data)
        locale = template.resolve_locale(*locales)
        parts = template.locales[locale].get(channel)
        if parts is None:
            raise TemplateError(f"template {template_id!r} has no {channel} content in {locale}")
        try:
            out = {
                part: self._compile(template_id, locale, channel, part, source).render(data)
                for part, source in parts.items()
            }
        except JinjaError as exc:
            raise TemplateError(f"template {template_id!r} failed to render: {exc}") from exc
        return Rendered(
            template=template_id,
            locale=locale,
            channel=channel,
            text=out.get("text", "").strip(),
            subject=one_line(out["subject"]) if "subject" in out else None,
            html=out.get("html"),
        )

    def _compile(self, tid: str, locale: str, channel: str, part: str, source: str) -> Any:
        key = (tid, locale, channel, part)
        compiled = self._compiled.get(key)
        if compiled is None:
            env = self.html_env if part == "html" else self.env
            compiled = self._compiled[key] = env.from_string(source)
        return compiled
