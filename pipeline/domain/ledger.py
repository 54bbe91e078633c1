"""The send ledger: one entry per (message, channel, attempt), and what a replay does.

The send stage writes an entry twice, each acknowledged by the broker before it
goes on (the entries live in the `send-ledger` table over a compacted changelog):

1. *calling*, before the provider call: the intent. After a crash, an entry
   still *calling* names exactly the calls that were in flight: in doubt.
2. *done*, after the call, with the provider's message id when it accepted.

`verdict` is the decision a stage makes on meeting a dispatch again:

    no entry                        -> SEND      (first time)
    entry from another record       -> DUPLICATE (the same attempt produced twice)
    done, accepted                  -> REPORT    (report SENT again; never call again)
    done, not accepted              -> SKIP      (its retry, fallback or dead letter exists)
    calling, priority resends       -> RESEND    (in doubt: call again, say so)
    calling, priority does not      -> GIVE_UP   (in doubt: report SENT in doubt, no call)

Which priorities resend is a setting (`HERALD_RESEND_IN_DOUBT`, default high and
standard: a duplicate gate change beats a lost one; a campaign never goes twice).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from enum import Enum
from typing import Any

__all__ = ["CALLING", "DONE", "Verdict", "intent", "ledger_key", "outcome", "verdict"]

CALLING = "calling"
DONE = "done"


class Verdict(Enum):
    SEND = "send"
    DUPLICATE = "duplicate"
    REPORT = "report"
    SKIP = "skip"
    RESEND = "resend"
    GIVE_UP = "give-up"

    @property
    def in_doubt(self) -> bool:
        return self in (Verdict.RESEND, Verdict.GIVE_UP)


def ledger_key(tenant: str, message_id: str, channel: str, attempt: int) -> str:
    return f"{tenant}:{message_id}:{channel}:{attempt}"


def intent(position: Sequence[int], *, at: float | None = None) -> dict[str, Any]:
    """The entry written before the provider call."""
    return {"position": list(position), "state": CALLING, "at": at or time.time()}


def outcome(
    position: Sequence[int], *, provider: str | None, provider_message_id: str | None, action: str
) -> dict[str, Any]:
    """The entry written once the call's outcome is known (and acted on)."""
    return {
        "position": list(position),
        "state": DONE,
        "provider": provider,
        "providerMessageId": provider_message_id,
        "action": action,
    }


def verdict(
    entry: Mapping[str, Any] | None,
    position: Sequence[int],
    priority: str,
    resend: Collection[str],
) -> Verdict:
    """What to do with a dispatch at `position`, given its ledger entry."""
    if entry is None:
        return Verdict.SEND
    if list(entry["position"]) != list(position):
        return Verdict.DUPLICATE
    if entry.get("state") == CALLING:
        return Verdict.RESEND if priority in resend else Verdict.GIVE_UP
    # `done` (entries written before intents existed have no state: done too)
    return Verdict.REPORT if entry.get("providerMessageId") else Verdict.SKIP
