"""Benchmark: the gateway against its floor, in one run on one machine (`python -m scripts.bench`).

Four ways to the same fake Codex backend (backend.py, a subprocess):

- direct: the fake's `/backend-api/codex/responses`, no proxy;
- pass-through: a plain `mitmdump --mode reverse:… --set stream_large_bodies=1 --set connection_strategy=lazy`,
  no addon, same path and a valid Codex body. The goals' baseline: the floor of the engine;
- buffered pass-through: the same `mitmdump` without `stream_large_bodies` (mitmproxy's defaults: request and
  response read whole before forwarding). A reference, not a baseline, measured in phase 1 only. The streaming
  pass-through forwards the request body before its request hooks run, so mitmproxy's own request work overlaps
  the backend's; a translating gateway must read the whole request first and pays that work on the critical path,
  as this mode does;
- gateway: `mitmdump -s addons/gateway.py` started with the arguments of scripts/gateway_process.py, called as
  `/v1/chat/completions`.

With `--compare ADDONS_DIR` a fifth mode, the gateway started from another checkout's addons/ directory (say a
`git worktree` of an older commit), is measured in the same run, taking its turns like the others, with its own
column, ratios and goal verdicts and a "gateway ÷ compared" column: a change's before/after from one run.
`--compare addons` (this checkout against itself) shows how far two identical gateways drift apart in one run.

Figures (p50 / p90 and sample counts): 1) small non-streamed request latency at concurrency 1 and req/s at
concurrency 8 (keep-alive httpx clients); 2) time to first content byte when upstream sends a delta every
50-100 ms; 3) one long stream (one event per upstream write): events/s and proxy CPU per 1,000 events, 15 runs;
4) a burst of concurrent streams: time to first content byte, wall time, peak RSS (VmHWM); 5) start-up until the
first answer. Modes are interleaved (small requests one by one) so drift hits them all alike. Goals are ratios
against the streaming pass-through in the same run; "added" means mode − direct. One informational ratio, no goal:
the gateway's added latency over the buffered pass-through's.

    .venv/bin/python -m scripts.bench                    # full run (70-90 s on 2 cores)
    .venv/bin/python -m scripts.bench --quick            # tiny parameters, for the smoke test
    .venv/bin/python -m scripts.bench --json out.json
    .venv/bin/python -m scripts.bench --compare ../before/addons   # side by side with another checkout
    .venv/bin/python -m scripts.bench profile            # cProfile / py-spy of the hot path (profiling.py)

Everything is on 127.0.0.1, bounded in count and time (`--max-seconds`), and every subprocess is stopped on exit.
Modules: cli.py (the entry point), backend.py (the upstream), procs.py (processes, /proc), phases.py (requests and
phases), rows.py and report.py (table and goals), profiling.py (cProfile / py-spy of the hot path).
"""
