"""The real OpenClaw CLI (npm `openclaw`) for the tests: installed into the repo's ignored `.cache/openclaw` on first
use, with the Node 24 it needs from the npm package `node` (OpenClaw refuses older Node: it uses `node:sqlite`).

Two installs, because `openclaw`'s preinstall script checks the Node that runs it: first `node@24` into the cache,
then `openclaw` with that Node first on PATH. Then OpenClaw runs with a throwaway HOME holding the configuration
under test (`~/.openclaw/openclaw.json`) and talks to nothing but the base URL in it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VERSION = "2026.9.6"  # the version whose sessions are in tests/fixtures/openclaw
NODE = "node@>=24.16 <25"
PREFIX = ROOT / ".cache" / "openclaw"
NODE_BIN = PREFIX / "node_modules" / "node" / "bin"
BINARY = PREFIX / "node_modules" / ".bin" / "openclaw"
README = ROOT / "README.md"


def install() -> tuple[Path | None, str]:
    """(the `openclaw` executable, "") once installed; (None, why not) where npm cannot install it."""
    if _works():
        return BINARY, ""
    npm = shutil.which("npm")
    if npm is None:
        return None, "npm is not on PATH"
    PREFIX.mkdir(parents=True, exist_ok=True)
    for package, env in ((NODE, None), (f"openclaw@{VERSION}", _env({}))):
        args = [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(PREFIX), package]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=900, env=env)
        except subprocess.TimeoutExpired:
            return None, f"npm install {package} timed out"
        if done.returncode != 0:
            return None, f"npm install {package} failed: {(done.stderr or done.stdout)[-400:]}"
    if not _works():
        return None, f"{BINARY} does not run after installing it"
    return BINARY, ""


def _works() -> bool:
    if not BINARY.exists() or not (NODE_BIN / "node").exists():
        return False
    try:
        done = subprocess.run([str(BINARY), "--version"], capture_output=True, text=True, timeout=120, env=_env({}))
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and VERSION in done.stdout


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_", "OPENCLAW_"))}
    env["PATH"] = f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def readme_config() -> dict[str, Any]:
    """The configuration the README's "OpenClaw" section gives: its first ```json block."""
    text = README.read_text()
    section = text[text.index("\n## OpenClaw\n") :]
    match = re.search(r"```json\n(.*?)\n```", section, re.S)
    assert match is not None, "the README's OpenClaw section has no ```json block"
    config: dict[str, Any] = json.loads(match.group(1))
    return config


def run(binary: Path, config: dict[str, Any], message: str, workspace: Path, home: Path, session: str) -> str:
    """One agent turn (`openclaw agent --local`) with `config` as `~/.openclaw/openclaw.json`; returns its stdout."""
    (home / ".openclaw").mkdir(parents=True, exist_ok=True)
    config = json.loads(json.dumps(config))
    config["agents"]["defaults"]["workspace"] = str(workspace)
    (home / ".openclaw" / "openclaw.json").write_text(json.dumps(config, indent=2))
    cmd = [str(binary), "agent", "--local", "--agent", "main", "--session-key", session, "--message", message]
    done = subprocess.run(
        cmd, cwd=workspace, env=_env({"HOME": str(home), "NO_COLOR": "1"}), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"openclaw exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout
