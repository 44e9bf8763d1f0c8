"""The benchmark's upstream: the fake Codex backend of scripts/fakes/, answering by what the request asks for.

Every benchmark request carries a user message ``bench n=<deltas> delay_ms=<ms>``; the answer is a realistic
``ev.text`` stream (created, in_progress, output_item/content_part added, ``n`` ``output_text.delta`` events,
the done events, ``response.completed`` with usage) written one HTTP chunk per event. With ``delay_ms > 0`` the
lifecycle events before the first delta go out as one write and the done events after the last one as another
(raw SSE blobs, which the fake writes verbatim), so the fake's fixed inter-write delay falls between deltas: the
first delta arrives ``delay_ms`` after the headers and each further delta ``delay_ms`` after the previous one.
The same request therefore gets the same timing whether it comes directly, through the plain proxy or through
the gateway, which is what lets the benchmark subtract the direct figures.

Run as a subprocess by the benchmark: ``python -m scripts.bench backend --port 0`` prints
``listening on 127.0.0.1:<port>`` and serves until it is terminated.
"""

from __future__ import annotations

import argparse
import signal
import threading
import uuid
from typing import Any

from ..fakes import codex_events as ev
from ..fakes.codex_backend import FakeCodexBackend
from ..fakes.codex_scripts import RecordedRequest
from ..fakes.codex_scripts import Script
from ..fakes.codex_scripts import SSEScript

MARK = "bench"
# Token-sized English pieces, like real output_text deltas.
WORDS = [" the", " gateway", " streams", " each", " token", " as", " it", " arrives", ",", " and", " adds", " little"]
PRELUDE_EVENTS = 4  # created, in_progress, output_item.added, content_part.added


def bench_text(deltas: int, delay_ms: float) -> str:
    """The user message that asks the bench backend for ``deltas`` deltas, ``delay_ms`` apart."""
    return f"{MARK} n={deltas} delay_ms={delay_ms:g}"


def parse_text(text: str) -> tuple[int, float] | None:
    parts = text.split()
    if not parts or parts[0] != MARK:
        return None
    kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    return int(kv.get("n", "3")), float(kv.get("delay_ms", "0"))


def request_text(body: Any) -> str:
    """The last user input_text of a Codex Responses body ("" if there is none)."""
    found = ""
    if isinstance(body, dict) and isinstance(body.get("input"), list):
        for item in body["input"]:
            if not isinstance(item, dict) or item.get("role") != "user":
                continue
            content = item.get("content")
            if isinstance(content, str):
                found = content
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        found = part["text"]
    return found


def delta_texts(n: int) -> list[str]:
    return [WORDS[i % len(WORDS)] for i in range(n)]


def expected_content(n: int) -> str:
    return "".join(delta_texts(n))


def build_script(n: int, delay_ms: float, *, model: str = "gpt-5.4") -> SSEScript:
    events: list[dict[str, Any] | str] = list(
        ev.text(delta_texts(n), response_id=f"resp_{uuid.uuid4().hex}", model=model, usage=ev.usage(40, n))
    )
    if delay_ms <= 0:
        return SSEScript(events, chunks="per_event")
    head, deltas, tail = events[:PRELUDE_EVENTS], events[PRELUDE_EVENTS:-4], events[-4:]
    blobs: list[dict[str, Any] | str] = [_blob(head), *deltas, _blob(tail)]
    return SSEScript(blobs, chunks="per_event", delay_s=delay_ms / 1000.0)


def _blob(events: list[dict[str, Any] | str]) -> str:
    return b"".join(SSEScript(events).encoded()).decode()


class BenchBackend(FakeCodexBackend):
    """FakeCodexBackend whose default answer is chosen by the ``bench n=… delay_ms=…`` user message."""

    def default_script(self, rec: RecordedRequest) -> Script:
        asked = parse_text(request_text(rec.json))
        if asked is None:
            return super().default_script(rec)
        model = rec.json.get("model", "gpt-5.4") if isinstance(rec.json, dict) else "gpt-5.4"
        return build_script(asked[0], asked[1], model=str(model))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench backend", description="the benchmark's fake Codex backend"
    )
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    backend = BenchBackend(args.port).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"listening on 127.0.0.1:{backend.port}", flush=True)
    try:
        stop.wait(timeout=3600.0)  # never outlives a forgotten parent by more than an hour
    finally:
        backend.stop()
    return 0
