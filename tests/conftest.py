from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from llmswitch.testing.simulator import Simulator
from tests.harness import GatewayProcess


@pytest.fixture(scope="session")
def sim() -> Iterator[Simulator]:
    s = Simulator().start()
    yield s
    s.stop()


@pytest.fixture
def fresh_sim(sim: Simulator) -> Simulator:
    sim.reset()
    return sim


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    started: list[GatewayProcess] = []

    def start(
        config: dict[str, Any], env: dict[str, str] | None = None, args: list[str] | None = None
    ) -> GatewayProcess:
        workdir = tmp_path / f"gw{len(started)}"
        workdir.mkdir()
        gw = GatewayProcess(config, workdir, env, args).start()
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


def client(gw: GatewayProcess, key: str = "sk-client", **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0, **kw)


def async_client(gw: GatewayProcess, key: str = "sk-client", **kw: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0, **kw)
