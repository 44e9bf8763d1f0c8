"""How the gateway reaches the Codex backend: the upstream proxy (`codex_proxy`, `codex_no_proxy`, or the
environment's `HTTPS_PROXY`/`NO_PROXY`), its use by mitmproxy flows and by httpx side requests, and the
`doctor` check of the whole path.

- `proxy`: parsing, no-proxy matching and masking (pure).
- `tunnel`: asyncio primitives: connect, CONNECT through a proxy, TLS (no mitmproxy).
- `gate`: which proxy a flow goes through, and the check before it goes (no mitmproxy).
- `client`: the httpx client every side request uses.
- `flows`: the mitmproxy side (`server_conn.via`, `Proxy-Authorization` on the CONNECT, failed flows).
- `doctor`: `run_doctor` and its report.
"""
