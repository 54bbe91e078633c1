"""The tenants' saved templates (`herald.templates`), applied to a process's catalog.

Every worker and every ingress renders or checks any tenant's message, so each reads
the whole topic (`CompactedView`) into its `TemplateCatalog`: a template saved through
the API is used by the next message, on every process, without a restart. A record is
checked again here as it was when saved (`check_saved`): a producer that bypasses the
API cannot make a worker run a template the API would have refused. A record that fails
is skipped (the tenant keeps the previous version) and counted, never applied.
"""

from __future__ import annotations

import json

import structlog

from pipeline.domain.template_checks import check_saved
from pipeline.domain.templates import TemplateCatalog
from pipeline.domain.tenancy import valid_tenant
from pipeline.domain.validation import ID_RE
from pipeline.exceptions import DecodeError, TemplateError
from pipeline.kafka.catalog import TEMPLATES
from pipeline.kafka.codecs import AvroCodec
from pipeline.kafka.compacted_view import CompactedView

__all__ = ["TemplateView", "template_key"]

log = structlog.get_logger("herald.templates")


def template_key(tenant: str, template_id: str) -> str:
    """The record key of a tenant's template: `tenant:templateId`."""
    return f"{tenant}:{template_id}"


class TemplateView(CompactedView):
    """Applies each saved template (or its tombstone) to `catalog`; `refused` counts the
    records that were not applied (undecodable, mis-keyed, or failing the save checks)."""

    client_id = "herald-templates"

    def __init__(self, codec: AvroCodec, catalog: TemplateCatalog, topic: str = TEMPLATES):
        super().__init__(topic)
        self.codec = codec
        self.catalog = catalog
        self.refused = 0

    def apply(self, key: bytes | str | None, value: bytes | None) -> None:
        text = key.decode(errors="replace") if isinstance(key, bytes) else (key or "")
        tenant, _, template_id = text.partition(":")
        if not valid_tenant(tenant) or not ID_RE.fullmatch(template_id):
            return self._refuse("key", "not tenant:templateId")
        if value is None:
            self.catalog.drop(tenant, template_id)
            return None
        try:
            record = self.codec.decode("TemplateDocument", value)
            if (record["tenant"], record["templateId"]) != (tenant, template_id):
                return self._refuse("key", "the key is not the record's tenant:templateId")
            doc = {**json.loads(record["document"]), "id": template_id}
            doc["version"] = record["version"]
            template = check_saved(doc, self.catalog.env)
        except (DecodeError, ValueError, TypeError, TemplateError) as exc:
            return self._refuse("record", type(exc).__name__)
        self.catalog.store(tenant, template)
        return None

    def _refuse(self, what: str, why: str) -> None:
        self.refused += 1
        log.warning("templates.record_refused", what=what, why=why)
