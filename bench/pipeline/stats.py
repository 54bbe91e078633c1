"""The numbers of one pipeline run, from what `tracking` saw: records/s, end-to-end
latency, latency per hop and the run's timeline; and the ratios of the pipeline's
records/s to the raw Kafka limits, the figure that survives a change of machine.
"""

from __future__ import annotations

import itertools
from typing import Any

from bench.pipeline.measure import ratio, summary
from bench.pipeline.tracking import Tracking

__all__ = ["pipeline_stats", "ratios"]


def pipeline_stats(track: Tracking) -> dict[str, Any]:
    """One run's JSON entry. Times come from the status records' timestamps, not from when
    the benchmark read them, so its own consumer's delays are not counted."""
    produced, statuses = track.produced_ms, track.status_ms
    sent = {m: s["SENT"] for m, s in statuses.items() if "SENT" in s}
    e2e = [sent[m] - produced[m] for m in sent]

    def hop(a: str, b: str) -> list[float]:
        out = []
        for m, s in statuses.items():
            start = produced[m] if a == "produce" else s.get(a)
            if start is not None and b in s:
                out.append(s[b] - start)
        return out

    first_produce = min(produced.values())
    last_produce = max(produced.values())
    last_sent = max(sent.values()) if sent else None
    wall_s = (last_sent - first_produce) / 1000.0 if last_sent is not None else None
    sent_ts = sorted(sent.values())
    gaps = [b - a for a, b in itertools.pairwise(sent_ts)]
    return {
        "records": len(produced),
        "sent": len(sent),
        "dead_ends": len(track.dead_ends),
        "dead_end_examples": dict(list(track.dead_ends.items())[:5]),
        "status_counts": dict(track.counts),
        "status_timestamp_types": dict(track.timestamp_types),
        "produce_seconds": (last_produce - first_produce) / 1000.0,
        "produce_records_per_s": (
            len(produced) / ((last_produce - first_produce) / 1000.0)
            if last_produce > first_produce
            else None
        ),
        "first_produce_to_last_sent_s": wall_s,
        "first_sent_after_s": (min(sent.values()) - first_produce) / 1000.0 if sent else None,
        "all_pending_after_s": (
            (max(pend) - first_produce) / 1000.0
            if (pend := [s["PENDING"] for s in statuses.values() if "PENDING" in s])
            else None
        ),
        "records_per_s": len(sent) / wall_s if wall_s else None,
        "latency_ms": summary(e2e),
        "hops_ms": {
            "ingest (produce -> PENDING)": summary(hop("produce", "PENDING")),
            "dispatch (PENDING -> PROCESSING)": summary(hop("PENDING", "PROCESSING")),
            "provider (PROCESSING -> SENT)": summary(hop("PROCESSING", "SENT")),
        },
        "longest_gap_between_sent_ms": max(gaps) if gaps else None,
    }


def ratios(pipeline: dict[str, Any], raw: dict[str, Any]) -> dict[str, float | None]:
    """The pipeline's throughput records/s over each raw run's; None where one is missing."""
    tput = (pipeline.get("throughput") or {}).get("records_per_s")
    out = {
        name: ratio(tput, (raw.get(run) or {}).get("records_per_s"))
        for name, run in (
            ("pipeline_over_raw_produce", "confluent_produce"),
            ("pipeline_over_raw_consume", "confluent_consume"),
            ("pipeline_over_aiokafka_produce", "aiokafka_produce"),
        )
    }
    more = (pipeline.get("throughput_workers") or {}).get("records_per_s")
    out["pipeline_workers_over_raw_produce"] = ratio(
        more, (raw.get("confluent_produce") or {}).get("records_per_s")
    )
    return out
