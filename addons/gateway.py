"""mitmproxy entry script: `mitmdump -s addons/gateway.py` (or mitmweb) runs the codex-gateway addon."""

import os
import sys

# The package lives next to this script; make it importable even when it was not pip-installed.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from codex_gateway.addon import CodexGateway  # noqa: E402

addons = [CodexGateway()]
