"""Per-run webhook secrets for a development stack (`herald up`, the test stack).

No verification key ships with Herald: a key in the repository is a key anyone can
sign with. A local stack makes its own on every run, an ECDSA P-256 pair for
SendGrid (the private half for the simulator, the public half for the worker) and
random HMAC secrets for Twilio, Vonage and WhatsApp, and hands the same values to
both processes through their environment.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["WEBHOOK_SECRET_VARS", "sendgrid_key_pair", "webhook_secrets"]

# Every environment variable a local stack fills in (the SendGrid pair is one unit).
WEBHOOK_SECRET_VARS = (
    "SENDGRID_WEBHOOK_PUBLIC_KEY",
    "HERALD_SIM_SENDGRID_WEBHOOK_PRIVATE_KEY",
    "TWILIO_AUTH_TOKEN",
    "VONAGE_SIGNATURE_SECRET",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
)


def sendgrid_key_pair() -> tuple[str, str]:
    """A fresh (private, public) pair: base64 DER PKCS8 and base64 DER SPKI, as SendGrid."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(private).decode(), base64.b64encode(public).decode()


def webhook_secrets(keep: Mapping[str, str] | None = None) -> dict[str, str]:
    """Fresh values for WEBHOOK_SECRET_VARS; those already set in `keep` are kept.

    The SendGrid pair is made anew unless both halves are in `keep` (half a pair
    verifies nothing).
    """
    keep = {k: v for k, v in (keep or {}).items() if k in WEBHOOK_SECRET_VARS and v}
    private, public = sendgrid_key_pair()
    out = {
        "SENDGRID_WEBHOOK_PUBLIC_KEY": public,
        "HERALD_SIM_SENDGRID_WEBHOOK_PRIVATE_KEY": private,
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "VONAGE_SIGNATURE_SECRET": secrets.token_urlsafe(32),
        "WHATSAPP_APP_SECRET": secrets.token_hex(16),
        "WHATSAPP_VERIFY_TOKEN": secrets.token_urlsafe(24),
    }
    pair = ("SENDGRID_WEBHOOK_PUBLIC_KEY", "HERALD_SIM_SENDGRID_WEBHOOK_PRIVATE_KEY")
    if not all(k in keep for k in pair):
        keep = {k: v for k, v in keep.items() if k not in pair}
    out.update(keep)
    return out
