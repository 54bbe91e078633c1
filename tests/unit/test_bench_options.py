"""The benchmark's options and the requests it sends: the channel mix, `--quick`'s
small counts, provider latency set through the simulator's fault API, and a report
that renders even when phases are missing. No broker: the simulator runs in-process."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from bench.pipeline.cli import DEFAULTS, parse_args
from bench.pipeline.mix import channel_sequence, parse_mix, rate_limits, set_provider_latency
from bench.pipeline.records import build_requests
from bench.pipeline.report import render_report
from pipeline.kafka.codecs import AvroCodec, SchemaSet
from pipeline.settings import Settings
from pipeline.simulator.server import PROVIDERS
from tests.unit.simkit import simulator


def test_the_mix_is_kept_in_proportion_and_interleaved() -> None:
    mix = parse_mix("email=70,sms=15,whatsapp=10,push=5")
    seq = channel_sequence(mix, 100)
    assert Counter(seq) == {"email": 70, "sms": 15, "whatsapp": 10, "push": 5}
    assert "sms" in seq[:10] and "push" in seq[:25]  # not one channel after another


@pytest.mark.parametrize("bad", ["fax=1", "email=x", "email=0", "email=-1"])
def test_a_bad_mix_is_refused(bad: str) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--mix", bad])


def test_each_request_carries_its_channel_and_that_channels_contact() -> None:
    codec = AvroCodec(SchemaSet.from_dir(Settings().schemas_dir))
    reqs = build_requests(codec, "r1", "t", 4, {"email": 1, "sms": 1, "whatsapp": 1, "push": 1})
    decoded = [codec.decode("NotificationRequest", r.value) for r in reqs]
    assert [d["channels"] for d in decoded] == [["email"], ["sms"], ["whatsapp"], ["push"]]
    email, sms, wa, push = (d["recipient"] for d in decoded)
    assert email["email"] and not email["phone"]
    assert sms["phone"] and not sms["phone"].endswith("0000") and not sms["email"]
    assert wa["whatsapp"] and not wa["whatsapp"].endswith("0000")
    assert push["pushTokens"] and not push["pushTokens"][0].startswith(("invalid-", "unreg"))
    assert len({r.key for r in reqs}) == 4


def test_quick_takes_the_small_counts_and_explicit_options_win() -> None:
    quick = parse_args(["--quick", "--records", "123"])
    full = parse_args([])
    for name, big, small in DEFAULTS:
        assert getattr(full, name) == big
        if name != "records":
            assert getattr(quick, name) == small
    assert quick.records == 123
    assert full.load_rates == [200.0, 1000.0] and full.mix_weights == {"email": 100}


def test_rate_limits_raised_covers_every_simulated_provider() -> None:
    raised = dict(item.split("=") for item in rate_limits("raised").split(","))
    assert set(raised) == set(PROVIDERS)
    assert rate_limits("default") == Settings.from_env({}).rate_limits


def test_the_report_renders_a_run_where_every_phase_failed() -> None:
    text = render_report({"args": {"mix": "email=100"}, "errors": ["setup: broken"]})
    assert "## Errors" in text and "setup: broken" in text


async def test_provider_latency_goes_to_every_provider_and_zero_clears_it() -> None:
    async with simulator() as sim:
        await asyncio.to_thread(set_provider_latency, sim.url, 50)
        assert set(sim.state.faults) == set(PROVIDERS)
        assert all(f.latency_ms == 50 and f.fail is None for f in sim.state.faults.values())
        await asyncio.to_thread(set_provider_latency, sim.url, 0)
        assert sim.state.faults == {}
