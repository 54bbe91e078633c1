"""The provider calls of a send lane (`agents.send`): many in flight, in order per key.

A lane (`Lane`) keeps one `KeyedConcurrency` for as long as its agent runs: up to
`HERALD_SEND_CONCURRENCY` single calls in flight, one at a time per record key
(`tenant:userId`), in the order the records arrived. The batch loop hands a lane
several batches at once (`Stage` with a window); each batch hands its calls over in
turn (`Lane.turn`, a FIFO lock), so a recipient's message from a later batch never
starts before one from an earlier batch, while other recipients' messages overtake.

Each call, in its own task: wait for its rate budget (a reservation taken without an
await in between, so atomic under asyncio), write its ledger intent and wait for the
broker to take it (`effects.branch()`: its own flush, not its neighbours'), then call.
A crash leaves in doubt exactly the calls in flight, which the ledger names.

A WhatsApp dispatch goes as session text or as its approved template, decided right
before its call from the worker's view of the user's 24-hour window
(`whatsapp_form_of`); outside the window without an approved template it is not sent
there at all, but falls back to the next channel (`pipeline.domain.service_window`).

Micro-batches (SendGrid) are one call each, made in the batch's turn. A retry whose
last attempt failed on the batch's provider fails over to the channel's next provider
(`ordered_providers`): it is sent on its own, never in that provider's micro-batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pipeline.domain import ledger
from pipeline.domain.breaker import CircuitState
from pipeline.domain.failover import provider_order
from pipeline.domain.followups import Outcome
from pipeline.domain.microbatch import group_for_batches
from pipeline.domain.service_window import WhatsAppForm, whatsapp_form
from pipeline.kafka import effects
from pipeline.kafka.keyed import KeyedConcurrency
from pipeline.providers.base import Provider
from pipeline.providers.delivery import deliver, deliver_batch, message_for, not_sent
from pipeline.runtime import Runtime, in_event

__all__ = [
    "Calls",
    "Lane",
    "Pending",
    "call_one",
    "first_closed",
    "ordered_providers",
    "record_intents",
    "start_calls",
    "whatsapp_form_of",
]


@dataclass
class Pending:
    """A dispatch that passed the ledger check and is about to be sent."""

    event: Any
    dispatch: dict[str, Any]
    ledger_key: str
    position: list[int]
    in_doubt: bool = False

    @property
    def message(self) -> Any:
        return self.event.message


@dataclass
class Lane:
    """What a send lane's overlapping batches share while its agent runs."""

    runner: KeyedConcurrency[Outcome | None]
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)  # batches start calls in order
    calling: set[str] = field(default_factory=set)  # ledger keys of dispatches in hand

    @classmethod
    def of(cls, rt: Runtime) -> Lane:
        return cls(KeyedConcurrency(rt.settings.send_concurrency))


@dataclass
class Calls:
    """One batch's calls: outcomes known (micro-batches) and calls in flight."""

    done: list[tuple[Pending, Outcome]]
    flying: list[tuple[Pending, asyncio.Future[Outcome | None]]]

    async def outcomes(self) -> list[tuple[Pending, Outcome]]:
        """Every outcome, in arrival order, once all of this batch's calls finished.

        A call that raised (an intent the broker did not take) raises here, after the
        others finished: the batch loop then dead-letters the batch. A call skipped
        because a rebalance started has no outcome (handed back, never acknowledged).
        """
        if self.flying:
            try:
                await asyncio.wait([f for _p, f in self.flying])
            finally:  # cancelled (the agent stops): cancel this batch's calls too
                for _p, future in self.flying:
                    future.cancel()
        results = list(self.done)
        for p, future in self.flying:
            outcome = future.result()
            if outcome is not None:
                results.append((p, outcome))
        return results


async def start_calls(rt: Runtime, lane: Lane, prepared: list[Pending], channel: str) -> Calls:
    """Make the micro-batch calls, and submit the single calls to the lane's runner.

    Each call waits for its rate budget first, then records its intent, then goes out:
    the window in which a crash leaves a call in doubt is the call itself. Once a
    rebalance starts no new call is made; the rest is handed back.
    """
    calls = Calls([], [])
    providers = rt.providers.get(channel, [])
    primary = first_closed(rt, providers)
    singles = prepared
    if primary is not None and primary.supports_batch and len(prepared) > 1:
        batch_api, singles = primary, []
        groups = group_for_batches(
            prepared, address=lambda p: p.dispatch["to"],
            batchable=lambda p: (  # a retry that fails over elsewhere goes on its own
                first_closed(rt, ordered_providers(rt, p.dispatch)) is batch_api
                and batch_api.batchable(message_for(p.dispatch))
            ),
        )  # fmt: skip
        for group in groups:
            if len(group) < 2:
                singles += group
                continue
            if rt.ownership.rebalancing:
                return calls
            for p in group:  # each message takes from its own partition's budget
                with in_event(p.event):
                    await rt.budgets.take(primary.name, p.message.partition)
            await record_intents(rt, group)
            outcomes = await deliver_batch(
                [p.dispatch for p in group], primary, rt.breakers[primary.name], rt.metrics
            )
            if outcomes is None:  # split: one by one isolates a bad address
                singles += group
            else:
                calls.done += zip(group, outcomes, strict=True)

    async def call(p: Pending) -> Outcome | None:
        if rt.ownership.rebalancing:
            return None
        with effects.branch():  # its intent flushed alone; the rest joins the batch
            return await call_one(rt, p, ordered_providers(rt, p.dispatch))

    calls.flying = [(p, lane.runner.submit(p.message.key, partial(call, p))) for p in singles]
    return calls


def ordered_providers(rt: Runtime, dispatch: Mapping[str, Any]) -> list[Provider]:
    """The dispatch's channel's providers in the order this attempt tries them: after
    the one its last attempt failed on (`pipeline.domain.failover`)."""
    providers = rt.providers.get(dispatch["channel"], [])
    by_name = {q.name: q for q in providers}
    names = [q.name for q in providers]
    return [by_name[n] for n in provider_order(names, dispatch["history"], dispatch["channel"])]


def first_closed(rt: Runtime, providers: Sequence[Provider]) -> Provider | None:
    """The first of `providers` whose circuit is closed (a micro-batch's provider)."""
    return next((q for q in providers if rt.breakers[q.name].state is CircuitState.CLOSED), None)


async def call_one(rt: Runtime, p: Pending, providers: Sequence[Provider]) -> Outcome:
    """One dispatch through `providers`, in the order given (`ordered_providers`); one
    whose circuit is open is skipped, so traffic goes to the next at once."""
    first = next((q.name for q in providers if rt.breakers[q.name].would_allow()), None)
    if first is not None:  # the budget of the provider it will most likely use, before
        with in_event(p.event):  # the intent: a crash while waiting leaves nothing in doubt
            await rt.budgets.take(first, p.message.partition)
    await record_intents(rt, [p])

    async def acquire(provider: str) -> None:
        if provider != first:  # failed over to another provider: its budget now
            with in_event(p.event):
                await rt.budgets.take(provider, p.message.partition)
        await rt.budgets.depart(provider, p.message.partition)  # spaced as it leaves

    form = whatsapp_form_of(rt, p.dispatch)
    if form is WhatsAppForm.NEXT_CHANNEL:
        return not_sent(
            p.dispatch, providers[0].name if providers else "", code="outside-window",
            reason="outside the 24-hour WhatsApp window and the template has no approved "
            "WhatsApp template: not sent on WhatsApp",
        )  # fmt: skip
    return await deliver(
        p.dispatch, providers, rt.breakers, rt.metrics, acquire,
        as_template=form is WhatsAppForm.TEMPLATE,
    )  # fmt: skip


def whatsapp_form_of(rt: Runtime, dispatch: Mapping[str, Any]) -> WhatsAppForm | None:
    """How a WhatsApp dispatch goes, from this worker's view of the user's 24-hour window
    right before the call (`pipeline.domain.service_window.whatsapp_form`); None for
    other channels."""
    if dispatch["channel"] != "whatsapp":
        return None
    view = rt.service_windows
    last = view.last_inbound(dispatch["tenant"], dispatch["to"]) if view is not None else None
    return whatsapp_form(
        has_template=bool(dispatch.get("whatsappTemplate")), last_inbound=last,
        now=datetime.now(UTC),
    )  # fmt: skip


async def record_intents(rt: Runtime, pending: list[Pending]) -> None:
    """The ledger intent of each call about to be made, acknowledged by the broker.

    After a crash, an entry still *calling* names a call that was in flight: the next
    owner treats it as in doubt. A resend keeps the intent it found.
    """
    for p in pending:
        if not p.in_doubt:
            with in_event(p.event):
                rt.tables.send_ledger[p.ledger_key] = ledger.intent(p.position)
    await effects.flush(rt.settings.ack_timeout_s)
