"""A capture made now holds the metadata keys (and value types) the gateway saved before the flow record: the same
requests as tests/fixtures/saved_flows/pre_record.flows, recorded again through a real mitmdump, compared flow by
flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codex_gateway.flow_record import META
from mitmproxy import http
from mitmproxy import io

from tests.fixtures.saved_flows import record

FIXTURE = Path(record.__file__).with_name("pre_record.flows")
# Keys declared since the fixture was made (each with its value's type): added to a saved flow, never in place of one.
# `client_status` of a flow that ended in an error: what its client got (a streamed 200, mitmproxy's 502);
# `endpoint` of a request refused before routing (a wrong key or method): the one its path names.
ADDED_SINCE: dict[str, type] = {"model_served": str, "client_status": int, "endpoint": str}


def _flows(path: Path) -> list[http.HTTPFlow]:
    with path.open("rb") as f:
        return [fl for fl in io.FlowReader(f).stream() if isinstance(fl, http.HTTPFlow)]


def _shape(doc: dict[str, Any]) -> dict[str, Any]:
    """Each key with the type of its value; the nested objects of the record key by key."""
    return {
        key: _shape(value) if key in ("original_request", "images") and isinstance(value, dict) else type(value)
        for key, value in doc.items()
    }


def test_a_capture_made_now_has_the_keys_of_one_made_before_the_flow_record(tmp_path: Path) -> None:
    out = tmp_path / "now.flows"
    record.record(out)
    before, now = _flows(FIXTURE), _flows(out)
    assert [f.request.path for f in now] == [f.request.path for f in before]
    for old, new in zip(before, now, strict=True):
        shape, old_shape = _shape(new.metadata[META]), _shape(old.metadata[META])
        added = {key: shape.pop(key) for key in ADDED_SINCE if key in shape and key not in old_shape}
        assert shape == old_shape, old.request.path
        assert added.items() <= ADDED_SINCE.items(), old.request.path
        assert type(new.metadata[META]) is dict
