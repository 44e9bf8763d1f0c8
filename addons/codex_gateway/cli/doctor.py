"""`codex-gateway doctor`: checks the path to the Codex backend (DNS, TCP, TLS, an authenticated `/models`).

TODO(issue 13, upstream proxy): the checks themselves are being built in another branch (`proxy`:
`codex_gateway.upstream.doctor.run_doctor(settings)`, an async function returning a `DoctorReport`, with
`settings_from(...)` for command-line tools and the options `codex_proxy` / `codex_no_proxy`). When they land, build
the settings from `--codex-home`, `--gateway-home`, `--upstream` and the proxy options, `asyncio.run(run_doctor(…))`
and print the report (exit 1 when a step failed). Until then the subcommand exists, says so, and exits with 2.
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
