"""What an images request asked for, as `request.prepare_*` decided it and `answer` needs it (pure).

It is kept in the flow record (`flow_record.FlowRecord.images`) and saved with the flow as the JSON object under
`images`, with the keys it had as a plain dict: `endpoint`, `model`, `orchestrator`, `stream`, `prompt_chars`,
`images`, `mask`, `size`, `quality`, `background`, `output_format`, `dropped`, `session_id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

__all__ = ["ImageJob"]

GENERATIONS = "images.generations"
EDITS = "images.edits"


@dataclass(slots=True)
class ImageJob:
    edit: bool  # /v1/images/edits, else /v1/images/generations
    orchestrator: str  # the model that calls the image_generation tool
    session_id: str
    model: str | None = None  # the GPT Image model the client named
    prompt_chars: int = 0
    images: int = 0  # input images (edits)
    mask: bool = False
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str = "png"
    dropped: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return EDITS if self.edit else GENERATIONS

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "model": self.model,
            "orchestrator": self.orchestrator,
            "stream": False,  # images are always answered whole
            "prompt_chars": self.prompt_chars,
            "images": self.images,
            "mask": self.mask,
            "size": self.size,
            "quality": self.quality,
            "background": self.background,
            "output_format": self.output_format,
            "dropped": list(self.dropped),
            "session_id": self.session_id,
        }

    @classmethod
    def from_json(cls, doc: Any) -> ImageJob | None:
        """The job saved with a flow; None if `doc` is not one (a saved flow may hold anything)."""
        if not isinstance(doc, dict):
            return None
        return cls(
            edit=doc.get("endpoint") == EDITS,
            orchestrator=_text(doc.get("orchestrator")) or "",
            session_id=_text(doc.get("session_id")) or "",
            model=_text(doc.get("model")),
            prompt_chars=_count(doc.get("prompt_chars")),
            images=_count(doc.get("images")),
            mask=doc.get("mask") is True,
            size=_text(doc.get("size")),
            quality=_text(doc.get("quality")),
            background=_text(doc.get("background")),
            output_format=_text(doc.get("output_format")) or "png",
            dropped=_texts(doc.get("dropped")),
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _texts(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
