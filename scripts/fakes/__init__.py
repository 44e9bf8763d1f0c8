"""In-process fakes of the services the gateway talks to.

Codex backend (``chatgpt.com/backend-api/codex``), split by concern:

- ``codex_backend``: the HTTP/1.1 server (``FakeCodexBackend``) and CLI;
  re-exports ``SSEScript``, ``ErrorScript`` and ``RecordedRequest``.
- ``codex_scripts``: those dataclasses plus the default response headers.
- ``codex_events`` (import as ``ev``): builders for realistic SSE event lists.
- ``codex_rules`` / ``codex_schema``: the allow-list request validation.
- ``codex_models``: the default ``/models`` payload.

Typical use::

    from scripts.fakes import codex_events as ev
    from scripts.fakes.codex_backend import FakeCodexBackend, SSEScript

    with FakeCodexBackend() as backend:
        backend.enqueue(SSEScript(ev.tool_calls([("shell", '{"command":["ls"]}', "call_1")]), chunks=5))
        ...  # point the gateway at backend.codex_base and send a chat request
        sent = backend.responses_requests()[0]
        assert sent.status == 200, sent.error
"""
