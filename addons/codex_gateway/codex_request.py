"""What every request the gateway sends to the Codex backend has in common (pure: no mitmproxy, no I/O).

- Instructions: the backend refuses a request without them; a client that sends none gets `DEFAULT_INSTRUCTIONS`.
- Tool schemas: how deep a JSON schema may nest (`schema_depth`), checked by every request schema.
- The session key: the backend groups the turns of one conversation by a uuid-shaped key, the body's
  `prompt_cache_key` and the `session_id` header (it routes and prompt-caches on them). When the client names
  none, the gateway derives one from the request itself, so the same conversation (or the same image prompt) gets
  the same key on every turn and on a replay. Existing keys must never change, since recorded flows are replayed
  by their exact upstream bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

__all__ = ["DEFAULT_INSTRUCTIONS", "MAX_SCHEMA_DEPTH", "conversation_key", "schema_depth", "uuid_key"]

DEFAULT_INSTRUCTIONS = "You are a helpful assistant."
MAX_SCHEMA_DEPTH = 100  # orjson writes at most 254 levels; real schemas are a handful deep


def schema_depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion (a hostile schema must not blow the stack)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_SCHEMA_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def uuid_key(data: bytes) -> str:
    """A uuid-shaped key for `data`: the first 16 bytes of its sha256 as a version-4 UUID string.

    The same as `str(uuid.UUID(bytes=sha256(data).digest()[:16], version=4))`, without the UUID object (this
    runs on every request)."""
    h = hashlib.sha256(data).digest()[:16].hex()
    # Version 4 in the 13th hex digit; the RFC 4122 variant (binary 10xx) in the 17th.
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def conversation_key(instructions: str, items: Sequence[Any], *, namespace: str | None = None) -> str:
    """The key of a conversation, from what does not change between its turns: the instructions and the content
    of the first user message in `items` (Responses input items; anything that is not an object is skipped).

    `namespace` keeps the keys of two APIs apart (`"responses"`; chat keys have none, as they always had)."""
    first_user = None
    for item in items:  # a loop, not next() over a generator: this runs on every request
        if isinstance(item, dict) and item.get("role") == "user":
            first_user = item
            break
    content = first_user.get("content") if first_user is not None else None
    seed = [instructions, content] if namespace is None else [namespace, instructions, content]
    return uuid_key(orjson.dumps(seed))


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
