#!/usr/bin/env bash
# The main job: install what is needed, start the gateway on its embedded defaults (SQLite under
# ./data) with the partner simulators, push the sample cases through, then keep serving.
# Extra arguments go to `gateway demo` (e.g. --exit-after).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh
exec .venv/bin/gateway demo "$@"
