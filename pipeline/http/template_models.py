"""The bodies of `/v1/templates`: a template as a client saves it and as it is read back.

The shape is the shipped YAML's (`pipeline/shipped_templates/*.yaml`, see
`pipeline.domain.templates`), as JSON. The model checks the outline; what a template
must be to be saved (it compiles in the sandbox, reaches no internals, uses exactly the
variables it declares, its variants and approved WhatsApp templates are well formed) is
`pipeline.domain.template_checks`, answered as 422 with each problem's place.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.domain.validation import ID_RE

__all__ = [
    "Parts",
    "Priority",
    "StoredTemplate",
    "TemplateBody",
    "TemplateListing",
    "TemplateSummary",
]

Priority = Literal["high", "standard", "marketing"]
Parts = dict[str, Any]  # part -> jinja2 text (`subject`, `text`, `html`); push `data` a mapping;
# WhatsApp `template` the approved template {name, language, parameters}


class TemplateBody(BaseModel):
    """A template to save under the path's id; the version is the server's (previous + 1)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    priority: Priority = Field("standard", description="What the template is for.")
    variables: list[str] = Field(
        default_factory=list,
        description="Every data variable the content uses, and only those (each one "
        "required in a request). `user` (the profile's attributes) needs no declaring.",
    )
    locales: dict[str, dict[str, Parts]] = Field(
        description="locale (BCP 47) -> channel (email, sms, whatsapp, push) -> parts.",
        min_length=1,
    )
    variants: dict[str, Any] | None = Field(
        None,
        description="name -> {weight, locales?}: an A/B test; each user gets one variant, "
        "stable per (user, template version).",
    )


class TemplateSummary(BaseModel):
    id: str = Field(pattern=ID_RE.pattern)
    version: int
    priority: Priority
    source: Literal["saved", "shipped"] = Field(
        description="`saved`: the tenant's own (PUT); `shipped`: Herald's, for every tenant."
    )


class StoredTemplate(TemplateSummary):
    """A template as the tenant's messages are rendered from it now."""

    variables: list[str]
    locales: dict[str, dict[str, Parts]]
    variants: dict[str, Any] | None = None


class TemplateListing(BaseModel):
    templates: list[TemplateSummary]
