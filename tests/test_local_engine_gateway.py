"""A local open-weight model behind the gateway, and what self-hosted requests cost."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmswitch.engines.tiny_gguf import write_tiny_gguf
from llmswitch.testing.simulator import Simulator
from tests.conftest import async_client, client
from tests.harness import GatewayProcess, provider

GatewayFactory = Callable[..., GatewayProcess]
RATE = 3.6  # USD per GPU-hour: 0.001 USD per GPU-second, easy to check by hand


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def test_gateway_starts_and_serves_a_local_engine(start_gateway: GatewayFactory, tiny: Path) -> None:
    gw = start_gateway(
        {
            "providers": {"local": {"engine": {"kind": "llama.cpp", "gguf": str(tiny)}}},
            "models": {
                "tiny": {
                    "deployments": [
                        {
                            "provider": "local",
                            "model": "tiny",
                            "self_hosted": {"gpu_hour_usd": RATE, "gpus": 1},
                        }
                    ]
                }
            },
        }
    )
    c = client(gw)
    raw = c.chat.completions.with_raw_response.create(
        model="tiny", max_tokens=8, messages=[{"role": "user", "content": "hello"}]
    )
    completion = raw.parse()
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert raw.headers["x-llmswitch-provider"] == "local"
    chunks = list(
        c.chat.completions.create(
            model="tiny", max_tokens=8, stream=True, messages=[{"role": "user", "content": "hi"}]
        )
    )
    assert chunks and chunks[-1].choices[0].finish_reason in ("length", "stop")
    rows = gw.ledger(at_least=2)
    for row in rows:  # a lone request occupies the deployment for its whole latency
        assert row["cost_usd"] == pytest.approx(row["latency_ms"] / 1000 * RATE / 3600, rel=0.2)
        assert row["output_tokens"] > 0


def test_self_hosted_requests_share_the_busy_time(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {
            "providers": {"gpu": provider(fresh_sim.url)},
            "models": {
                "m": {
                    "deployments": [
                        {
                            "provider": "gpu",
                            "model": "m@slow0.4",
                            "self_hosted": {"gpu_hour_usd": RATE, "gpus": 2},
                        }
                    ]
                }
            },
        }
    )

    async def burst() -> None:
        ac = async_client(gw)
        await asyncio.gather(
            *[
                ac.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
                for _ in range(4)
            ]
        )
        await ac.close()

    asyncio.run(burst())  # warms the window: four requests overlapped, concurrency ≈ 4
    asyncio.run(burst())
    rows = gw.ledger(at_least=8)[4:]
    usd_per_second = RATE * 2 / 3600
    latency = sum(r["latency_ms"] for r in rows) / 1000
    cost = sum(r["cost_usd"] for r in rows)
    # Four overlapping 0.4 s requests held the two GPUs for ~0.4 s, not 1.6 s: each pays about a quarter.
    assert latency * usd_per_second / 5 < cost < latency * usd_per_second / 2


def test_prices_shows_a_self_hosted_deployments_effective_price(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        {
            "providers": {"gpu": provider(fresh_sim.url, region="local")},
            "models": {
                "my-qwen": {
                    "deployments": [
                        {
                            "provider": "gpu",
                            "model": "qwen-local@slow0.2",
                            "self_hosted": {"gpu_hour_usd": RATE, "gpus": 1},
                        }
                    ]
                }
            },
        }
    )
    fresh_sim.enqueue("qwen-local@slow0.2", {"usage": {"prompt_tokens": 1000, "completion_tokens": 1000}})
    client(gw).chat.completions.create(model="my-qwen", messages=[{"role": "user", "content": "x"}])
    gw.stop()
    [row] = gw.ledger()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmswitch",
            "prices",
            "--config",
            str(gw.config_path),
            "--json",
            "--models",
            "gpt-4.1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=gw.workdir,
    )
    assert out.returncode == 0, out.stderr
    data: Any = json.loads(out.stdout)
    rows = data["rows"] if isinstance(data, dict) else data
    [mine] = [r for r in rows if r["model"] == "my-qwen"]
    assert mine["kind"] == "self-hosted"
    assert mine["input_per_mtok"] == pytest.approx(row["cost_usd"] / 2000 * 1e6, rel=1e-6)


@pytest.mark.slow
def test_serve_without_config_runs_the_local_open_weight_model(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    gw = GatewayProcess(None, tmp_path, env).start(timeout=60)
    try:
        c = client(gw)
        assert [m.id for m in c.models.list()] == ["smollm2"]
        answer = c.chat.completions.create(
            model="smollm2",
            max_tokens=20,
            messages=[{"role": "user", "content": "What is the capital of France?"}],
        )
        assert "Paris" in (answer.choices[0].message.content or "")
    finally:
        gw.stop()
    assert (tmp_path / "llmswitch.db").exists()
