"""`codex-gateway doctor`: checks the path to the Codex backend (DNS, TCP, TLS, an authenticated `/models`).

TODO(issue 13, upstream proxy): the checks themselves (`run_doctor`, with the options `codex_proxy` and
`codex_no_proxy`) are being built in another branch; when they land, call them here. Until then the subcommand
exists, says so, and exits with status 2.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print((__doc__ or "").splitlines()[0])
        return 0
    print(
        "codex-gateway doctor: error: not available in this version yet (the path checks are still being built)",
        file=sys.stderr,
    )
    return 2
