"""The checks a template passes before it is saved (`PUT /v1/templates/{templateId}`).

A saved template is code that every worker will run for every message of its tenant,
written by a client. So it is refused (422, never stored, never rendered) unless:

- it has the shape of a template (`pipeline.domain.template_model.parse_template`);
- every text part compiles in the same jinja2 sandbox that renders it (syntax, unknown
  filters and tests);
- it reaches nothing by a name that starts with `_` (`{{ ''.__class__ }}`,
  `{{ x['__globals__'] }}`, `{{ x | attr('__class__') }}`): the sandbox would refuse
  these at render time too, but then the message is lost; refusing them at the door
  keeps the tenant's mistake (or attack) out of the pipeline. `attr` is refused
  altogether: it is the filter that names attributes by string; so is `**`, the
  shortest way to ask a worker for a number too large to print;
- the variables it uses are the ones it declares (plus `user`, the recipient's
  profile attributes), and every declared variable is used somewhere: a declared
  variable the content never shows is a request field the client fills for nothing,
  and an undeclared one would fail at render time (StrictUndefined).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from jinja2 import TemplateError as JinjaError
from jinja2 import meta, nodes
from jinja2.sandbox import SandboxedEnvironment

from pipeline.domain.template_model import Template, parse_template
from pipeline.domain.user_view import USER_VARIABLE
from pipeline.exceptions import TemplateError

__all__ = ["REFUSED_FILTERS", "check_saved", "sources"]

REFUSED_FILTERS = frozenset({"attr"})


def sources(template: Template) -> Iterator[tuple[str, str]]:
    """Every text the template renders, with where it is (`locale.channel.part[.key]`)."""
    names: list[str | None] = [v.name for v in template.variants]
    for locale in template.locales:
        for channel in template.locales[locale]:
            seen: set[tuple[str, str]] = set()
            for variant in names or [None]:
                for part, source in template.parts(locale, channel, variant).items():
                    if part == "template":
                        continue  # the approved WhatsApp template: Meta holds its text
                    where = f"{locale}.{channel}.{part}"
                    items = source.items() if isinstance(source, Mapping) else [("", source)]
                    for key, text in items:
                        if (where, str(text)) not in seen:
                            seen.add((where, str(text)))
                            yield (f"{where}.{key}" if key else where), str(text)


def check_saved(doc: Mapping[str, Any], env: SandboxedEnvironment) -> Template:
    """The Template of `doc` once every check above passed; else TemplateError (422)
    listing each problem with where it is."""
    template = parse_template(doc)
    errors: list[dict[str, str]] = []
    used: set[str] = set()
    for where, text in sources(template):
        try:
            tree = env.parse(text)
            env.compile(tree)  # unknown filters and tests fail here, not at render time
        except JinjaError as exc:
            errors.append({"field": f"locales.{where}", "message": f"does not compile: {exc}"})
            continue
        for problem in _refused(tree):
            errors.append({"field": f"locales.{where}", "message": problem})
        used |= meta.find_undeclared_variables(tree)
    used |= _approved_parameters(template)
    declared = set(template.variables)
    for name in sorted(used - declared - {USER_VARIABLE}):
        errors.append({"field": "variables", "message": f"{name!r} is used but not declared"})
    for name in sorted(declared - used):
        errors.append({"field": "variables", "message": f"{name!r} is declared but never used"})
    if errors:
        raise TemplateError(f"template {template.id!r} cannot be saved", errors)
    return template


def _refused(tree: nodes.Template) -> Iterator[str]:
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Name, nodes.Filter, nodes.Pow)):
        if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            yield f"reaches {node.attr!r}: names starting with '_' are refused"
        elif isinstance(node, nodes.Getitem) and _private_const(node.arg):
            yield f"reaches {node.arg.as_const()!r}: names starting with '_' are refused"
        elif isinstance(node, nodes.Name) and node.name.startswith("_"):
            yield f"uses {node.name!r}: names starting with '_' are refused"
        elif isinstance(node, nodes.Filter) and node.name in REFUSED_FILTERS:
            yield f"uses the filter {node.name!r}, which is refused"
        elif isinstance(node, nodes.Pow):
            yield "uses '**', which is refused"


def _private_const(arg: nodes.Expr) -> bool:
    return isinstance(arg, nodes.Const) and isinstance(arg.value, str) and arg.value.startswith("_")


def _approved_parameters(template: Template) -> set[str]:
    names: list[str | None] = [v.name for v in template.variants] or [None]
    out: set[str] = set()
    for locale in template.locales:
        for variant in names:
            approved = template.whatsapp_template(locale, variant)
            if approved is not None:
                out.update(approved.parameters)
    return out
