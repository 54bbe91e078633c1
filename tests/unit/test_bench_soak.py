"""The soak benchmark's pure parts: its options (`--quick`, `--minutes`, bad values), the
slope in KB per message after the warm-up, and a report that renders with or without
samples. No broker."""

from __future__ import annotations

import pytest

from bench.soak import QUICK_MINUTES, parse_args, render, slope
from herald.cli import parser


def test_defaults_are_ten_minutes_at_100_per_second() -> None:
    args = parse_args([])
    assert (args.minutes, args.rate, args.idle_seconds) == (10.0, 100.0, 15.0)


def test_quick_is_two_minutes_and_minutes_wins_over_quick() -> None:
    assert parse_args(["--quick"]).minutes == QUICK_MINUTES == 2.0
    assert parse_args(["--quick", "--minutes", "5"]).minutes == 5.0
    assert parse_args(["--rate", "50"]).rate == 50.0


@pytest.mark.parametrize("bad", [["--minutes", "0"], ["--rate", "-1"], ["--idle-seconds", "-2"]])
def test_bad_values_are_refused(bad: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(bad)


def test_herald_bench_soak_reaches_the_soak_options() -> None:
    args, extra = parser().parse_known_args(["bench", "soak", "--quick"])
    assert args.command == "bench" and extra == ["soak", "--quick"]


def _samples(points: list[tuple[float, int, float]]) -> list[dict[str, float]]:
    return [{"t": t, "sent": s, "rss_kb": r} for t, s, r in points]


def test_slope_ignores_the_warm_up_and_fits_the_rest() -> None:
    # a jump in the first 20 % (warm-up), then 0.5 KB per message exactly
    warm = [(0.0, 0, 100_000.0), (10.0, 1000, 150_000.0)]
    steady = [
        (t, 1000 * int(t / 10), 150_000.0 + 0.5 * 1000 * (t / 10 - 1)) for t in (20, 30, 40, 50)
    ]
    assert slope(_samples(warm + steady)) == pytest.approx(0.5)


def test_a_flat_rss_has_zero_slope_and_a_noisy_leak_is_seen() -> None:
    flat = _samples([(t, 100 * t, 150_000.0) for t in range(0, 100, 5)])
    assert slope(flat) == pytest.approx(0.0)
    leak = _samples(
        [(t, 100 * t, 150_000.0 + 450 * t + (300 if t % 2 else -300)) for t in range(0, 100, 5)]
    )
    assert slope(leak) == pytest.approx(4.5, abs=0.1)


@pytest.mark.parametrize("points", [[], [(0.0, 0, 1.0)], [(0.0, 0, 1.0), (5.0, 0, 2.0)]])
def test_no_slope_without_two_samples_or_without_messages(
    points: list[tuple[float, int, float]],
) -> None:
    assert slope(_samples(points)) is None


def test_the_report_renders_with_and_without_samples() -> None:
    res = {
        "timestamp": "20261128T000000Z",
        "args": vars(parse_args(["--quick"])),
        "machine": {"nproc": 2, "loadavg_start": [1.0, 1.0, 1.0]},
        "rss": {"start_kb": 150_000.0, "peak_kb": 180_000.0, "end_kb": 179_000.0},
        "samples": _samples([(0.0, 0, 150_000.0), (5.0, 500, 151_000.0)]),
        "slope_kb_per_message": 2.0,
        "errors": [],
    }
    out = render(res)
    assert "| peak during the load | 180 MB |" in out and "2.000 KB per message" in out
    bare = render(
        {**res, "rss": {}, "samples": [], "slope_kb_per_message": None, "errors": ["interrupted"]}
    )
    assert "| idle, 15 s after | - |" in bare and "- interrupted" in bare


def test_the_slope_of_another_reading_skips_samples_without_it() -> None:
    # RSS grows by the cache filling (a budget); outside it the memory is flat.
    samples = [
        {"t": float(t), "sent": 100 * t, "rss_kb": 150_000.0 + 200 * t,
         "outside_rocksdb_kb": 100_000.0}
        for t in range(0, 100, 5)
    ] + [{"t": 100.0, "sent": 10_000, "rss_kb": 170_000.0}]  # fmt: skip
    assert slope(samples) == pytest.approx(2.0, abs=0.01)
    assert slope(samples, key="outside_rocksdb_kb") == pytest.approx(0.0)
