"""`/v1/images/generations` and `/v1/images/edits` through the Codex `image_generation` tool (pure, no I/O).

A ChatGPT login has no Images API, but the Codex backend runs the hosted `image_generation` tool: the gateway
asks an orchestrator model (default `gpt-5.4-mini`) to call it once with the client's prompt (and, for edits, its
images), and turns the finished `image_generation_call` item into an OpenAI images response.

Everything the tool cannot do is refused with a 400 envelope before anything goes upstream: `n > 1`,
`response_format: "url"` (there is nowhere to host a URL), DALL·E models, sizes and qualities, unknown output
formats, `output_compression` with PNG, a transparent background with JPEG, `stream: true`, `file_id`
references, images that are not PNG/JPEG/WebP. Ignorable parameters (`user`, `style`, `partial_images`,
unknown ones) are dropped and listed in the job's `dropped`.

Wiring (addon), for both endpoints; the answer is always buffered (no `response.stream`):

    body, job = prepare_generation(raw, content_type)        # or prepare_edit(raw, content_type)
    # GatewayError 400/415 → answer locally. Edits may come as multipart/form-data, which the route admits
    # for them (http.routes.check_body(..., multipart=True)).
    upstream POST {codex_upstream}/responses, json body, the usual Codex headers (+ session_id: job.session_id)
    answer = buffered_answer(job, status, headers, upstream_body)   # ClientAnswer (JSON)

`job` is an `ImageJob` (images/job.py; the flow record keeps it). `answer_from_events(events, job)` and
`answer_from_body(body, job)` give `(http_status, images_response | error_envelope)`.

The answer side (the finished `image_generation_call` → an images response) is in images/answer.py.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

import orjson

from ..codex_request import uuid_key
from ..errors import GatewayError
from ..errors import bad_request
from ..errors import parse_json_object
from .answer import answer_from_body  # re-exported: images is the entry point
from .answer import answer_from_events
from .answer import buffered_answer
from .job import ImageJob
from .multipart import parse_multipart

__all__ = [
    "DEFAULT_ORCHESTRATOR",
    "IMAGE_INSTRUCTIONS",
    "prepare_generation",
    "prepare_edit",
    "answer_from_events",
    "answer_from_body",
    "buffered_answer",
    "parse_multipart",
    "ImageJob",
]

DEFAULT_ORCHESTRATOR = "gpt-5.4-mini"
IMAGE_INSTRUCTIONS = (
    "You are an image generation service. Call the image_generation tool exactly once, with the user's prompt "
    "as it is: do not add, drop or reinterpret details. When images are attached, they are the input to edit. "
    "Do not answer with text."
)
MAX_PROMPT = 32000
MAX_IMAGES = 16
MAX_IMAGE_BYTES = 50 * 1024 * 1024
QUALITIES = ("low", "medium", "high", "xhigh", "max", "auto")
FORMATS = ("png", "jpeg", "webp")
BACKGROUNDS = ("transparent", "opaque", "auto")
MODERATIONS = ("auto", "low")
FIDELITIES = ("high", "low")
STANDARD_SIZES = ("1024x1024", "1536x1024", "1024x1536")
LEGACY_SIZES = ("256x256", "512x512", "1792x1024", "1024x1792")
FIXED_SIZE_MODELS = ("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5")  # standard sizes only
_DROPPED = ("user", "safety_identifier", "style", "partial_images")
_KNOWN = {
    "prompt",
    "model",
    "n",
    "size",
    "quality",
    "response_format",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "stream",
    "input_fidelity",
    "image",
    "image[]",
    "images",
    "mask",
    *_DROPPED,
}
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))
_BARE_BASE64 = re.compile(r"^[A-Za-z0-9+/=_-]{80,}$")


# -- requests -------------------------------------------------------------------------------------------------


def prepare_generation(
    body: bytes, content_type: str | None, *, orchestrator: str = DEFAULT_ORCHESTRATOR, forward_model: bool = True
) -> tuple[dict[str, Any], ImageJob]:
    """`POST /v1/images/generations`: JSON, as the SDK sends it (a multipart form parses too, but the route admits
    multipart only for edits)."""
    fields, files = _fields(body, content_type)
    return _prepare("images.generations", fields, files, orchestrator, forward_model)


def prepare_edit(
    body: bytes, content_type: str | None, *, orchestrator: str = DEFAULT_ORCHESTRATOR, forward_model: bool = True
) -> tuple[dict[str, Any], ImageJob]:
    """`POST /v1/images/edits`: multipart/form-data (`image`/`image[]` files, optional `mask`, as the OpenAI SDK
    sends) or JSON (`images: [{image_url}]`, `image`, `mask: {image_url}` with http(s) or data URLs)."""
    fields, files = _fields(body, content_type)
    return _prepare("images.edits", fields, files, orchestrator, forward_model)


def _prepare(
    endpoint: str,
    fields: dict[str, Any],
    files: dict[str, list[tuple[bytes, str | None]]],
    orchestrator: str,
    forward_model: bool,
) -> tuple[dict[str, Any], ImageJob]:
    edit = endpoint == "images.edits"
    prompt = _prompt(fields.get("prompt"))
    model = _model(fields.get("model"))
    _refuse_what_the_tool_cannot_do(fields)
    options = _tool_options(fields, model, edit)
    images, mask = _edit_inputs(fields, files) if edit else ([], None)
    tool = _image_tool(options, model if forward_model else None, images, mask)
    dropped = [k for k in fields if k in _DROPPED or k not in _KNOWN]
    if model is not None and not forward_model:
        dropped.append("model")
    job = ImageJob(
        edit=edit,
        orchestrator=orchestrator,
        session_id=uuid_key(orjson.dumps([endpoint, prompt, len(images)])),
        model=model,
        prompt_chars=len(prompt),
        images=len(images),
        mask=mask is not None,
        size=options["size"],
        quality=options["quality"],
        background=options["background"],
        output_format=options["output_format"],
        dropped=list(dict.fromkeys(dropped)),
    )
    return _codex_body(orchestrator, prompt, images, tool), job


def _prompt(prompt: Any) -> str:
    if prompt is None or prompt == "":
        raise bad_request("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if not isinstance(prompt, str):
        raise bad_request("Invalid type for 'prompt': expected a string.", "prompt", "invalid_type")
    if len(prompt) > MAX_PROMPT:
        raise bad_request(
            f"'prompt' is too long: at most {MAX_PROMPT} characters.", "prompt", "string_above_max_length"
        )
    return prompt


def _refuse_what_the_tool_cannot_do(fields: Mapping[str, Any]) -> None:
    """More than one image, an image URL, a stream: a 400 naming the parameter."""
    n = _int(fields, "n", 1, None)
    if n is not None and n > 1:
        raise bad_request(
            "n > 1 is not supported: the Codex image_generation tool makes one image per request. "
            "Send one request per image.",
            "n",
            "unsupported_value",
        )
    if fields.get("response_format") not in (None, "b64_json"):
        raise bad_request(
            f"response_format {fields['response_format']!r} is not supported: images are only returned as "
            "'b64_json' (the gateway has nowhere to host image URLs).",
            "response_format",
            "unsupported_value",
        )
    if _bool(fields, "stream"):
        raise bad_request("stream is not supported for images: the gateway returns the finished image.", "stream")


def _tool_options(fields: Mapping[str, Any], model: str | None, edit: bool) -> dict[str, Any]:
    """The image_generation tool's options, validated, in the order they are sent (None: not chosen), and the
    effective `output_format` (png unless chosen)."""
    size = _size(fields.get("size"), model)
    quality = _choice(fields, "quality", QUALITIES, hint=" ('standard' and 'hd' are DALL·E values)")
    output_format = _choice(fields, "output_format", FORMATS) or "png"
    background = _choice(fields, "background", BACKGROUNDS)
    moderation = _choice(fields, "moderation", MODERATIONS)
    fidelity = _choice(fields, "input_fidelity", FIDELITIES) if edit else None
    compression = _int(fields, "output_compression", 0, 100)
    if compression is not None and output_format == "png":
        raise bad_request("output_compression only applies to the jpeg and webp output formats.", "output_compression")
    if background == "transparent" and output_format == "jpeg":
        raise bad_request("A transparent background needs output_format png or webp.", "background")
    return {
        "size": size,
        "quality": quality,
        "background": background,
        "output_compression": compression,
        "moderation": moderation,
        "input_fidelity": fidelity,
        "output_format": output_format,
    }


def _image_tool(options: Mapping[str, Any], model: str | None, images: list[str], mask: str | None) -> dict[str, Any]:
    """The `image_generation` tool entry (key order fixed: equal requests give equal upstream bytes)."""
    tool: dict[str, Any] = {"type": "image_generation", "output_format": options["output_format"]}
    if model is not None:
        tool["model"] = model
    tool.update((key, value) for key, value in options.items() if key != "output_format" and value is not None)
    if images:
        tool["action"] = "edit"
    if mask is not None:
        tool["input_image_mask"] = {"image_url": mask}
    return tool


def _codex_body(orchestrator: str, prompt: str, images: list[str], tool: dict[str, Any]) -> dict[str, Any]:
    """The orchestrator's request: call the image tool once with the prompt and the images to edit."""
    content: list[dict[str, Any]] = [{"type": "input_text", "text": prompt}]
    content += [{"type": "input_image", "image_url": url} for url in images]
    return {
        "model": orchestrator,
        "instructions": IMAGE_INSTRUCTIONS,
        "input": [{"type": "message", "role": "user", "content": content}],
        "tools": [tool],
        "tool_choice": {"type": "image_generation"},
        "parallel_tool_calls": False,
        "store": False,
        "stream": True,
        "include": [],
    }


def _model(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise bad_request("Invalid type for 'model': expected a string.", "model", "invalid_type")
    if not value.startswith("gpt-image"):
        raise bad_request(
            f"The model '{value}' is not available through the Codex image_generation tool: use a GPT Image model "
            "(e.g. gpt-image-1, gpt-image-1.5, gpt-image-2) or omit 'model'.",
            "model",
            "model_not_found",
        )
    return value


def _size(value: Any, model: str | None) -> str | None:
    if value is None or value == "auto":
        return value
    if not isinstance(value, str):
        raise bad_request("Invalid type for 'size': expected a string.", "size", "invalid_type")
    allowed = "'auto', " + ", ".join(f"'{s}'" for s in STANDARD_SIZES)
    if value in LEGACY_SIZES:
        raise bad_request(f"Size '{value}' is a DALL·E size; GPT Image models take {allowed}.", "size")
    if model in FIXED_SIZE_MODELS and value not in STANDARD_SIZES:
        raise bad_request(f"Invalid size '{value}' for {model}: supported sizes are {allowed}.", "size")
    match = re.fullmatch(r"(\d{2,5})x(\d{2,5})", value)
    if match is None:
        raise bad_request(f"Invalid size '{value}': expected 'auto' or WIDTHxHEIGHT, e.g. {allowed}.", "size")
    width, height = int(match.group(1)), int(match.group(2))
    if (
        width % 16
        or height % 16
        or max(width, height) > 3840
        or max(width, height) > 3 * min(width, height)
        or width * height > 3840 * 2160
    ):
        raise bad_request(
            f"Invalid size '{value}': width and height must be multiples of 16, at most 3840 pixels, with an "
            f"aspect ratio between 1:3 and 3:1 and at most 3840x2160 pixels in all ({allowed} always work).",
            "size",
        )
    return value


def _choice(fields: Mapping[str, Any], name: str, allowed: tuple[str, ...], hint: str = "") -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if value not in allowed:
        supported = ", ".join(f"'{a}'" for a in allowed)
        raise bad_request(f"Invalid value for '{name}': {value!r}. Supported values are: {supported}.{hint}", name)
    return str(value)


def _int(fields: Mapping[str, Any], name: str, low: int, high: int | None) -> int | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        value = int(value)  # multipart fields are text
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request(f"Invalid type for '{name}': expected an integer.", name, "invalid_type")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise bad_request(f"Invalid value for '{name}': {value}; it must be {bounds}.", name)
    return value


def _bool(fields: Mapping[str, Any], name: str) -> bool:
    value = fields.get(name)
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


# -- request bodies -------------------------------------------------------------------------------------------


def _fields(body: bytes, content_type: str | None) -> tuple[dict[str, Any], dict[str, list[tuple[bytes, str | None]]]]:
    """Fields and uploaded files (name → [(bytes, declared content type)]) of a JSON or multipart body."""
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        assert content_type is not None
        fields: dict[str, Any] = {}
        files: dict[str, list[tuple[bytes, str | None]]] = {}
        for part in parse_multipart(content_type, body):
            if part.filename is not None:
                files.setdefault(part.name, []).append((part.data, part.content_type))
            else:
                fields[part.name] = part.data.decode("utf-8", "replace")
        return fields, files
    if media in ("application/json", "text/json") or media.endswith("+json"):
        return parse_json_object(body), {}
    raise GatewayError(
        415,
        f"Unsupported content type {media!r}: send application/json or multipart/form-data.",
        code="unsupported_media_type",
    )


# -- edit inputs ----------------------------------------------------------------------------------------------


def _edit_inputs(
    fields: Mapping[str, Any], files: Mapping[str, list[tuple[bytes, str | None]]]
) -> tuple[list[str], str | None]:
    images: list[str] = []
    for name in ("image", "image[]"):
        for i, (data, declared) in enumerate(files.get(name, ())):
            images.append(_data_url(data, declared, f"{name}[{i}]" if name == "image" else name))
    for name in ("images", "image", "image[]"):
        value = fields.get(name)
        if value is None or value == "" or name in files:
            continue
        for i, ref in enumerate(value if isinstance(value, list) else [value]):
            images.append(_reference(ref, f"{name}[{i}]" if isinstance(value, list) else name))
    if not images:
        raise bad_request("Missing required parameter: 'image'.", "image", "missing_required_parameter")
    if len(images) > MAX_IMAGES:
        raise bad_request(f"Too many images: at most {MAX_IMAGES}.", "image")
    mask: str | None = None
    if files.get("mask"):
        data, declared = files["mask"][0]
        mask = _data_url(data, declared, "mask")
    elif fields.get("mask") not in (None, ""):
        mask = _reference(fields["mask"], "mask")
    if mask is not None and mask.startswith("data:") and not mask.startswith("data:image/png"):
        raise bad_request("The mask must be a PNG image (with an alpha channel).", "mask")
    return images, mask


def _reference(ref: Any, param: str) -> str:
    """A JSON image reference: a URL string or `{image_url}`; `{file_id}` needs file storage the gateway lacks."""
    if isinstance(ref, dict):
        if ref.get("file_id"):
            raise bad_request(
                f"{param}.file_id is not supported (the gateway has no file storage): send the image as a URL, a "
                "data URL or a file upload.",
                f"{param}.file_id",
                "unsupported_parameter",
            )
        url = ref.get("image_url")
        if isinstance(url, dict):
            url = url.get("url")
        ref = url
        param = f"{param}.image_url"
    if not isinstance(ref, str) or not ref:
        raise bad_request(f"Invalid '{param}': expected an image URL or a data URL.", param, "invalid_type")
    if ref.startswith(("https://", "http://")):
        return ref
    if ref.startswith("data:"):
        match = re.fullmatch(r"data:([^;,]*)(?:;[^;,]*)*;base64,(.*)", ref, re.S)
        if match is None:
            raise bad_request(f"Invalid '{param}': expected a base64 data URL (data:image/png;base64,...).", param)
        return _data_url(_b64decode(match.group(2), param), match.group(1), param)
    if _BARE_BASE64.match(ref):
        return _data_url(_b64decode(ref, param), None, param)
    raise bad_request(f"Invalid '{param}': expected an http(s) URL or a base64 data URL.", param)


def _b64decode(text: str, param: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if "-" in text or "_" in text else None)
    except (binascii.Error, ValueError):
        raise bad_request(f"Invalid '{param}': the base64 data does not decode.", param) from None


def _data_url(data: bytes, declared: str | None, param: str) -> str:
    """Image bytes → a standard base64 data URL; the type is sniffed (uploads are often application/octet-stream)."""
    if not data:
        raise bad_request(f"Invalid '{param}': the image is empty.", param)
    if len(data) > MAX_IMAGE_BYTES:
        raise bad_request(f"Invalid '{param}': images are limited to {MAX_IMAGE_BYTES // (1024 * 1024)} MB.", param)
    mime = _sniff(data)
    if mime is None:
        kind = f" ({declared})" if declared and declared != "application/octet-stream" else ""
        raise bad_request(
            f"Invalid image file '{param}'{kind}: supported formats are PNG, JPEG and WebP.",
            param,
            "invalid_image_format",
        )
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _sniff(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
