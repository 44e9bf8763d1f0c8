"""Re-send every chat request of a capture through a running gateway and compare the answers' shapes.

    .venv/bin/python scripts/replay_capture.py ../shared/captures/openclaw --gateway http://127.0.0.1:8787

The same as `codex-gateway replay …` (the logic is in the package: codex_gateway/cli/replay.py, where its options
and exit statuses are described); this entry runs it from a checkout without installing anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Like addons/gateway.py: the package lives in addons/ and need not be pip-installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "addons"))

from codex_gateway.cli.replay import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="replay_capture.py"))
