"""What the webhook tests share: ProviderEvent schema validation and SendGrid's key pairs."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import fastavro
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

SCHEMA = fastavro.parse_schema(
    orjson.loads((Path(__file__).resolve().parents[2] / "schemas/ProviderEvent.avsc").read_bytes())
)


def valid(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every record is a ProviderEvent the topic's schema accepts."""
    for record in records:
        assert fastavro.validation.validate(record, SCHEMA, raise_errors=True)
    return records


def ec_keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, base64.b64encode(public).decode()
