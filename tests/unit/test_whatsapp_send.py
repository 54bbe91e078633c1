"""The send stage and the 24-hour window, over fake streams and sinks: outside the window
(nothing known of the user) a WhatsApp dispatch goes as its approved template; without
one it is not sent on WhatsApp but falls back to the next channel at once."""

from __future__ import annotations

from typing import Any

from agents.send import send
from pipeline.runtime import Runtime
from tests.unit.test_agents import (  # noqa: F401  (world: the fixture)
    dispatched,
    event,
    run,
    statuses,
    world,
)

LANE = "herald.dispatch.whatsapp.urgent"
GATE = {"name": "Ana", "flight": "IB3456", "oldGate": "A3", "newGate": "B12"}


async def gate_change(rt: Runtime, make_request: Any) -> dict[str, Any]:
    value = await dispatched(
        rt, make_request, template="gate-change", data=dict(GATE), priority="high",
        recipient={"userId": "u-1", "whatsapp": "+34600111222", "phone": "+34600111222"},
        channels=["whatsapp", "sms"],
    )  # fmt: skip
    return rt.codec.decode("ChannelDispatch", value)


async def test_outside_the_window_the_provider_gets_the_approved_template(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    dispatch = await gate_change(rt, make_request)
    value = rt.codec.encode("ChannelDispatch", dispatch)
    await run(send, rt, [[event(LANE, 1, "acme:u-1", value)]], channel="whatsapp")
    [message] = rt.providers["whatsapp"][0].sent  # type: ignore[attr-defined]
    assert message.whatsapp_template is not None
    assert (message.whatsapp_template.name, message.whatsapp_template.params) == (
        "gate_change", ("Ana", "IB3456", "B12", "A3"),
    )  # fmt: skip
    assert statuses(rt)[-1] == "SENT"


async def test_outside_the_window_without_an_approved_template_it_falls_back(
    world: Runtime,  # noqa: F811
    make_request: Any,
) -> None:
    rt = world
    dispatch = await gate_change(rt, make_request) | {"whatsappTemplate": None}
    value = rt.codec.encode("ChannelDispatch", dispatch)
    await run(send, rt, [[event(LANE, 1, "acme:u-1", value)]], channel="whatsapp")
    assert rt.providers["whatsapp"][0].sent == []  # type: ignore[attr-defined]
    [sms] = rt.sinks.dispatch[("sms", "urgent")].values()
    assert sms["channel"] == "sms" and "B12" in sms["text"]
    last = rt.sinks.status.values()[-1]
    assert (last["status"], last["outcome"], last["channel"]) == ("RETRY", "FALLBACK", "whatsapp")
    assert "outside the 24-hour WhatsApp window" in sms["history"][-1]["error"]
