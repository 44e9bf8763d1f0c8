"""`python -m codex_gateway.cli …` runs `codex-gateway …` (where the script is not on PATH)."""

import sys

from . import main

sys.exit(main())
