"""multipart/form-data bodies (RFC 7578), as the OpenAI SDK sends image edits (pure, binary-safe)."""

from __future__ import annotations

import re

from ..errors import bad_request

__all__ = ["Part", "parse_multipart"]


class Part:
    __slots__ = ("name", "filename", "content_type", "data")

    def __init__(self, name: str, filename: str | None, content_type: str | None, data: bytes) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.data = data


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """A multipart/form-data body (RFC 7578) → its parts; binary-safe. Raises a 400 when it cannot be parsed."""
    match = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', content_type, re.I)
    if match is None:
        raise bad_request("The multipart/form-data body has no boundary in its Content-Type.", code="invalid_body")
    delimiter = b"--" + (match.group(1) or match.group(2)).encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise bad_request("The multipart/form-data body is truncated or malformed.", code="invalid_body")
    parts: list[Part] = []
    for chunk in chunks[1:-1]:
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise bad_request("A multipart/form-data part has no header block.", code="invalid_body")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _param(disposition, "name")
        if name is None:
            continue
        parts.append(Part(name, _param(disposition, "filename"), headers.get("content-type"), data))
    return parts


def _param(header: str, key: str) -> str | None:
    match = re.search(rf'(?:^|;)\s*{key}=(?:"((?:[^"\\]|\\.)*)"|([^;]*))', header, re.I)
    if match is None:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2).strip()
