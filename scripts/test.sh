#!/usr/bin/env bash
# Sets everything up, then runs lint, type checks and the whole test suite. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The mitmweb browser test needs a headless Chromium (Debian's package); it skips, saying why, where none installs.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing chromium for the browser test (apt-get)…"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; } \
    >/tmp/codex-gateway-chromium-install.log 2>&1 || echo "chromium could not be installed; the browser test will skip"
fi
# The team-mode tests start their own redis-server (Debian's package); they skip, saying why, where none installs.
if ! command -v redis-server >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing redis-server for the team-mode tests (apt-get)…"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; } \
    >/tmp/codex-gateway-redis-install.log 2>&1 || echo "redis-server could not be installed; the team-mode tests will skip"
fi
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
