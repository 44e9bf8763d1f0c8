"""`python -m scripts.bench`: see the package's docstring (scripts/bench/__init__.py)."""

import sys

from .cli import main

sys.exit(main())
