"""multipart: RFC 7578 form bodies as the OpenAI SDK sends image edits; binary-safe, 400 when unreadable."""

from __future__ import annotations

import pytest
from codex_gateway.errors import GatewayError
from codex_gateway.images.multipart import Part
from codex_gateway.images.multipart import parse_multipart

BOUNDARY = "----form-7d1f"
CT = f"multipart/form-data; boundary={BOUNDARY}"
BINARY = b"\x89PNG\r\n\x1a\n\x00\xff\r\n\r\n--not-the-boundary\r\n\x00"


def field(name: str, value: bytes) -> bytes:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"


def file(name: str, filename: str, content_type: str, data: bytes) -> bytes:
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    )
    return head.encode() + data + b"\r\n"


END = f"--{BOUNDARY}--\r\n".encode()


def parts(content_type: str, body: bytes) -> list[tuple[str, str | None, str | None, bytes]]:
    return [(p.name, p.filename, p.content_type, p.data) for p in parse_multipart(content_type, body)]


def test_fields_and_files() -> None:
    body = field("prompt", b"make it blue") + file("image[]", "cat.png", "image/png", b"PNG") + field("n", b"1") + END
    assert parts(CT, body) == [
        ("prompt", None, None, b"make it blue"),
        ("image[]", "cat.png", "image/png", b"PNG"),
        ("n", None, None, b"1"),
    ]


def test_parts_are_part_objects() -> None:
    (part,) = parse_multipart(CT, field("prompt", b"x") + END)
    assert isinstance(part, Part)


@pytest.mark.parametrize(
    "data",
    [BINARY, b"", b"\r\n", b"ends with crlf\r\n", b"\r\n\r\n", bytes(range(256))],
    ids=["png-ish", "empty", "crlf", "trailing crlf", "blank lines", "all bytes"],
)
def test_file_data_is_binary_safe(data: bytes) -> None:
    body = file("image", "a.bin", "application/octet-stream", data) + field("prompt", b"p") + END
    assert parts(CT, body)[0][3] == data


def test_field_values_keep_their_line_breaks() -> None:
    assert parts(CT, field("prompt", b"line one\r\nline two") + END)[0][3] == b"line one\r\nline two"


CONTENT_TYPES = [
    f'multipart/form-data; boundary="{BOUNDARY}"',
    f"multipart/form-data; charset=utf-8; boundary={BOUNDARY}",
    f"multipart/form-data; BOUNDARY={BOUNDARY}",
    f"Multipart/Form-Data; boundary={BOUNDARY}; charset=utf-8",
]


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
def test_boundary_forms(content_type: str) -> None:
    assert parts(content_type, field("prompt", b"x") + END) == [("prompt", None, None, b"x")]


def test_quoted_boundary_with_a_space() -> None:
    body = b'--a b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--a b--\r\n'
    assert parts('multipart/form-data; boundary="a b"', body) == [("x", None, None, b"1")]


def test_preamble_and_epilogue_are_ignored() -> None:
    body = b"preamble text\r\n" + field("prompt", b"x") + END + b"epilogue"
    assert parts(CT, body) == [("prompt", None, None, b"x")]


DISPOSITIONS = [
    ('form-data; name="image"; filename="a b.png"', ("image", "a b.png")),
    ('form-data; filename="a.png"; name="image"', ("image", "a.png")),
    ("form-data; name=image; filename=a.png", ("image", "a.png")),
    ('form-data; name="prompt"', ("prompt", None)),
    ('form-data; name=""', ("", None)),
    ('FORM-DATA; NAME="x"; FILENAME="y.png"', ("x", "y.png")),
]


@pytest.mark.parametrize("disposition, expected", DISPOSITIONS)
def test_content_disposition_parameters(disposition: str, expected: tuple[str, str | None]) -> None:
    body = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\ndata\r\n".encode() + END
    (part,) = parse_multipart(CT, body)
    assert (part.name, part.filename) == expected


def test_parts_without_a_name_are_skipped() -> None:
    body = f"--{BOUNDARY}\r\nContent-Type: text/plain\r\n\r\norphan\r\n".encode() + field("prompt", b"x") + END
    assert parts(CT, body) == [("prompt", None, None, b"x")]


def test_header_names_are_case_insensitive() -> None:
    body = (
        f'--{BOUNDARY}\r\ncontent-disposition: form-data; name="f"; filename="f.png"\r\nCONTENT-TYPE: image/png'
        "\r\n\r\nx\r\n"
    ).encode() + END
    assert parts(CT, body) == [("f", "f.png", "image/png", b"x")]


# -- unreadable bodies ----------------------------------------------------------------------------------------------

FULL = field("prompt", b"make it blue") + file("image", "a.png", "image/png", BINARY) + END

BAD = [
    ("no boundary", "multipart/form-data", FULL),
    ("empty boundary", "multipart/form-data; boundary=", FULL),
    ("other boundary", "multipart/form-data; boundary=other", FULL),
    ("empty body", CT, b""),
    ("only the end", CT, END),
    ("no closing delimiter", CT, FULL[: -len(END)]),
    ("cut inside the file", CT, FULL[: len(FULL) // 2]),
    ("cut inside the closing delimiter", CT, FULL[:-6]),
    ("part without header block", CT, f"--{BOUNDARY}\r\nno headers here\r\n".encode() + END),
]


@pytest.mark.parametrize("content_type, body", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_unreadable_bodies_are_a_400(content_type: str, body: bytes) -> None:
    with pytest.raises(GatewayError) as e:
        parse_multipart(content_type, body)
    assert (e.value.status, e.value.code, e.value.type) == (400, "invalid_body", "invalid_request_error")
