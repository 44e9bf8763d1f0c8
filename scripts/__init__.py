"""Tools around the gateway, importable from the repo root (`python -m scripts.bench`).

bench/ is the benchmark, fakes/ the fake Codex backend and OAuth issuer, gateway_process.py a real mitmdump with
the addon; tests import these, never the reverse. The other scripts run as files: `.venv/bin/python scripts/….py`.
"""
