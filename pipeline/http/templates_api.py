"""`/v1/templates`: the tenant's templates, saved on `herald.templates` and read back.

A PUT checks the template (`pipeline.domain.template_checks`: a template that does not
compile in the sandbox, reaches Python internals or does not use exactly its declared
variables is 422 and is never stored), gives it the next version (1 more than the one
the tenant sees now, shipped or saved), produces it (acknowledged), and answers once this
process's catalog has applied it, so the next message through this process uses it;
every other worker and ingress reads the same record from its own view of the topic
within moments. Two PUTs of one template at the same instant may both get the same
version number: the later record wins. A tenant's template is never seen by another
tenant; the shipped ones are everyone's until a tenant saves its own under that id.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from pipeline.domain.template_checks import check_saved
from pipeline.domain.template_model import Template
from pipeline.domain.validation import ID_RE
from pipeline.exceptions import StateBehind, ValidationError
from pipeline.http.context import Call, Context, json_response
from pipeline.http.door import WAIT_POLL_S
from pipeline.http.problems import NOT_FOUND
from pipeline.http.template_models import TemplateBody
from pipeline.kafka.template_view import template_key

__all__ = ["get_template", "list_templates", "put_template", "summary"]


def summary(template: Template, saved: bool) -> dict[str, Any]:
    return {
        "id": template.id, "version": template.version, "priority": template.priority,
        "source": "saved" if saved else "shipped",
    }  # fmt: skip


async def put_template(ctx: Context, call: Call) -> web.Response:
    """Check, version, save, and answer once the template is in use here."""
    door, tenant = ctx.door, call.caller.tenant
    template_id = _template_id(call)
    body: TemplateBody = call.body
    written = body.model_dump(exclude_none=True)
    current = door.templates.find(template_id, tenant)
    version = (current.version if current is not None else 0) + 1
    template = check_saved({**written, "id": template_id, "version": version}, door.templates.env)
    record = {
        "tenant": tenant, "templateId": template_id, "version": version,
        "document": json.dumps(written, ensure_ascii=False),
        "updatedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }  # fmt: skip
    await door.produce("templates", [(template_key(tenant, template_id), record)])
    deadline = time.monotonic() + door.settings.read_catch_up_s
    while not _applied(door.templates.find(template_id, tenant), version):
        if time.monotonic() >= deadline:
            raise StateBehind("the template was saved but this process has not read it yet")
        await asyncio.sleep(WAIT_POLL_S)
    status = 201 if current is None else 200
    return json_response(_stored(template, written), status=status)


async def get_template(ctx: Context, call: Call) -> web.Response:
    """The template the tenant's messages use now: its own, else the shipped one."""
    tenant, template_id = call.caller.tenant, _template_id(call)
    template = ctx.door.templates.find(template_id, tenant)
    if template is None:
        return NOT_FOUND.answer(f"no template {template_id}")
    document = {k: v for k, v in template.document.items() if k not in ("id", "version")}
    return json_response(_stored(template, document, saved=_saved(ctx, tenant, template_id)))


async def list_templates(ctx: Context, call: Call) -> web.Response:
    """Every template the tenant sees, by id."""
    tenant, catalog = call.caller.tenant, ctx.door.templates
    listing = [summary(t, _saved(ctx, tenant, t.id)) for t in catalog.listing(tenant)]
    return json_response({"templates": listing})


def _template_id(call: Call) -> str:
    template_id = call.request.match_info["templateId"]
    if not ID_RE.fullmatch(template_id):
        why = "must be 1 to 128 letters, digits or ._:@-"
        raise ValidationError(f"templateId {why}", [{"field": "templateId", "message": why}])
    return template_id


def _saved(ctx: Context, tenant: str, template_id: str) -> bool:
    return (tenant, template_id) in ctx.door.templates.saved


def _applied(found: Template | None, version: int) -> bool:
    return found is not None and found.version >= version


def _stored(template: Template, document: dict[str, Any], saved: bool = True) -> dict[str, Any]:
    return {
        **summary(template, saved),
        "variables": list(template.variables),
        "locales": document.get("locales", {}),
        **({"variants": document["variants"]} if document.get("variants") else {}),
    }
