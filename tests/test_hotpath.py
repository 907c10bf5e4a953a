"""bench/hotpath.py: the request path in one process. Its figures are printed, not asserted (they are
measurements); what is asserted is what a long-running gateway relies on: no request leaves objects to
the cyclic garbage collector, whose collections are pauses (they were ~5 % of the CPU and up to 1.9 ms
each when the fast path and the stream relay left reference cycles behind)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("pure", [False, True], ids=["default", "pure-python"])
def test_no_request_leaves_objects_to_the_garbage_collector(pure: bool) -> None:
    env = {**os.environ, "LLMSWITCH_PURE_PYTHON": "1" if pure else "0"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "hotpath.py"), "--requests", "300", "--json"],
        capture_output=True,
        check=True,
        env=env,
        timeout=300,
    ).stdout
    results = {r["mode"]: r for r in json.loads(out)}
    assert set(results) == {"json", "stream"}
    for r in results.values():
        print(r["mode"], r["request_path"], r["python_opcodes_per_request"], r["cpu_us_per_request"])
        assert r["requests"] == 300
        assert r["gc_objects_per_request"] == 0, r["gc_objects_by_type"]
        if pure:  # everything interpreted is traced: the count covers the whole path
            assert r["request_path"].startswith("pure Python")
            assert r["python_opcodes_per_request"] > 500
