"""Usage report from the gateway's request log: requests, failures, tokens, time to first token.

    .venv/bin/python scripts/usage.py [--since 7d|2026-11-01] [--until …] [--by day|model|account|client|run]
                                      [--json|--csv]

The same as `codex-gateway usage …` (the logic is in the package: codex_gateway/cli/usage.py, whose help lists
every option); this entry runs it from a checkout without installing anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Like addons/gateway.py: the package lives in addons/ and need not be pip-installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "addons"))

from codex_gateway.cli.usage import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="usage.py"))
