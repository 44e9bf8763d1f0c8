"""The mitmproxy script inside the installed package (`codex-gateway run` passes `gateway.py` here to `-s`)."""
