"""What the simulator remembers, and its fault scripts: one of each for every provider.

Every provider module (HTTP or the SMTP sink) records into one
`SimulatorState` and takes its faults through one `apply_fault`, so a fault
behaves the same everywhere: `latencyMs` delays the call, `timeout` never
answers (until the simulator stops), and what is left (`5xx`, `429`, `down`)
is handed back for the provider to render in its own shape. The state lives
in the app (`app[SIM_STATE]`), never at module level: two simulators in one
process (as in the unit tests) share nothing.

Each provider module registers with one `SimProvider`; `server.py` mounts
them all from one registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from pipeline.clock import now
from pipeline.exceptions import ValidationError
from pipeline.settings import Settings

__all__ = [
    "SIM_STATE",
    "WEBHOOK_TIMEOUT",
    "Failure",
    "Fault",
    "FaultKind",
    "Post",
    "SimProvider",
    "SimulatorState",
    "apply_fault",
]

log = structlog.get_logger("herald.simulator")

WEBHOOK_TIMEOUT = aiohttp.ClientTimeout(total=10)


class FaultKind(StrEnum):
    """What `PUT /_sim/faults/{provider}` can make a provider do (its `fail`)."""

    SERVER_ERROR = "5xx"
    RATE_LIMITED = "429"
    TIMEOUT = "timeout"
    DOWN = "down"


@dataclass
class Fault:
    """One provider's fault script; `times` counts down as calls take it."""

    fail: FaultKind | None = None
    times: int | None = None  # None: until cleared
    latency_ms: int = 0
    to: str | None = None  # only calls for this recipient (Twilio, Vonage, SendGrid); None: all
    retry_after: int = 1  # seconds, in the Retry-After of a 429

    @classmethod
    def from_script(cls, doc: Any) -> Fault:
        """The fault a PUT body describes: `{"fail", "times", "latencyMs", "retryAfter", "to"}`."""
        if not isinstance(doc, dict):
            raise ValidationError("a fault script is a JSON object")
        fail = doc.get("fail")
        if fail is not None and fail not in tuple(FaultKind):
            raise ValidationError(f"fail must be one of {tuple(k.value for k in FaultKind)}")
        times, latency = doc.get("times"), doc.get("latencyMs", 0)
        retry_after, to = doc.get("retryAfter", 1), doc.get("to")
        for name, value in (("times", times), ("latencyMs", latency), ("retryAfter", retry_after)):
            if value is not None and (type(value) is not int or value < 0):
                raise ValidationError(f"{name} must be a non-negative integer")
        if to is not None and not isinstance(to, str):
            raise ValidationError("to must be a recipient address or number")
        return cls(FaultKind(fail) if fail else None, times, latency, to, retry_after)

    def take(self, to: str | None = None) -> FaultKind | None:
        """The failure to inject for this call, consuming one of `times`."""
        if self.fail is None or (self.to is not None and to is not None and to != self.to):
            return None
        if self.times is None:
            return self.fail
        if self.times <= 0:
            return None
        self.times -= 1
        return self.fail


@dataclass(frozen=True)
class Failure:
    """A failure injected into one call, for the provider to render its own way."""

    kind: FaultKind
    retry_after: int  # seconds, for the provider's rate-limit answer


Post = Callable[[], Awaitable[None]]


@dataclass
class SimulatorState:
    """Everything the simulator remembers; one instance per simulator."""

    settings: Settings
    # The newest `settings.sim_message_log` messages, oldest first; their `seq` numbers are
    # consecutive (only the oldest are dropped), which makes `?after=` a constant-time cut.
    messages: deque[dict[str, Any]] = field(init=False)
    next_seq: int = 1  # every recorded message gets the next number: readers keep a cursor
    faults: dict[str, Fault] = field(default_factory=dict)
    fcm_tokens: dict[str, float] = field(default_factory=dict)  # FCM OAuth token -> expiry
    # WhatsApp: when each number (digits) last wrote to the business, epoch seconds (the
    # 24-hour customer-service window, `pipeline.simulator.whatsapp_inbound`).
    whatsapp_inbound: dict[str, float] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    session: aiohttp.ClientSession | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.messages = deque(maxlen=max(1, self.settings.sim_message_log))

    def messages_after(self, seq: int) -> list[dict[str, Any]]:
        """The messages recorded after `seq` that are still kept, oldest first."""
        if not self.messages:
            return []
        start = max(0, seq - self.messages[0]["seq"] + 1)
        return list(itertools.islice(self.messages, start, None))

    def record(
        self,
        provider: str,
        channel: str,
        to: str,
        content: Any,
        provider_message_id: str | None = None,
    ) -> str:
        """Remember an accepted message (the `/_sim/messages` entry); its provider id."""
        provider_message_id = provider_message_id or uuid.uuid4().hex
        self.next_seq += 1
        self.messages.append(
            {
                "seq": self.next_seq - 1,
                "provider": provider,
                "channel": channel,
                "to": to,
                "content": content,
                "providerMessageId": provider_message_id,
                "at": now(),
            }
        )
        return provider_message_id

    async def stall(self) -> None:
        """A call that never answers (until the simulator stops): the client times out."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), 3600)

    def later(self, *posts: Post) -> None:
        """Run the webhook posts in order, after the configured delay, in the background."""

        async def run() -> None:
            await asyncio.sleep(self.settings.sim_webhook_delay_ms / 1000)
            for post in posts:
                try:
                    await post()
                except Exception as exc:  # a webhook never takes the simulator down
                    log.warning("webhook not delivered", error=repr(exc))

        task = asyncio.get_running_loop().create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int | None:
        """POST a signed webhook to the pipeline; its HTTP status (None: not posted). A
        refusal is logged, not raised."""
        if self.session is None:
            log.warning("webhook dropped: simulator not running", url=url)
            return None
        async with self.session.post(
            url, data=body, headers=dict(headers), timeout=WEBHOOK_TIMEOUT
        ) as resp:
            if resp.status >= 300:
                log.warning("webhook refused", url=url, status=resp.status)
            return resp.status


SIM_STATE = web.AppKey("state", SimulatorState)


@dataclass(frozen=True)
class SimProvider:
    """One provider the simulator plays, as it registers: the names its faults are set
    under (`PUT /_sim/faults/{name}`) and its HTTP routes (none for the SMTP sink)."""

    names: tuple[str, ...]
    routes: tuple[web.RouteDef, ...] = ()


async def apply_fault(
    state: SimulatorState, provider: str, to: str | None = None
) -> Failure | None:
    """The failure this call gets, if any, after the fault's latency.

    A `timeout` stalls here until the simulator stops; the caller then hangs
    up its own way. `to` is the call's recipient, for faults aimed at one.
    """
    fault = state.faults.get(provider)
    if fault is None:
        return None
    if fault.latency_ms:
        await asyncio.sleep(fault.latency_ms / 1000)
    kind = fault.take(to)
    if kind is None:
        return None
    if kind is FaultKind.TIMEOUT:
        await state.stall()
    return Failure(kind, fault.retry_after)
