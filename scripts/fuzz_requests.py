"""The request fuzz of tests/test_request_fuzz.py with many more examples (not run in CI).

    .venv/bin/python scripts/fuzz_requests.py                  # 5,000 examples per property
    .venv/bin/python scripts/fuzz_requests.py --examples 50000 --seed 1
    .venv/bin/python scripts/fuzz_requests.py --only valid,pairing,backend

Properties: valid requests translate into bodies the fake backend accepts; a request with one field broken is a
400 naming that field. Each failure is printed with hypothesis' minimal example; the exit code is the number of
failed properties. Known bugs (the xfail tests in that file) are excluded from the strategies there, so anything
reported here is new.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "addons"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from hypothesis import HealthCheck  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402
from hypothesis import settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests import test_request_fuzz as fuzz  # noqa: E402


def _valid(body: dict[str, Any]) -> None:
    assert fuzz.validate_responses_body(fuzz.translate_ok(body)) is None


def _pairing_kept(body: dict[str, Any]) -> None:
    fuzz.check_calls_forwarded(body)


PROPERTIES: dict[str, tuple[st.SearchStrategy[Any], Callable[[Any], None]]] = {
    "valid": (fuzz.chat_requests(), _valid),
    "calls": (fuzz.chat_requests(), _pairing_kept),
    "types": (fuzz.mutated_requests(("wrong_top_level_type", "wrong_nested_type")), fuzz.check_mutation),
    "missing": (fuzz.mutated_requests(("missing_required",)), fuzz.check_mutation),
    "tags": (fuzz.mutated_requests(("unknown_tag",)), fuzz.check_mutation),
    "pairing": (fuzz.mutated_requests(("broken_tool_pairing",)), fuzz.check_mutation),
    "huge": (fuzz.mutated_requests(("huge_string",)), fuzz.check_mutation),
    "bytes": (fuzz.mutated_requests(("broken_bytes",)), fuzz.check_mutation),
    "backend": (fuzz.mutated_requests(("backend_rule",)), fuzz.check_mutation),
}


def run_property(name: str, examples: int, seed: int | None) -> bool:
    strategy, check = PROPERTIES[name]
    examples_for = examples // 10 if name == "huge" else examples  # 300 kB strings: slower per example

    @settings(
        max_examples=max(1, examples_for),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(strategy)
    def prop(value: Any) -> None:
        check(value)

    if seed is not None:
        prop = hypothesis_seed(seed)(prop)
    started = time.monotonic()
    try:
        prop()
    except Exception:
        print(f"FAIL {name} after {time.monotonic() - started:.1f} s", flush=True)
        traceback.print_exc()
        return False
    print(f"ok   {name}: {examples_for} examples in {time.monotonic() - started:.1f} s", flush=True)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--examples", type=int, default=5000, help="examples per property (default 5000)")
    parser.add_argument("--seed", type=int, help="fixed hypothesis seed (default: random)")
    parser.add_argument("--only", help=f"comma-separated subset of: {','.join(PROPERTIES)}")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(PROPERTIES)
    unknown = [n for n in names if n not in PROPERTIES]
    if unknown:
        parser.error(f"unknown properties: {', '.join(unknown)}")
    failed = [name for name in names if not run_property(name, args.examples, args.seed)]
    summary = f"{len(names) - len(failed)}/{len(names)} properties held"
    print(summary + (f"; failed: {', '.join(failed)}" if failed else ""))
    return len(failed)


if __name__ == "__main__":
    sys.exit(main())
