#!/usr/bin/env bash
# Create .venv and install the gateway with the pinned versions of requirements.lock.
# Run by run.sh and test.sh (argument: the extras, e.g. "test"); reinstalls only when pyproject.toml or the lock file changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
extras="${1:-}"
py="${PYTHON:-python3}"
if [ ! -x "$root/.venv/bin/python" ]; then
  "$py" -m venv "$root/.venv"
fi
stamp="$root/.venv/.installed${extras:+-$extras}"
want="$(cat "$root/pyproject.toml" "$root/requirements.lock" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing dependencies into .venv ..." >&2
  "$root/.venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  "$root/.venv/bin/python" -m pip install -q --disable-pip-version-check \
      -c "$root/requirements.lock" -e "$root${extras:+[$extras]}" >&2
  echo "$want" > "$stamp"
fi
# The console's browser tests (tests/test_console_browser.py) drive Debian's chromium through
# chromium-driver, and its screenshots need a CJK font: installed from apt when missing (quietly;
# root or passwordless sudo; without either the browser test skips outside CI and fails in CI).
if [ "$extras" = "test" ] && [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  echo "installing chromium, chromium-driver and a CJK font (apt) ..." >&2
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
      chromium chromium-driver fonts-wqy-zenhei; } >/dev/null 2>&1 \
    || echo "could not install chromium from apt: the browser tests will be skipped" >&2
fi
# promtool checks the alert rules, the Prometheus config and every dashboard query
# (tests/test_dashboards.py): Debian's prometheus package, installed the same way when missing.
if [ "$extras" = "test" ] && ! command -v promtool >/dev/null && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"
  echo "installing promtool (apt: prometheus) ..." >&2
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
      --no-install-recommends prometheus; } >/dev/null 2>&1 \
    || echo "could not install prometheus from apt: the promtool test will be skipped" >&2
fi
