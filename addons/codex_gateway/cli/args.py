"""argparse for the `codex-gateway` commands: bad input is one line on stderr (and exit status 2), not a usage dump."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

__all__ = ["Parser", "fail"]


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def fail(prog: str, message: str, status: int = 1) -> int:
    """Prints the one-line error of a refused command; returns the exit status."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return status
