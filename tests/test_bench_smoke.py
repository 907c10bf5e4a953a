"""The benchmark harness works: a --quick run yields every cell, and llmswitch answers all of it.

Not timed: figures on a CI machine are noise. Skips only when wrk/nginx are missing and cannot be installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP = 77  # bench.py's exit code when wrk/nginx cannot be installed (not root, no apt-get)


@pytest.mark.timeout(600)
def test_bench_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [sys.executable, str(ROOT / "bench/bench.py"), "--quick", "--targets", "direct,floor,llmswitch"]
    proc = subprocess.run(
        [*cmd, "--duration", "1", "--out", str(out)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if proc.returncode == SKIP:
        pytest.skip(proc.stdout.strip())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    result = json.loads(out.read_text())
    cells = {(x["target"], x["mode"], x["c"]): x for x in result["cells"]}
    targets, modes = ("direct", "floor", "llmswitch"), ("json", "stream")
    expected = {(t, m, c) for t in targets for m in modes for c in (1, 16)}
    assert set(cells) == expected
    for key, cell in cells.items():
        assert cell["rps"] > 0, key
        assert cell["added_p50_ms"] is not None and cell["vs_floor"]["rps"] is not None, key
    for mode in ("json", "stream"):
        for c in (1, 16):
            assert cells["llmswitch", mode, c]["errors"] == 0, cells["llmswitch", mode, c]
    probes = {t["target"]: t for t in result["ttfb"]}
    assert probes["llmswitch"]["samples"] > 0 and probes["llmswitch"]["errors"] == 0
    rss = result["rss_mb"]["llmswitch"]
    assert rss["idle"] > 0 and rss["load"] >= rss["idle"] * 0.5
    assert "TTFB" in proc.stdout and "llmswitch" in proc.stdout
