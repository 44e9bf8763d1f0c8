"""`codex-gateway doctor`: checks the path to the Codex backend step by step (the proxy, DNS, TCP, TLS, an
authenticated `GET /models`), with timings and a verdict per step; exit status 0 when every step passed, 1 when one
failed, 2 for bad arguments.

    codex-gateway doctor [--upstream URL] [--proxy URL] [--no-proxy HOSTS] [--codex-home DIR] [--gateway-home DIR]
                         [--issuer URL] [--timeout S] [--json]

The same check as the mitmproxy command `codex.doctor`, for the settings a gateway started with the same options
would have: without `--proxy`, the environment's `HTTPS_PROXY`/`NO_PROXY` are used, as the gateway uses them.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import orjson

from ..accounts.oauth import DEFAULT_ISSUER
from ..settings import DEFAULT_UPSTREAM
from ..settings import settings_from
from ..upstream.doctor import run_doctor
from .args import Parser
from .args import add_login_options
from .args import fail

__all__ = ["main"]

PROG = "codex-gateway doctor"


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.timeout <= 0:
        return fail(PROG, "--timeout must be positive", 2)
    try:
        settings = settings_from(
            codex_upstream=args.upstream or os.environ.get("CODEX_UPSTREAM") or DEFAULT_UPSTREAM,
            codex_auth_issuer=args.issuer or os.environ.get("CODEX_AUTH_ISSUER") or DEFAULT_ISSUER,
            codex_home=args.codex_home or "",
            gateway_home=args.gateway_home or "",
            codex_proxy=args.proxy,
            codex_no_proxy=args.no_proxy or "",
        )
    except ValueError as e:
        return fail(PROG, str(e), 2)
    report = asyncio.run(run_doctor(settings, timeout=args.timeout))
    print(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode() if args.json else report.format())
    return 0 if report.ok else 1


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", help=f"the Codex backend (env CODEX_UPSTREAM; default {DEFAULT_UPSTREAM})")
    add_login_options(parser)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per step (default 10)")
    parser.add_argument("--json", action="store_true", help="the report as JSON")
    return parser
