"""Schemathesis over every operation of the running worker, from its own /openapi.json.

Each operation gets schema-valid and schema-breaking requests (examples,
coverage and fuzzing phases); every answer must be documented: its status, its
content type, its body's schema and headers, never a 5xx. /v1 calls carry a
valid JWT; webhooks get random, unsigned bodies and must refuse them with a
documented problem. The stateful phase is not run here: it would need GET
to answer 200 the instant POST answered 202, and the state table is filled by
the status agent a moment after the 202 (a GET polls until then).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from pipeline.http.routes import operations
from pipeline.settings import Settings
from tests.harness import Stack

# Schema-valid bodies can still break a domain rule (an unknown template, a
# missing variable, no contact point): 422 then is the documented answer; and a
# burst over the tenant's quota is a documented 429.
DOMAIN_REFUSALS = ["2xx", "401", "403", "404", "422", "429"]


@pytest.fixture(scope="module")
def herald_api(stack: Stack) -> Any:
    """The worker's own description, with a token for its bearer scheme and the verify token.

    The token goes through the security scheme (not a fixed header) so that
    Schemathesis can still send bad ones and expect 401.
    """
    config = SchemathesisConfig.from_dict(
        {
            "base-url": stack.api,
            "auth": {"openapi": {"bearerAuth": {"bearer": stack.token()}}},
            "generation": {"max-examples": 100},
            "parameters": {"hub.verify_token": Settings.from_env(stack.env).whatsapp_verify_token},
            "operations": [
                {
                    "include-path": "/v1/notifications",
                    "include-method": "POST",
                    "checks": {"positive_data_acceptance": {"expected-statuses": DOMAIN_REFUSALS}},
                }
            ],
        }
    )
    # Loaded as a document, not from its URL: Schemathesis would skip GET /openapi.json.
    doc = httpx.get(f"{stack.api}/openapi.json", timeout=5).json()
    return schemathesis.openapi.from_dict(doc, config=config)


herald = schemathesis.pytest.from_fixture("herald_api")


def test_the_description_is_valid_and_covers_every_declared_route(herald_api: Any) -> None:
    herald_api.validate()  # against the OpenAPI 3.1 meta-schema
    loaded = [result.ok() for result in herald_api.get_all_operations()]
    described = {(op.method.upper(), op.path) for op in loaded}
    assert described == {(op.method, op.path) for op in operations()}


@herald.parametrize()
def test_every_operation_answers_as_described(case: Any) -> None:
    case.call_and_validate()
