"""The real Claude Code CLI (npm `@anthropic-ai/claude-code`) for the tests: installed into the repo's ignored
`.cache/claude-code` on first use, and run fully offline against a base URL (see README "Claude Code")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VERSION = "2.1.337"  # the version whose requests are recorded in tests/fixtures/claude_code
PREFIX = ROOT / ".cache" / "claude-code"
BINARY = PREFIX / "node_modules" / ".bin" / "claude"


def install() -> tuple[Path | None, str]:
    """(the `claude` executable, "") once installed; (None, why not) where npm cannot install it."""
    if _works(BINARY):
        return BINARY, ""
    npm = shutil.which("npm")
    if npm is None:
        return None, "npm is not on PATH"
    PREFIX.mkdir(parents=True, exist_ok=True)
    args = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(PREFIX), f"@anthropic-ai/claude-code@{VERSION}"]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, "npm install @anthropic-ai/claude-code timed out"
    if done.returncode != 0 or not _works(BINARY):
        return None, f"npm install @anthropic-ai/claude-code failed: {(done.stderr or done.stdout)[-400:]}"
    return BINARY, ""


def _works(binary: Path) -> bool:
    if not binary.exists():
        return False
    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60, env=_env({}))
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and "Claude Code" in done.stdout


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_", "OPENAI_", "CODEX_"))}
    env.update(
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_ERROR_REPORTING="1",
    )
    env.update(extra)
    return env


def run(binary: Path, base_url: str, prompt: str, cwd: Path, home: Path, *args: str, key: str = "unused") -> Any:
    """`claude -p PROMPT --output-format json` with a fresh HOME; returns its JSON result."""
    home.mkdir(parents=True, exist_ok=True)
    env = _env({"HOME": str(home), "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": key})
    cmd = [str(binary), "-p", prompt, "--output-format", "json", *args]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise AssertionError(
            f"claude exited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        ) from None
