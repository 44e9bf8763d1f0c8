"""A really read-only directory for tests of the request log on read-only media."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def read_only_view(directory: Path) -> Iterator[Path]:
    """`directory`'s contents where nothing can be written: a read-only bind mount when root (mode bits do not
    stop root; the kernel answers EROFS as on read-only media), else the directory itself with its write bits
    cleared. Skips the test when neither works here."""
    if os.geteuid() == 0:
        view = directory.with_name(directory.name + "-ro")
        view.mkdir()
        if not _mount(["--bind", str(directory), str(view)]):
            pytest.skip("no bind mount here (a container without CAP_SYS_ADMIN?)")
        try:
            if not _mount(["-o", "remount,bind,ro", str(view)]):
                pytest.skip("cannot remount the bind mount read-only here")
            yield view
        finally:
            subprocess.run(["umount", "-l", str(view)], check=False, capture_output=True)
        return
    directory.chmod(0o555)
    try:
        if os.access(directory, os.W_OK):
            pytest.skip("the directory stays writable")
        yield directory
    finally:
        directory.chmod(0o755)


def _mount(args: list[str]) -> bool:
    try:
        return subprocess.run(["mount", *args], check=False, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False
