"""Progress where a person waits: a bar on a terminal, plain lines otherwise (logs, pipes, CI)."""

from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["Progress"]

BAR_WIDTH = 30


class Progress:
    """`advance(line)` once per finished item. On a terminal the line is printed above a bar redrawn in place on
    stderr; otherwise the line is printed as it is (`line=None` prints nothing there)."""

    def __init__(self, total: int, what: str, *, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.total = max(total, 0)
        self.what = what
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self._drawn = False

    def advance(self, line: str | None = None, *, out: TextIO | None = None) -> None:
        self.done += 1
        self._erase()
        if line is not None:
            target = out if out is not None else self.stream
            print(line, file=target, flush=True)
        self._draw()

    def close(self) -> None:
        self._erase()

    def _draw(self) -> None:
        if not self.tty or self.done >= self.total:
            return
        filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} {self.what}")
        self.stream.flush()
        self._drawn = True

    def _erase(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def start(self) -> None:
        """Shows the empty bar (a terminal only) before the first item finishes."""
        self._draw()
