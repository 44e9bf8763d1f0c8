"""A mitmproxy script for the forward proxy of the upstream-proxy e2e tests (`mitmdump --mode regular`).

It appends one JSON line per CONNECT and per proxied request to `recorder_out`: what was asked for, whether it came
through a tunnel, and the user mitmproxy's `proxyauth` accepted. While a file `<recorder_out>.refuse` exists,
every CONNECT is refused with a 403 (a proxy that stops letting the gateway through).
"""

from __future__ import annotations

import json
import os
from typing import Any

from mitmproxy import ctx
from mitmproxy import http


class Recorder:
    def __init__(self) -> None:
        self.tunnels: set[str] = set()  # client connections that sent a CONNECT

    def load(self, loader: Any) -> None:
        loader.add_option("recorder_out", str, "", "JSON lines of what the proxy saw")

    def http_connect(self, flow: http.HTTPFlow) -> None:
        refuse = os.path.exists(ctx.options.recorder_out + ".refuse")
        self.tunnels.add(flow.client_conn.id)
        self._write(kind="connect", target=flow.request.authority, user=_user(flow), refused=refuse)
        if refuse and flow.response is None:
            flow.response = http.Response.make(403, b"refused by the test", {"content-type": "text/plain"})

    def request(self, flow: http.HTTPFlow) -> None:
        self._write(
            kind="request",
            method=flow.request.method,
            url=flow.request.url,
            tunnelled=flow.client_conn.id in self.tunnels,
            user=_user(flow),
        )

    def _write(self, **record: Any) -> None:
        with open(ctx.options.recorder_out, "a") as f:
            f.write(json.dumps(record) + "\n")


def _user(flow: http.HTTPFlow) -> str | None:
    accepted = flow.metadata.get("proxyauth")
    return str(accepted[0]) if accepted else None


addons = [Recorder()]
