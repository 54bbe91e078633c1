"""Whether a signed provider event may change a message: the attempt match and the
event-id memory.

A valid signature proves only that the provider (or whoever holds its secret)
sent the event; the event's join key (`tenant:messageId`) is data the provider
echoes. So an event changes a message only when it names the message's own
send: a SENT attempt in the message's state by the same provider, with the same
provider message id. Otherwise it is dropped with a reason (a metric label):

    unknown-message               no state for tenant:messageId (nothing is created)
    provider-mismatch             the message was never sent by this provider
    provider-message-id-mismatch  sent by this provider, but as another message
    duplicate-event               the same event id again, or its status already
                                  recorded for that provider message
    send-not-recorded             a send of the message was still on its way into
                                  the state when the wait ended (the projection
                                  lagged, or the event names a send never made)

The state can lag the provider (the status projection is one topic behind the
send), so while a send of the message may still be on its way (`in_flight`) the
verdict is WAIT; the stage waits a bounded time (HERALD_PROVIDER_EVENT_WAIT, kept
under the rebalance timeout: a rebalance waits for the batch in hand) and then
judges with `settled=True`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pipeline.domain.state import EVENT_STATUS
from pipeline.domain.statuses import Status

__all__ = ["RECENT_IDS_MAX", "RECENT_IDS_TTL_S", "RecentIds", "Verdict", "in_flight", "judge"]

# The event-id memory of one worker: at most this many ids (about 150 bytes each, so
# about 3 MB), each for at most this long. It only has to cover the seconds between a
# status being emitted and the state folding it; older repeats are caught by the
# state itself (`judge`: the status already in the history for that send).
RECENT_IDS_MAX = 20_000
RECENT_IDS_TTL_S = 600.0


class Verdict(StrEnum):
    APPLY = "apply"
    WAIT = "wait"
    UNKNOWN_MESSAGE = "unknown-message"
    PROVIDER_MISMATCH = "provider-mismatch"
    ID_MISMATCH = "provider-message-id-mismatch"
    DUPLICATE = "duplicate-event"
    NOT_RECORDED = "send-not-recorded"


_UNDER_WAY = frozenset({Status.PENDING, Status.SCHEDULED, Status.PROCESSING, Status.RETRY})


def in_flight(state: Mapping[str, Any]) -> bool:
    """A send of this message may still be on its way into the state: the message has
    not been sent yet, or some channel's latest entry is PROCESSING or RETRY."""
    if state.get("status") in _UNDER_WAY:
        return True
    latest: dict[str, str] = {}
    for entry in state.get("history") or []:
        if entry.get("channel"):
            latest[entry["channel"]] = entry["status"]
    return any(status in _UNDER_WAY for status in latest.values())


def judge(
    event: Mapping[str, Any], state: Mapping[str, Any] | None, *, settled: bool = False
) -> Verdict:
    """What to do with one ProviderEvent given its message's state (pure).

    `settled` once the stage has waited long enough for the state to catch up: a
    verdict that was WAIT becomes the reason the event does not match.
    """
    if state is None:
        return Verdict.UNKNOWN_MESSAGE if settled else Verdict.WAIT
    provider, provider_id = event["provider"], event["providerMessageId"]
    sends = [a for a in state.get("attempts") or [] if a.get("outcome") == Status.SENT]
    by_provider = [a for a in sends if a.get("provider") == provider]
    if any(a.get("providerMessageId") == provider_id for a in by_provider):
        return Verdict.DUPLICATE if _recorded(event, state) else Verdict.APPLY
    if in_flight(state):
        return Verdict.NOT_RECORDED if settled else Verdict.WAIT
    return Verdict.ID_MISMATCH if by_provider else Verdict.PROVIDER_MISMATCH


def _recorded(event: Mapping[str, Any], state: Mapping[str, Any]) -> bool:
    """The status this event means is already in the history for this provider message
    (the state's own idempotency: folding it again would change nothing)."""
    status = EVENT_STATUS.get(event["event"])
    if status is None:
        return False
    reason = event.get("reason")
    return any(
        h.get("status") == status
        and h.get("provider") == event["provider"]
        and h.get("providerMessageId") == event["providerMessageId"]
        and h.get("error") == reason
        for h in state.get("history") or []
    )


@dataclass
class RecentIds:
    """A bounded, expiring set of event ids (clock passed in): at most `max_size` ids,
    each remembered for `ttl_s`. Insertion order is expiry order (one TTL for all)."""

    max_size: int = RECENT_IDS_MAX
    ttl_s: float = RECENT_IDS_TTL_S
    _expiry: OrderedDict[str, float] = field(default_factory=OrderedDict)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._expiry

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, event_id: str, now: float) -> bool:
        """True when `event_id` is remembered (unexpired) at `now`."""
        self._expire(now)
        return event_id in self._expiry

    def add(self, event_id: str, now: float) -> None:
        """Remember `event_id` until `now + ttl_s` (the oldest go first when full)."""
        self._expire(now)
        self._expiry.pop(event_id, None)
        self._expiry[event_id] = now + self.ttl_s
        while len(self._expiry) > self.max_size:
            self._expiry.popitem(last=False)

    def _expire(self, now: float) -> None:
        while self._expiry:
            event_id, expiry = next(iter(self._expiry.items()))
            if expiry > now:
                return
            del self._expiry[event_id]
