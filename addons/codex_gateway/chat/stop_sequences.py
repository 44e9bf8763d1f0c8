"""Emulation of chat `stop` sequences, which the Codex backend does not support.

Text is released as soon as it can no longer become the start of a stop sequence; only a suffix that is a
proper prefix of some stop sequence is held back, so streaming stays incremental.
"""

from __future__ import annotations

__all__ = ["StopMatcher"]


class StopMatcher:
    __slots__ = ("_stops", "_held", "_longest", "stopped", "enabled", "matched")

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self.enabled = bool(self._stops)  # without stop sequences `feed` is the identity: callers may skip it
        self._longest = max((len(s) for s in self._stops), default=0)
        self._held = ""
        self.stopped = False
        self.matched: str | None = None  # the stop sequence that ended the text (Anthropic answers name it)

    def feed(self, text: str) -> str:
        """Returns the text that is safe to emit now. Once a stop sequence is seen, everything after is dropped."""
        if self.stopped or not text:
            return ""
        if not self._stops:
            return text
        window = self._held + text
        # The stop sequence that is complete first (smallest end) is the one generation would have stopped at.
        cut, end = -1, -1
        for stop in self._stops:
            at = window.find(stop)
            if at != -1 and (end == -1 or at + len(stop) < end or (at + len(stop) == end and at < cut)):
                cut, end = at, at + len(stop)
                self.matched = stop
        if cut != -1:
            self.stopped = True
            self._held = ""
            return window[:cut]
        keep = self._pending_suffix(window)
        self._held = window[len(window) - keep :] if keep else ""
        return window[: len(window) - keep]

    def flush(self) -> str:
        """At the end of the text, whatever was held back is plain text after all."""
        held, self._held = self._held, ""
        return "" if self.stopped else held

    def _pending_suffix(self, window: str) -> int:
        # Longest suffix of `window` that is a proper prefix of a stop sequence; bounded by the longest stop.
        for size in range(min(len(window), self._longest - 1), 0, -1):
            tail = window[-size:]
            if any(stop.startswith(tail) for stop in self._stops):
                return size
        return 0
