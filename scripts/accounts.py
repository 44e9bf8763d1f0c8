"""Manage the gateway's ChatGPT accounts: log in, list, status, remove, pin, exclude, export, import, apply-codex,
quota.

    .venv/bin/python scripts/accounts.py login            # browser sign-in (PKCE, callback on localhost:1455)
    .venv/bin/python scripts/accounts.py login --device   # headless: enter a code on any other device
    .venv/bin/python scripts/accounts.py list | status | use <id|email> | quota --refresh | …

The same as `codex-gateway accounts …` (the logic is in the package: codex_gateway/cli/accounts.py, whose help
lists every command); this entry runs it from a checkout without installing anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Like addons/gateway.py: the package lives in addons/ and need not be pip-installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "addons"))

from codex_gateway.cli.accounts import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="accounts.py"))
