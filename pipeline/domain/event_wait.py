"""How long a provider event may wait for its send, and when to look at it again.

A provider's webhook can arrive before the status projection has folded the send it
names (the projection lags during a backlog). The event is then not held in the
stage (a held event stops its stream, and with it Faust's delivery of every other
topic to this worker, the status topic included: the projection it waits for would
never catch up); it is handed to the durable scheduler and judged again later, until
it has waited `HERALD_PROVIDER_EVENT_WAIT` seconds. Pure: the clock is passed in.
"""

from __future__ import annotations

from datetime import datetime

__all__ = ["RECHECK_MAX_S", "RECHECK_MIN_S", "first_seen_s", "recheck_after_s"]

RECHECK_MIN_S = 0.25
RECHECK_MAX_S = 30.0


def first_seen_s(at: str | None, record_s: float) -> float:
    """When the event was first seen (epoch seconds): the earlier of the provider's own
    time for it (`at`) and this copy's Kafka timestamp. A copy handed back by the
    scheduler is younger than the event; `at` still dates the first one."""
    try:
        provider_s = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() if at else None
    except ValueError:
        provider_s = None
    return record_s if provider_s is None else min(provider_s, record_s)


def recheck_after_s(waited_s: float) -> float:
    """Seconds until an event that cannot be judged yet is looked at again: as long as
    it has waited so far (so the checks double and a long backlog costs a few records
    per event), at least `RECHECK_MIN_S`, at most `RECHECK_MAX_S`."""
    return min(RECHECK_MAX_S, max(RECHECK_MIN_S, waited_s))
