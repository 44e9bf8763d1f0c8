#!/usr/bin/env bash
# Creates .venv with Python 3.12+ and installs the locked dependencies. Idempotent and quick when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  for py in python3.12 python3.13 python3.14 python3 python; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  # pyenv installs versions without putting them on PATH; .python-version names the one we want.
  if command -v pyenv >/dev/null 2>&1; then
    for v in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[2-9])' | sort -rV); do
      echo "$(pyenv root)/versions/$v/bin/python3"; return 0
    done
  fi
  return 1
}

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
  py=$(find_python) || { echo "codex-gateway needs Python 3.12 or newer (see .python-version)" >&2; exit 1; }
  rm -rf .venv
  "$py" -m venv .venv
fi

stamp=.venv/.installed-lock
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # (this machine's pip config lists local mirrors that may be absent: hide only those warnings)
  .venv/bin/python -m pip install --disable-pip-version-check -q -r requirements.lock 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -m pip install --disable-pip-version-check -q --no-deps -e . 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import mitmproxy, pydantic, orjson, httpx, redis, openai, anthropic, pytest" || { echo "dependency install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
