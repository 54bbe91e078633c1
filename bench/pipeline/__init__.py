"""Herald pipeline benchmark: the raw Kafka limit and the pipeline, on one broker, in one run.

    herald bench [--quick] [--mix email=70,sms=15,whatsapp=10,push=5]
                 [--provider-latency-ms N] [--records N] [--door ingress|inline]
                 [--out DIR] ...
    .venv/bin/python -m bench.pipeline [the same options]

Starts its own single-node broker on free ports in a temporary HERALD_HOME, then:

1. raw Kafka: confluent-kafka produce and consume, aiokafka produce, of records the
   size of one encoded NotificationRequest, to fresh 6-partition topics;
2. the pipeline: the simulator, one worker and `herald ingress` in front of it
   (`--door inline`: the worker's own door) as child processes (as the integration
   tests run them), NotificationRequests in the channel mix produced to the requests
   topic, every messageId followed on the status topic until SENT: a throughput run
   (records/s, latency, CPU and Kafka records per notification), runs at fixed offered
   loads (end-to-end latency), the HTTP ingress under a load generator in another process
   while the worker is busy, worker RSS after a backlog, and the throughput run again
   with two workers;
3. memory: peak RSS of the worker and simulator, RSS of the broker JVM.

Writes `<out>/pipeline-<UTC timestamp>.json` and `<out>/report.md`, prints the report.
See bench/README.md for what each number means.
"""

from bench.pipeline.cli import main

__all__ = ["main"]
