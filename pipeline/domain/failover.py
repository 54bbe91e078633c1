"""Failover before the dead letter: which of a channel's providers an attempt tries first.

A retry after a provider failure (timeout, 5xx, 429, outage, our credentials refused)
goes to the channel's next provider in failover order, so a message reaches the dead
letter queue only after every provider of its channel had its chance. The order is
derived from the dispatch's `history` (every provider call so far, across channels and
retries), so the dispatch record needs no field of its own and a retry that outlives
its worker still knows where it stands:

    providers (failover order)   last call on this channel   this attempt tries
    sendgrid, smtp               none (first attempt)        sendgrid, then smtp
    sendgrid, smtp               sendgrid                    smtp, then sendgrid
    sendgrid, smtp               smtp                        sendgrid, then smtp
    fcm                          fcm                         fcm

The caller still skips a provider whose circuit is open (`deliver`), so with the
circuit open traffic goes to the secondary at once, as before. The retry counts stay
per message (the seed's 6.6 budget spans the providers); `retry_floor` only makes sure
a class of error with fewer retries than providers (a refused API key: none) still
reaches every provider once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["last_provider", "provider_order", "retry_floor"]


def last_provider(
    providers: Sequence[str], history: Sequence[Mapping[str, Any]], channel: str
) -> str | None:
    """The provider of the channel's newest call in `history` (None: not called yet)."""
    for call in reversed(history):
        if call.get("channel") == channel and call.get("provider") in providers:
            return str(call["provider"])
    return None


def provider_order(
    providers: Sequence[str], history: Sequence[Mapping[str, Any]], channel: str
) -> list[str]:
    """`providers` (names, in failover order) rotated to start after the last one called."""
    last = last_provider(providers, history, channel)
    if last is None:
        return list(providers)
    i = list(providers).index(last) + 1
    return [*providers[i:], *providers[:i]]


def retry_floor(providers: Sequence[str]) -> int:
    """The fewest retries a provider failure gets: enough to reach every provider once."""
    return max(0, len(providers) - 1)
