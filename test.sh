#!/usr/bin/env bash
# The whole test suite, against SQLite and a real PostgreSQL (127.0.0.1:5432, trust auth,
# database `test`, or $GATEWAY_TEST_POSTGRES_URL). Installs what it needs first.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh test
# Lint and types first ([tool.ruff], [tool.mypy] in pyproject.toml: mypy --strict): a finding
# fails the run before any test starts.
.venv/bin/ruff check gateway tests bench
.venv/bin/mypy gateway
if ! .venv/bin/python - <<'PY' 2>/dev/null
import socket; socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
PY
then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "starting the local PostgreSQL cluster ..." >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do
      .venv/bin/python -c 'import socket; socket.create_connection(("127.0.0.1", 5432), timeout=1).close()' 2>/dev/null && break
      sleep 1
    done
  fi
fi
export GATEWAY_REQUIRE_POSTGRES="${GATEWAY_REQUIRE_POSTGRES:-1}"
# Two workers (pytest-xdist) by default: most tests wait on sockets, child processes and the
# databases, so two share this 2-core machine well (18 → 9 minutes). GATEWAY_TEST_WORKERS=0
# runs in one process (a debugger, -x with one clear first failure).
workers="${GATEWAY_TEST_WORKERS:-2}"
parallel=()
if [ "$workers" != "0" ]; then
  parallel=(-n "$workers" --dist worksteal)
fi
set +e
.venv/bin/python -m pytest --durations=25 "${parallel[@]}" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$rc"
