"""argparse for the `codex-gateway` commands: bad input is one line on stderr (and exit status 2), not a usage dump."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from ..accounts.oauth import DEFAULT_ISSUER

__all__ = ["Parser", "fail", "add_login_options"]


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fail(prog: str, message: str, status: int = 1) -> int:
    """Prints the one-line error of a refused command; returns the exit status."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return status


def add_login_options(parser: argparse.ArgumentParser) -> None:
    """The options of every command that reaches the logins, worded once: the issuer, the two homes, the proxy."""
    parser.add_argument("--issuer", help=f"OAuth issuer (env CODEX_AUTH_ISSUER; default {DEFAULT_ISSUER})")
    parser.add_argument("--gateway-home", help="gateway state directory (env CODEX_GATEWAY_HOME; ~/.codex-gateway)")
    parser.add_argument("--codex-home", help="Codex CLI home with auth.json (env CODEX_HOME; ~/.codex)")
    parser.add_argument("--proxy", help="HTTP(S) proxy, like codex_proxy (default: HTTPS_PROXY from the environment)")
    parser.add_argument("--no-proxy", help="comma-separated hosts reached without the proxy, like codex_no_proxy")
