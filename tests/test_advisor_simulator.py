"""`llmswitch advise` against the upstream simulator: traffic logged on both surfaces, JSON-mode checks,
a candidate that always fails, and a scripted judge."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import pytest
import yaml

from llmswitch.advisor.cli import main as advise_main
from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import GatewayProcess, provider

GatewayFactory = Callable[..., GatewayProcess]


def config(sim: Simulator) -> dict[str, Any]:
    price = {"input": 1.0, "output": 2.0}
    models = {"base": "sim-large", "cand": "sim-small", "broken": "x@500", "judge": "judge-up"}
    return {
        "providers": {"p": provider(sim.url)},
        "models": {
            name: {"deployments": [{"provider": "p", "model": up, "price": price}]}
            for name, up in models.items()
        },
        "routing": {"max_attempts": 1},
        "logging": {"bodies": True},
    }


def test_advise_against_the_simulator(
    fresh_sim: Simulator, start_gateway: GatewayFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = start_gateway(config(fresh_sim))
    c = client(gw)
    for i in range(4):
        c.chat.completions.create(model="base", messages=[{"role": "user", "content": f"Tell me about {i}"}])
    for i in range(2):
        c.chat.completions.create(
            model="base",
            messages=[{"role": "user", "content": f"Give me a JSON object with the number {i}"}],
            response_format={"type": "json_object"},
        )
    c.chat.completions.create(  # not replayable: tools
        model="base",
        messages=[{"role": "user", "content": "what's the weather"}],
        tools=[{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
    )
    c.chat.completions.create(model="cand", messages=[{"role": "user", "content": "to another model"}])
    claude = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
    for i in range(2):
        claude.messages.create(
            model="base", max_tokens=50, system="Be brief.", messages=[{"role": "user", "content": f"Hi {i}"}]
        )
    gw.stop()

    path = tmp_path / "advise.yaml"
    path.write_text(yaml.safe_dump({**config(fresh_sim), "storage": {"url": f"sqlite:///{gw.db_path}"}}))
    fresh_sim.reset()
    fresh_sim.enqueue("judge-up", *[{"content": "Both say hello.\nVERDICT: TIE"}] * 16)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = advise_main([
            "--config", str(path), "--since", "1h", "--baseline", "base", "--candidates", "cand,broken",
            "--judge", "judge", "--sample", "20", "--json", "--quiet", "--out", "report.html",
        ])  # fmt: skip
    assert rc == 0
    s = json.loads(out.getvalue())
    run = s["run"]
    assert run["traffic"] == "8 requests to base" and run["skipped"] == {"tools": 1}
    assert run["completed"] == 8 and run["categories"]
    cand, broken = s["candidates"]
    assert cand["n"] == 8 and cand["rates"]["tie"]["value"] == 1.0 and cand["decided_by"] == {"judge": 8}
    assert cand["checks"]["json_valid"] == {"rate": 1.0, "n": 2}  # the simulator answers JSON mode in JSON
    assert broken["decided_by"] == {"candidate error": 8} and broken["rates"]["loss"]["value"] == 1.0
    assert broken["verdict"].startswith("broken: not worse on 0 % ± 0 %")
    assert s["baseline"]["cost_per_1k"] > 0 and cand["cost_per_1k"] > 0 and s["judge"]["asks"] == 16
    bodies = [r["body"] for r in fresh_sim.requests()]
    assert sum(b["model"] == "judge-up" for b in bodies) == 16
    replayed = [b for b in bodies if b["model"] == "sim-large"]
    assert len(replayed) == 8 and all(b["stream"] is True for b in replayed)
    from_claude = [b for b in replayed if b["messages"][0] == {"role": "system", "content": "Be brief."}]
    assert len(from_claude) == 2
    html = (tmp_path / "report.html").read_text()
    assert "broken" in html and "candidate error" in html
