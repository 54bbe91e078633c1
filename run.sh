#!/usr/bin/env bash
# The embedded default: a local Kafka broker, the topics, the provider simulator
# and one worker with the HTTP API on 127.0.0.1:8080. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")"
source ./scripts/setup.sh
exec .venv/bin/herald up "$@"
