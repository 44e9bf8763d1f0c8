"""Which accounts the pool may choose: a pinned account (`use`) and accounts kept out of automatic choice
(`exclude`), in `gateway_home/selection.json`.

The file is written atomically under a lock (read-modify-write, so a command line and a running gateway never
undo each other's change) and re-read by the pool whenever it changes: `codex-gateway accounts use …` applies to a
running gateway at its next request, like a new login file does. A file that cannot be read is reported once and
treated as "no pin, nothing excluded": requests keep flowing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import orjson

from .token_store import atomic_write_json
from .token_store import sync_file_lock

__all__ = ["Selection", "SelectionFile"]

logger = logging.getLogger(__name__)

FILE_NAME = "selection.json"


@dataclass(frozen=True)
class Selection:
    pinned: str | None = None  # the account id every request uses, if any
    excluded: frozenset[str] = field(default_factory=frozenset)  # account ids automatic choice skips

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "pinned": self.pinned, "excluded": sorted(self.excluded)}

    @classmethod
    def from_json(cls, doc: Any) -> Selection:
        """Raises ValueError when `doc` is not a selection file's content."""
        if not isinstance(doc, dict):
            raise ValueError("is not a JSON object")
        pinned = doc.get("pinned")
        excluded = doc.get("excluded", [])
        if pinned is not None and (not isinstance(pinned, str) or not pinned):
            raise ValueError("'pinned' is not an account id")
        if not isinstance(excluded, list) or not all(isinstance(x, str) and x for x in excluded):
            raise ValueError("'excluded' is not a list of account ids")
        return cls(pinned, frozenset(excluded))


class SelectionFile:
    def __init__(self, gateway_home: Path) -> None:
        self.path = gateway_home / FILE_NAME
        self.where = str(self.path)
        self.lock_path = self.path.with_name(FILE_NAME + ".lock")
        self._stamp: tuple[int, int, int] | None = None
        self._current = Selection()
        self.problem: str | None = None  # why the file was not usable (shown by `status`)

    def current(self) -> Selection:
        """The selection as the file holds it now (one stat per call; read again only when it changed)."""
        try:
            st = self.path.stat()
        except OSError:
            self._stamp, self._current, self.problem = None, Selection(), None
            return self._current
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._current, self.problem = self._read(), None
            except (OSError, ValueError) as exc:
                self._current, self.problem = Selection(), f"{self.path} {exc}; ignored"
                logger.warning("account selection: %s", self.problem)
        return self._current

    def update(self, change: Callable[[Selection], Selection]) -> Selection:
        """Applies `change` to what the file holds now, under the lock; writes only when something changed.

        Raises OSError when the file cannot be written, ValueError when it holds something else than a selection
        (then nothing is overwritten: the user may want to look at it first)."""
        with sync_file_lock(self.lock_path):
            before = self._read() if self.path.exists() else Selection()
            after = change(before)
            if after != before:
                atomic_write_json(self.path, after.to_json())
            self._stamp = None
        return self.current()

    def _read(self) -> Selection:
        try:
            doc = orjson.loads(self.path.read_bytes())
        except orjson.JSONDecodeError:
            raise ValueError("is not valid JSON") from None
        return Selection.from_json(doc)
