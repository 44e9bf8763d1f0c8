"""`codex-gateway run [--web] [mitmproxy args…]`: what scripts/run.sh does, from any directory, with the addon
script found inside the installed package.

It runs mitmproxy in this process (mitmdump, or mitmweb with `--web`), with the gateway's script, a listener on
127.0.0.1:8787 unless a `--mode` is given, and `connection_strategy=lazy` (local answers need no upstream).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..http.listeners import DEFAULT_LISTEN

__all__ = ["main", "SCRIPT", "mitmproxy_args"]

SCRIPT = Path(__file__).resolve().parent.parent / "script" / "gateway.py"
USAGE = """usage: codex-gateway run [--web] [mitmproxy options…]

Runs the gateway (mitmdump; mitmweb with --web) on 127.0.0.1:8787. Every other argument goes to mitmproxy, e.g.
  codex-gateway run --set gateway_api_key=s3cret
  codex-gateway run --mode reverse:https://chatgpt.com@127.0.0.1:9000
  codex-gateway run --web --set codex_model_aliases=gpt-4o=gpt-5.4
`codex-gateway run -- --help` shows mitmproxy's own options."""


def mitmproxy_args(argv: list[str]) -> tuple[bool, list[str]]:
    """(whether mitmweb runs, its arguments) for `run`'s arguments."""
    web = bool(argv) and argv[0] == "--web"
    rest = argv[1:] if web else list(argv)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    given_mode = any(a in ("--mode", "-m") or a.startswith("--mode=") for a in rest)
    mode = [] if given_mode else ["--mode", DEFAULT_LISTEN]
    return web, ["-s", str(SCRIPT), *mode, "--set", "connection_strategy=lazy", *rest]


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    web, args = mitmproxy_args(argv)
    from mitmproxy.tools import main as tools  # imported late: `--help` and the other commands need none of it

    sys.argv[0] = "codex-gateway run"  # mitmproxy names itself by argv[0] in its messages
    (tools.mitmweb if web else tools.mitmdump)(args)
    return 0
