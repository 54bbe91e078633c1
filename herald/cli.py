"""The `herald` command line. Each command reads Settings once and passes them on."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.exceptions import HeraldError
from pipeline.settings import Settings

__all__ = ["main", "parser"]

if TYPE_CHECKING:
    from pipeline.kafka.codecs import AvroCodec


def _broker(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.kafka import broker

    if args.action == "start":
        if not settings.uses_local_broker:
            print(f"KAFKA_BOOTSTRAP_SERVERS is set ({settings.bootstrap}); not starting a broker")
            return 0
        print(broker.start(settings))
        return 0
    if args.action == "stop":
        print("stopped" if broker.stop(settings) else "not running")
        return 0
    running = broker.is_running(settings)
    print("running" if running else "stopped")
    print(settings.local_bootstrap)
    return 0 if running else 1


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.kafka import admin
    from pipeline.kafka.catalog import Catalog

    catalog = Catalog.load(settings.topics_file)
    if args.action == "apply":
        reports = admin.apply(catalog, settings.bootstrap)
    else:
        reports = admin.list_topics(catalog, settings.bootstrap)
    for r in reports:
        spec = catalog[r.name]
        print(f"{r.action:8} {r.name:42} p={spec.partitions} {spec.cleanup:8} {r.detail}")
    return 1 if any(r.action == "mismatch" for r in reports) else 0


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.http.auth import issue_token

    if not settings.jwt_secret:
        print("set HERALD_JWT_SECRET to sign a token", file=sys.stderr)
        return 2
    print(issue_token(settings.jwt_secret, args.tenant, args.scope, ttl_s=args.ttl))
    return 0


def _codec(settings: Settings) -> AvroCodec:
    from pipeline.kafka.codecs import AvroCodec, SchemaSet

    return AvroCodec(SchemaSet.from_dir(settings.schemas_dir))


def _produce(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.kafka.catalog import Catalog
    from pipeline.kafka.io import produce_lines

    spec = Catalog.load(settings.topics_file)[args.topic]
    count = produce_lines(sys.stdin, spec, _codec(settings), settings.bootstrap)
    print(f"produced {count} record(s) to {spec.name}", file=sys.stderr)
    return 0


def _tail(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.kafka.catalog import Catalog
    from pipeline.kafka.io import tail, to_json_line

    spec = Catalog.load(settings.topics_file)[args.topic]
    for record in tail(
        spec,
        _codec(settings),
        settings.bootstrap,
        from_beginning=args.from_beginning,
        idle_timeout=args.idle_timeout,
        max_records=args.max,
    ):
        print(to_json_line(record if args.with_meta else record.get("value")), flush=True)
    return 0


def _send(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.domain.ids import new_message_id
    from pipeline.kafka.catalog import REQUESTS, Catalog
    from pipeline.kafka.io import produce_lines, to_json_line

    data = {}
    for item in args.data:
        key, _, value = item.partition("=")
        data[key] = value
    record = {
        "messageId": args.message_id or new_message_id(),
        "tenant": args.tenant,
        "recipient": {"userId": args.user, "email": args.email, "phone": args.phone,
                      "locale": args.locale},
        "template": args.template,
        "data": data,
        "priority": args.priority,
        "channels": args.channels.split(",") if args.channels else None,
    }  # fmt: skip
    spec = Catalog.load(settings.topics_file)[REQUESTS]
    produce_lines([to_json_line(record)], spec, _codec(settings), settings.bootstrap)
    print(record["messageId"])
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from herald.worker import run_worker

    run_worker(settings)
    return 0


def _ingress(args: argparse.Namespace, settings: Settings) -> int:
    from herald.ingress import run_ingress

    run_ingress(settings)
    return 0


def _simulator(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.simulator.server import run_simulator

    run_simulator(settings)
    return 0


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from herald.up import run

    return run(settings, workers=args.workers)


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    argv = list(args.bench_args)
    which = argv.pop(0) if argv and argv[0] in ("pipeline", "kill", "soak") else "pipeline"
    if which == "kill":
        from bench.kill import main as bench_main
    elif which == "soak":
        from bench.soak import main as bench_main
    else:
        from bench.pipeline import main as bench_main
    return int(bench_main(argv) or 0)


def _topology(args: argparse.Namespace, settings: Settings) -> int:
    from herald.worker import build_worker

    settings = settings.with_(table_store="memory://")
    if not settings.jwt_secret:
        settings = settings.with_(jwt_secret="x" * 32)  # describing needs no real secret
    print(build_worker(settings, session=None).topology.describe())
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="herald", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="broker, topics, simulator and a worker (./run.sh)")
    up.add_argument("--workers", type=int, default=1,
                    help="workers in the one consumer group (default 1; up to 6, the "
                    "partition count, do work)")  # fmt: skip
    up.set_defaults(fn=_up)
    b = sub.add_parser("broker", help="the local Apache Kafka broker")
    b.add_argument("action", choices=["start", "stop", "status"])
    b.set_defaults(fn=_broker)
    t = sub.add_parser("topics", help="create or verify the topics of topics.yaml")
    t.add_argument("action", choices=["apply", "list"])
    t.set_defaults(fn=_topics)
    sub.add_parser("worker", help="one pipeline worker with the HTTP API").set_defaults(fn=_worker)
    sub.add_parser(
        "ingress", help="the public HTTP API without stream processing (asks the worker)"
    ).set_defaults(fn=_ingress)
    sub.add_parser("simulator", help="the provider simulator").set_defaults(fn=_simulator)
    sub.add_parser("topology", help="print the wired topology").set_defaults(fn=_topology)
    tok = sub.add_parser("token", help="print a signed development JWT")
    tok.add_argument("--tenant", required=True)
    tok.add_argument("--scope", required=True, help='space-separated, e.g. "notifications:send"')
    tok.add_argument("--ttl", type=int, default=24 * 3600, help="seconds (default a day)")
    tok.set_defaults(fn=_token)
    s = sub.add_parser("send", help="send one notification through Kafka")
    s.add_argument("--tenant", required=True)
    s.add_argument("--user", required=True)
    s.add_argument("--email")
    s.add_argument("--phone")
    s.add_argument("--locale")
    s.add_argument("--template", required=True)
    s.add_argument("--priority", default="standard", choices=["high", "standard", "marketing"])
    s.add_argument("--channels", help="comma-separated explicit order")
    s.add_argument("--message-id")
    s.add_argument("--data", action="append", default=[], metavar="KEY=VALUE")
    s.set_defaults(fn=_send)
    pr = sub.add_parser("produce", help="JSON lines on stdin to Avro records on TOPIC")
    pr.add_argument("topic")
    pr.set_defaults(fn=_produce)
    ta = sub.add_parser("tail", help="a topic's Avro records as JSON lines")
    ta.add_argument("topic")
    ta.add_argument("--from-beginning", action="store_true")
    ta.add_argument("--idle-timeout", type=float, help="stop after this many idle seconds")
    ta.add_argument("--max", type=int, help="stop after this many records")
    ta.add_argument("--with-meta", action="store_true", help="print key, partition, offset too")
    ta.set_defaults(fn=_tail)
    be = sub.add_parser(
        "bench", help="the benchmarks: [pipeline] (default), kill or soak (see bench/README.md)"
    )
    be.set_defaults(fn=_bench)  # every further argument goes to the benchmark
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args, extra = p.parse_known_args(argv)
    if args.command == "bench":
        args.bench_args = extra
    elif extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    settings = Settings.from_env()
    try:
        return int(args.fn(args, settings) or 0)
    except HeraldError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
