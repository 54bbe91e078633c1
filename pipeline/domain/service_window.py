"""WhatsApp's 24-hour customer-service window: session text or the approved template.

Meta accepts a free-form (session) message to a user only within 24 hours of the
user's last message to the business; outside it only a pre-approved template goes,
and a text is refused with error 131047 ("Re-engagement message"). Herald learns of
the user's messages from the Cloud API's inbound webhooks (`pipeline.http.webhooks.
whatsapp_cloud.inbound`), keeps the last one per tenant and number on a compacted
topic (`pipeline.kafka.service_windows`), and the send stage asks `whatsapp_form`
which form a dispatch goes in. Pure functions of times: unit-tested either side of
24 hours, no clock read here.

Decisions:
- The window is treated as closed `margin` early (default `SAFETY_MARGIN`, five
  minutes): a send that waits for its rate budget, its circuit or a retry must still
  reach Meta inside the window. A template is accepted at any time, so erring
  towards it costs a template conversation, never a message.
- Unknown (no inbound seen, the view not caught up yet, an unmapped tenant) is closed.
- Closed, and the template declares no approved WhatsApp template: nothing is sent on
  WhatsApp; the message goes to the next channel of its chain at once, as for a user
  who is not on WhatsApp (or fails as unreachable when none is left). Sending the text
  "for the provider to answer" would not fall back: the Cloud API accepts the request
  (200, a wamid) and reports 131047 later, in a `failed` status webhook, which makes
  the message FAILED with no other channel tried. The cost: a user whose inbound
  message this worker has not seen yet gets the next channel instead of WhatsApp.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pipeline.domain.templates import ApprovedTemplate, one_line

__all__ = [
    "SAFETY_MARGIN", "SERVICE_WINDOW", "WhatsAppForm", "parameter_text", "template_parameters",
    "whatsapp_form", "window_key", "window_open",
]  # fmt: skip

SERVICE_WINDOW = timedelta(hours=24)
SAFETY_MARGIN = timedelta(minutes=5)
_SPACES = " " * 5


class WhatsAppForm(StrEnum):
    """How a WhatsApp dispatch goes out."""

    SESSION_TEXT = "text"  # a text message, inside the window
    TEMPLATE = "template"  # the approved template with its parameters
    NEXT_CHANNEL = "next-channel"  # outside the window without an approved template


def window_key(phone_number_id: str, number: str) -> str:
    """The key of a window record: `phoneNumberId:number`, the number as digits only
    (WhatsApp's `wa_id`; a dispatch's `to` is E.164 with its `+`)."""
    return f"{phone_number_id}:{''.join(c for c in number if c.isdigit())}"


def window_open(
    last_inbound: datetime | None, now: datetime, *, margin: timedelta = SAFETY_MARGIN
) -> bool:
    """Whether the user's last message (`last_inbound`, aware) still opens the window at
    `now`, `margin` before it closes; never when no message is known."""
    if last_inbound is None:
        return False
    return last_inbound <= now < last_inbound + SERVICE_WINDOW - margin


def whatsapp_form(
    *,
    has_template: bool,
    last_inbound: datetime | None,
    now: datetime,
    margin: timedelta = SAFETY_MARGIN,
) -> WhatsAppForm:
    """Session text while the window is open; the approved template outside it, when
    the dispatch has one; else not WhatsApp at all (the next channel: see above)."""
    if window_open(last_inbound, now, margin=margin):
        return WhatsAppForm.SESSION_TEXT
    return WhatsAppForm.TEMPLATE if has_template else WhatsAppForm.NEXT_CHANNEL


def parameter_text(value: Any) -> str:
    """One template parameter as WhatsApp takes it: text without line breaks, tabs or
    more than four spaces in a row (Meta refuses those, error 132018), JSON spelling
    for booleans."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    text = one_line(str(value))
    while _SPACES in text:
        text = text.replace(_SPACES, "    ")
    return text


def template_parameters(approved: ApprovedTemplate, data: Mapping[str, Any]) -> list[str]:
    """The values of {{1}}, {{2}}, ... from a request's data, in order, each made
    acceptable to WhatsApp (`parameter_text`)."""
    return [parameter_text(data[name]) for name in approved.parameters]
