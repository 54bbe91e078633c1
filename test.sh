#!/usr/bin/env bash
# Set up from scratch and run the whole suite against a real Apache Kafka broker
# (started by the tests themselves: single node, KRaft, loopback, free ports).
#   ./test.sh                 lint, types, every test
#   ./test.sh -m unit         pytest arguments pass through
set -euo pipefail
cd "$(dirname "$0")"
source ./scripts/setup.sh

echo "== ruff"
.venv/bin/ruff check pipeline agents herald tests bench
.venv/bin/ruff format --check pipeline agents herald tests bench
echo "== mypy"
.venv/bin/mypy
echo "== fetch Kafka ${HERALD_KAFKA_VERSION:-} jars (cached under .herald/)"
HERALD_HOME=.herald .venv/bin/python -c "
from pipeline.kafka import broker; from pipeline.settings import Settings
print(broker.fetch(Settings.from_env()))"
echo "== pytest"
.venv/bin/python -m pytest -p no:cacheprovider "$@"
