"""`/docs`: the API reference as one HTML page, rendered from the OpenAPI document.

Rendered on the server with jinja2 from the same dict `/openapi.json` serves, so
the page cannot say something the description does not; no script and no CDN,
so it works offline and behind any firewall.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

__all__ = ["render_docs", "ticks", "type_label"]

_REF_PREFIX = "#/components/schemas/"
_TICKS = re.compile(r"`([^`]+)`")


def render_docs(description: dict[str, Any]) -> str:
    """The page for this OpenAPI document."""
    env = Environment(
        loader=PackageLoader("pipeline.http", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["type_label"] = type_label
    env.filters["ticks"] = ticks
    env.filters["pretty"] = lambda value: json.dumps(value, indent=2, ensure_ascii=False)
    by_tag: dict[str, list[dict[str, Any]]] = {t["name"]: [] for t in description.get("tags", [])}
    for path, methods in description["paths"].items():
        for method, op in methods.items():
            entry = {"path": path, "method": method.upper(), **op}
            by_tag.setdefault(op.get("tags", ["other"])[0], []).append(entry)
    return env.get_template("docs.html.j2").render(
        doc=description, by_tag=by_tag, schemas=description["components"]["schemas"]
    )


def type_label(schema: dict[str, Any]) -> Markup:
    """A JSON Schema in a few words, with links to the named schemas."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(_REF_PREFIX)
        label = Markup('<a href="#schema-{0}">{0}</a>').format(name)
        pinned = schema.get("properties", {}).get("type", {}).get("const")
        return label + Markup(" with type ") + _code(pinned) if pinned else label
    if "anyOf" in schema:
        return Markup(" or ").join(type_label(s) for s in schema["anyOf"])
    if "const" in schema:
        return _code(schema["const"])
    if "enum" in schema:
        return Markup("one of ") + Markup(", ").join(_code(v) for v in schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return Markup(escape(" or ".join(kind)))
    if kind == "array":
        return Markup("array of ") + type_label(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return Markup("map of ") + type_label(schema["additionalProperties"])
    if kind is None:
        return Markup("any JSON")
    label = Markup(escape(kind))
    if "format" in schema:
        label += Markup(" ({})").format(schema["format"])
    if "pattern" in schema:
        label += Markup(" matching ") + _code(schema["pattern"])
    return label


def _code(value: Any) -> Markup:
    return Markup("<code>{}</code>").format(value)


def ticks(text: str) -> Markup:
    """Escaped text with `code spans` (the description's one bit of markdown)."""
    return Markup(_TICKS.sub(r"<code>\1</code>", str(escape(text))))
