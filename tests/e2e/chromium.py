"""Headless Chromium for the page tests: Debian's binary, started the way this closed network allows.

The background-networking flags keep Chromium from reaching out (its connections would be refused, many at a
time); each run gets its own empty profile.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM = next((path for name in BROWSERS if (path := shutil.which(name))), None)
MISSING = "no Chromium binary on PATH (install Debian's: apt-get install -y --no-install-recommends chromium)"


def run_headless(url: str, profile: Path, *extra: str) -> str:
    """Runs Chromium once on `url` with `extra` flags (`--dump-dom`, `--screenshot=…`); returns its stdout."""
    assert CHROMIUM is not None
    args = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *extra,
        url,
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def render(url: str, profile: Path, budget_ms: int) -> str:
    """The page's DOM after `budget_ms` of virtual time (scripts run, nothing waits in real time)."""
    return run_headless(url, profile, f"--virtual-time-budget={budget_ms}", "--dump-dom")
