"""The kill soak: many kill -9 rounds in a row, lost and duplicated counted per round.

    herald bench kill [--runs 20] [--messages 1000] [--workers 2] [--latency-ms 0]
                      [--quiet 20] [--seed N] [--out DIR] [--keep]

Starts its own single-node broker on free ports in a temporary HERALD_HOME, the
provider simulator and `--workers` workers in one consumer group, then runs
`pipeline.devstack.drill.Drill` rounds: each produces `--messages` requests through the
email (SendGrid micro-batches) and SMS (one call each) lanes, urgent and bulk,
kills a random worker with SIGKILL once a random 5 to 80 % has reached the
simulator, restarts it, and counts per recipient at the simulator. `--latency-ms`
makes SendGrid and Twilio answer that slowly (more calls in flight at the kill).

Writes `<out>/kill-<UTC timestamp>.json` and `<out>/kill-report.md`; exit code 1 when
any message was lost or sent twice without the pipeline naming it in doubt.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.common import sigterm_as_interrupt, stderr_log
from pipeline.devstack.drill import Drill, RoundResult
from pipeline.devstack.processes import LocalStack, free_port, stack_env
from pipeline.kafka import admin, broker
from pipeline.kafka.catalog import Catalog
from pipeline.kafka.codecs import AvroCodec, SchemaSet
from pipeline.settings import PROJECT_ROOT, Settings

__all__ = ["log", "main", "parse_args", "render"]

log = stderr_log("kill")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="herald bench kill", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--runs", type=int, default=20, help="kill rounds (default 20)")
    p.add_argument("--messages", type=int, default=1000, help="requests per round")
    p.add_argument("--workers", type=int, default=2, help="workers in the group (default 2)")
    p.add_argument("--latency-ms", type=int, default=0, help="SendGrid and Twilio latency")
    p.add_argument("--quiet", type=float, default=20.0, help="seconds without progress: stop")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results")
    p.add_argument("--keep", action="store_true", help="keep broker data and worker state")
    return p.parse_args(argv)


def render(res: dict[str, Any]) -> str:
    rounds = res["rounds"]
    lines = [
        f"# Kill soak, {res['timestamp']}",
        "",
        f"{len(rounds)} rounds of {res['args']['messages']} requests, "
        f"{res['args']['workers']} workers, provider latency {res['args']['latency_ms']} ms, "
        f"seed {res['seed']}.",
        "",
        "| round | killed | after | lost | twice | in doubt | in doubt, not resent, missing "
        "| twice, not in doubt | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        lines.append(
            f"| {r['round']} | {r['victim']} | {r['killed_after']} | {r['lost']} | "
            f"{r['duplicated']} | {r['in_doubt']} | {r['in_doubt_not_resent_missing']} | "
            f"{r['unexplained_duplicates']} | {r['seconds']} |"
        )
    t = res["totals"]
    lines += [
        "",
        f"**Total over {t['messages']} messages: {t['lost']} lost, {t['duplicated']} "
        f"delivered twice ({t['unexplained_duplicates']} of them not named in doubt), "
        f"{t['in_doubt']} named in doubt ({t['in_doubt_not_resent_missing']} not resent by "
        f"their priority's policy and not delivered), {t['dead_ends']} dead ends.**",
    ]
    if res["errors"]:
        lines += ["", "Errors:", *[f"- {e}" for e in res["errors"]]]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    home = Path(tempfile.mkdtemp(prefix="herald-kill-"))
    settings = Settings.from_env(
        {}, home=home, kafka_port=free_port(), kafka_controller_port=free_port(),
        kafka_dist=PROJECT_ROOT / ".herald" / f"kafka-{Settings().kafka_version}",
    )  # fmt: skip
    codec = AvroCodec(SchemaSet.from_dir(settings.schemas_dir))
    res: dict[str, Any] = {
        "timestamp": stamp, "seed": seed, "herald_home": str(home),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "rounds": [], "errors": [],
    }  # fmt: skip
    stack: LocalStack | None = None
    previous = signal.signal(signal.SIGTERM, sigterm_as_interrupt)
    log(f"HERALD_HOME={home}, seed {seed}")
    try:
        bootstrap = broker.start(settings)
        admin.apply(Catalog.load(settings.topics_file), bootstrap)
        stack = LocalStack(stack_env(home, bootstrap), home)
        workers = ["worker"] + [f"worker-{i}" for i in range(2, args.workers + 1)]
        stack.start("simulator")
        for name in workers:
            stack.start(name, timeout=180)
        if args.latency_ms:
            for provider in ("sendgrid", "twilio"):
                httpx.put(f"{stack.sim}/_sim/faults/{provider}",
                          json={"latencyMs": args.latency_ms}, timeout=5)  # fmt: skip
        drill = Drill(stack, workers, bootstrap, codec, messages=args.messages,
                      quiet_s=args.quiet, rng=random.Random(seed), log=log)  # fmt: skip
        for number in range(1, args.runs + 1):
            result: RoundResult = drill.round(number)
            res["rounds"].append(result.as_dict())
            log(f"round {number}: " + json.dumps(result.as_dict()))
    except (Exception, KeyboardInterrupt) as exc:
        res["errors"].append(f"{type(exc).__name__}: {exc}")
        log(f"stopped: {exc!r}")
    finally:
        signal.signal(signal.SIGTERM, previous)
        if stack is not None:
            stack.stop_all()
        broker.stop(settings)
        if not args.keep:
            for sub in ("broker", *(p.name for p in home.glob("worker*") if p.is_dir())):
                shutil.rmtree(home / sub, ignore_errors=True)
    rounds = res["rounds"]
    totals = ("messages", "lost", "duplicated", "in_doubt", "in_doubt_not_resent_missing",
              "unexplained_duplicates", "dead_ends")  # fmt: skip
    res["totals"] = {k: sum(r[k] for r in rounds) for k in totals}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"kill-{stamp}.json").write_text(json.dumps(res, indent=2))
    report = render(res)
    (args.out / "kill-report.md").write_text(report)
    print(report)
    t = res["totals"]
    broken = t["lost"] or t["unexplained_duplicates"] or res["errors"]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
