"""The statuses of a notification (the contract's list) and how they relate.

Every state change is a NotificationStatus record whose `status` is one of these; the
Avro enum in schemas/NotificationStatus.avsc holds the same symbols (a unit test keeps
them in step). The contract's status set has no FALLBACK: a move to the next channel
(the recipient is not reachable on this one) is a RETRY status whose record says
`outcome: FALLBACK`, and the state's `attempts` list it as a FALLBACK (`AttemptOutcome`).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ATTEMPT_OUTCOMES", "ENGAGEMENT", "FINAL", "OUTCOMES", "AttemptOutcome", "Status"]


class Status(StrEnum):
    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    PROCESSING = "PROCESSING"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    BOUNCED = "BOUNCED"
    RETRY = "RETRY"
    FAILED = "FAILED"
    DLQ = "DLQ"
    BLOCKED = "BLOCKED"
    CANCELLED = "CANCELLED"
    OPENED = "OPENED"
    CLICKED = "CLICKED"


# Once reached, these are not replaced by a later in-flight status of the same attempt.
FINAL = frozenset(
    {Status.DELIVERED, Status.BOUNCED, Status.FAILED, Status.DLQ, Status.BLOCKED,
     Status.CANCELLED}
)  # fmt: skip
# Engagement: recorded in the history, never the message's current status.
ENGAGEMENT = frozenset({Status.OPENED, Status.CLICKED})
# The outcome of one attempt on one channel (what `attempts` lists).
ATTEMPT_OUTCOMES = frozenset({Status.SENT, Status.FAILED, Status.RETRY, Status.DLQ})


class AttemptOutcome(StrEnum):
    """How one attempt on one channel ended, as `attempts` names it: its status, or
    FALLBACK for a RETRY that moves to the next channel (the recipient is not reachable
    on this one, e.g. not a WhatsApp user or an unregistered push token)."""

    SENT = "SENT"
    RETRY = "RETRY"
    FALLBACK = "FALLBACK"
    FAILED = "FAILED"
    DLQ = "DLQ"


# A message has an outcome once sent or final (what `Prefer: wait` waits for).
OUTCOMES = FINAL | {Status.SENT}
