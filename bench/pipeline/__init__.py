"""Herald pipeline benchmark: the raw Kafka limit and the pipeline, on one broker, in one run.

    .venv/bin/python -m bench.pipeline [--records N] [--raw-records N] [--out DIR]

Starts its own single-node broker on free ports in a temporary HERALD_HOME, then:

1. raw Kafka: confluent-kafka produce and consume, aiokafka produce, of records the
   size of one encoded NotificationRequest, to fresh 6-partition topics;
2. the pipeline: the simulator and one worker as child processes (as the integration
   tests run them), NotificationRequests produced to the requests topic, every
   messageId followed on the status topic until SENT: a throughput run (as fast as
   possible) and a latency run (a low, fixed rate);
3. memory: peak RSS of the worker and simulator, RSS of the broker JVM.

Writes `<out>/pipeline-<UTC timestamp>.json` and `<out>/report.md`, prints the report.
See bench/README.md for what each number means.
"""

from bench.pipeline.cli import main

__all__ = ["main"]
