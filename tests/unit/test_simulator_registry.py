"""The simulator's parts: one fault applier for every provider, and one registry that
mounts every provider module (no module imports the server back)."""

from __future__ import annotations

import ast
import asyncio
import time
from pathlib import Path

import pytest

from pipeline.exceptions import ValidationError
from pipeline.settings import Settings
from pipeline.simulator import server
from pipeline.simulator.state import Fault, FaultKind, SimulatorState, apply_fault

SIMULATOR = Path(server.__file__).parent


@pytest.mark.parametrize(
    ("script", "fault"),
    [
        ({"fail": "5xx", "times": 2}, Fault(FaultKind.SERVER_ERROR, 2)),
        ({"fail": "429", "retryAfter": 3}, Fault(FaultKind.RATE_LIMITED, retry_after=3)),
        ({"latencyMs": 50}, Fault(None, latency_ms=50)),
        ({"fail": "down", "to": "+34600111222"}, Fault(FaultKind.DOWN, to="+34600111222")),
    ],
)
def test_fault_scripts_parse(script: dict[str, object], fault: Fault) -> None:
    assert Fault.from_script(script) == fault


@pytest.mark.parametrize(
    "script",
    [[1], {"fail": "sometimes"}, {"times": -1}, {"latencyMs": 1.5}, {"retryAfter": True},
     {"to": 7}],
)  # fmt: skip
def test_bad_fault_scripts_are_validation_errors(script: object) -> None:
    with pytest.raises(ValidationError):
        Fault.from_script(script)


async def test_apply_fault_counts_down_aims_at_one_recipient_and_delays() -> None:
    state = SimulatorState(Settings())
    assert await apply_fault(state, "twilio") is None  # no script: nothing
    state.faults["twilio"] = Fault(FaultKind.RATE_LIMITED, times=1, to="+1555", retry_after=4)
    assert await apply_fault(state, "twilio", "+1666") is None  # someone else
    failure = await apply_fault(state, "twilio", "+1555")
    assert failure is not None and (failure.kind, failure.retry_after) == ("429", 4)
    assert await apply_fault(state, "twilio", "+1555") is None  # times used up
    state.faults["smtp"] = Fault(latency_ms=100)
    started = time.monotonic()
    assert await apply_fault(state, "smtp") is None
    assert time.monotonic() - started >= 0.1


async def test_a_timeout_stalls_until_the_simulator_stops() -> None:
    state = SimulatorState(Settings())
    state.faults["fcm"] = Fault(FaultKind.TIMEOUT)
    call = asyncio.ensure_future(apply_fault(state, "fcm"))
    await asyncio.sleep(0.05)
    assert not call.done()
    state.stopping.set()
    failure = await asyncio.wait_for(call, 1)
    assert failure is not None and failure.kind is FaultKind.TIMEOUT


def test_the_registry_names_every_provider_once() -> None:
    assert server.PROVIDERS == (
        "sendgrid", "smtp", "twilio", "twilio-whatsapp", "vonage", "whatsapp-cloud", "fcm",
    )  # fmt: skip
    routes = [(r.method, r.path) for p in server.REGISTRY for r in p.routes]
    assert len(routes) == len(set(routes)) == 7  # one per provider, and WhatsApp's inbound
    modules = {p.name for p in SIMULATOR.glob("*.py")}
    helpers = {"__init__.py", "server.py", "state.py", "wire.py", "inspection.py"}
    providers = modules - helpers - {"whatsapp_inbound.py"}  # WhatsApp's webhooks
    assert len(providers) == len(server.REGISTRY)  # a module per provider, each registered


@pytest.mark.parametrize("module", sorted(p.name for p in SIMULATOR.glob("*.py")))
def test_nothing_imports_the_server_back(module: str) -> None:
    tree = ast.parse((SIMULATOR / module).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "pipeline.simulator.server" not in imported


def test_the_message_log_keeps_the_newest_and_the_cursor_still_works() -> None:
    state = SimulatorState(Settings().with_(sim_message_log=3))
    for n in range(5):
        state.record("twilio", "sms", f"+1555000{n}", {"body": "hi"})
    assert [m["seq"] for m in state.messages] == [3, 4, 5]  # the two oldest were dropped
    assert [m["seq"] for m in state.messages_after(0)] == [3, 4, 5]
    assert [m["seq"] for m in state.messages_after(3)] == [4, 5]
    assert state.messages_after(5) == []
    state.messages.clear()
    state.record("twilio", "sms", "+15550009", {"body": "hi"})
    assert [m["seq"] for m in state.messages_after(4)] == [6]  # numbers go on after a clear
