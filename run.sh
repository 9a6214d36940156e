#!/usr/bin/env bash
# The main job: install what is needed, start the gateway on its embedded defaults (SQLite under
# ./data) with the partner simulators, push the sample cases through, then keep serving.
# Extra arguments go to `gateway demo`: --exit-after, and --port N / --sim-base-port N (or
# GATEWAY_PORT / GATEWAY_SIM_BASE_PORT) when 8080 or 8701-8703 are taken.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh
exec .venv/bin/gateway demo "$@"
