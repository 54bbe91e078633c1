"""The channel mix and the provider latency of a run: which channel each request asks
for (`--mix email=70,sms=15,whatsapp=10,push=5`), the recipient fields that channel
needs, the simulator's `latencyMs` on every provider (`--provider-latency-ms`), and the
rate limits the worker runs with. Email alone hides the per-call cost of SMS, WhatsApp
and push (one provider call each, no micro-batches), so the mix is a parameter.
"""

from __future__ import annotations

from typing import Any

import httpx

from bench.pipeline.measure import BenchError
from pipeline.settings import Settings
from pipeline.simulator.server import PROVIDERS

__all__ = [
    "CHANNELS",
    "RAISED_RATE",
    "channel_sequence",
    "parse_mix",
    "rate_limits",
    "recipient_fields",
    "set_provider_latency",
]

CHANNELS = ("email", "sms", "whatsapp", "push")
RAISED_RATE = 100_000  # messages/s per provider: no budget ever waits


def parse_mix(text: str) -> dict[str, int]:
    """`email=70,sms=15,...` as weights; a channel left out gets none."""
    mix: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = item.partition("=")
        name = name.strip()
        if name not in CHANNELS:
            raise BenchError(f"--mix: unknown channel {name!r} (one of {', '.join(CHANNELS)})")
        try:
            mix[name] = int(weight or "1")
        except ValueError:
            raise BenchError(f"--mix: {item!r} is not channel=weight") from None
        if mix[name] < 0:
            raise BenchError(f"--mix: {item!r} has a negative weight")
    if not any(mix.values()):
        raise BenchError("--mix: no channel has a weight")
    return {k: v for k, v in mix.items() if v}


def channel_sequence(mix: dict[str, int], n: int) -> list[str]:
    """`n` channels in the mix's proportions, interleaved (smooth weighted round-robin),
    so every stretch of a run carries the mix, not one channel after another."""
    total = sum(mix.values())
    current = dict.fromkeys(mix, 0)
    out = []
    for _ in range(n):
        for name, weight in mix.items():
            current[name] += weight
        pick = max(current, key=lambda k: current[k])
        current[pick] -= total
        out.append(pick)
    return out


def recipient_fields(channel: str, user_id: str, i: int) -> dict[str, Any]:
    """The recipient's contact for `channel` (the others None). Phones never end in 0000
    (the simulator's "not a WhatsApp user") nor start +999 (invalid)."""
    phone = f"+3460{i % 10**7:07d}1"
    return {
        "email": f"{user_id}@example.com" if channel == "email" else None,
        "phone": phone if channel == "sms" else None,
        "whatsapp": phone if channel == "whatsapp" else None,
        "pushTokens": [f"tok-{user_id}"] if channel == "push" else None,
    }


def rate_limits(choice: str) -> str:
    """HERALD_RATE_LIMITS for the worker: `default` (the shipped defaults), `raised`
    (every provider at RAISED_RATE/s), or a literal `provider=rate,...` list."""
    if choice == "default":
        return Settings.from_env({}).rate_limits
    if choice == "raised":
        return ",".join(f"{p}={RAISED_RATE}" for p in PROVIDERS)
    return choice


def set_provider_latency(sim_url: str, latency_ms: int) -> None:
    """Every provider of the simulator answers `latency_ms` later (its fault API's
    `latencyMs`, with no failure); 0 clears the faults."""
    with httpx.Client(timeout=5) as client:
        if latency_ms <= 0:
            client.delete(f"{sim_url}/_sim/faults").raise_for_status()
            return
        for provider in PROVIDERS:
            resp = client.put(f"{sim_url}/_sim/faults/{provider}", json={"latencyMs": latency_ms})
            if resp.status_code != 204:
                raise BenchError(f"simulator fault for {provider}: {resp.status_code} {resp.text}")
