"""Stand-ins for the few Faust objects a stage touches: events, a stream, the app.

Shared by the batch-loop tests and the agents' tests, so both drive a stage the way
Faust does (batches in, acknowledgements and crashes out) without a broker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass
class Msg:
    offset: int
    partition: int = 0
    topic: str = "t"
    key: bytes = b""
    value: bytes | None = None
    generation_id: int = 1
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class Ev:
    message: Msg


@dataclass
class FakeApp:
    """Records crashes; `strict` makes a crash fail the test at once instead."""

    rebalancing: bool = False
    consumer_generation_id: int = 1
    strict: bool = False
    crashed: list[BaseException] = field(default_factory=list)

    async def crash(self, reason: BaseException) -> None:
        if self.strict:
            raise AssertionError(f"the worker would stop: {reason!r}")
        self.crashed.append(reason)


@dataclass
class FakeStream:
    """Stands in for a Faust stream: yields batches, records what was acknowledged."""

    batches: list[list[Ev]]
    acked: list[int] = field(default_factory=list)

    async def noack_take(self, max_: int, within: float) -> AsyncIterator[list[Ev]]:
        for batch in self.batches:
            yield batch

    async def ack(self, event: Ev) -> bool:
        self.acked.append(event.message.offset)
        return True
