#!/usr/bin/env bash
# Sets everything up, then runs the gateway on 127.0.0.1:8787 (`--web` runs mitmweb instead of mitmdump).
# Extra arguments go to mitmproxy, e.g. `--set gateway_api_key=secret` or `--mode reverse:https://chatgpt.com@127.0.0.1:9000`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
tool=mitmdump
if [ "${1:-}" = "--web" ]; then tool=mitmweb; shift; fi
mode=(--mode "reverse:https://chatgpt.com@127.0.0.1:8787")
for arg in "$@"; do case "$arg" in --mode|--mode=*|-m) mode=() ;; esac; done
exec ".venv/bin/$tool" -s addons/gateway.py "${mode[@]}" --set connection_strategy=lazy "$@"
