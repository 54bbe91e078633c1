"""Provider adapters: one per provider, each speaking that provider's real protocol.

Every adapter maps the provider's answers to one classification: `Accepted`
(with the provider's message id) or a `DeliveryError` subclass from
`pipeline.exceptions` (transient, recipient unreachable, invalid data, auth).
"""

from .base import Accepted, Message, Provider
from .sendgrid import SendGrid

__all__ = ["Accepted", "Message", "Provider", "SendGrid"]
