"""`codex-gateway`: the installed command (`[project.scripts]`), one subcommand per job.

    codex-gateway run [--web] [mitmproxy options…]   the gateway on 127.0.0.1:8787 (mitmdump, or mitmweb)
    codex-gateway accounts …                         logins, pin, exclusions, export/import, apply-codex, quota
    codex-gateway replay CAPTURE… [--gateway URL]    re-send captured chat requests, compare the answers' shapes
    codex-gateway openclaw-config [--gateway URL]    OpenClaw's provider configuration, from /v1/models
    codex-gateway usage [--since 7d] [--by model]    requests, failures, tokens from the request log
    codex-gateway doctor                             check the path to the Codex backend

Each subcommand's `--help` says more. From a checkout, `scripts/run.sh`, `scripts/accounts.py`,
`scripts/replay_capture.py` and `scripts/usage.py` run the same code.
"""

from __future__ import annotations

import sys

from .. import __version__

__all__ = ["main"]

COMMANDS = ("run", "accounts", "replay", "openclaw-config", "usage", "doctor")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0 if args else 2
    if args[0] == "--version":
        print(f"codex-gateway {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command == "run":
        from . import run

        return run.main(rest)
    if command == "accounts":
        from . import accounts

        return accounts.main(rest)
    if command == "replay":
        from . import replay

        return replay.main(rest)
    if command == "openclaw-config":
        from . import openclaw

        return openclaw.main(rest)
    if command == "usage":
        from . import usage

        return usage.main(rest)
    if command == "doctor":
        from . import doctor

        return doctor.main(rest)
    print(f"codex-gateway: error: unknown command {command!r}; use one of {', '.join(COMMANDS)}", file=sys.stderr)
    return 2
