"""The ledger as a gateway user sees it: nothing lost on shutdown, and `llmswitch usage` adds it up."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from llmswitch.testing.simulator import Simulator
from tests.conftest import async_client, client
from tests.harness import GatewayProcess, provider, request

GatewayFactory = Callable[..., GatewayProcess]


def config(sim: Simulator) -> dict[str, Any]:
    return {
        "providers": {"cn": provider(sim.url), "us": provider(sim.url)},
        "models": {
            "kimi-k2": {
                "deployments": [
                    {
                        "provider": "cn",
                        "model": "kimi-k2-0905-preview",
                        "price": {"input": 0.6, "output": 2.5},
                    }
                ]
            },
            "gpt-4.1": {
                "deployments": [
                    {"provider": "us", "model": "gpt-4.1", "price": {"input": 2.0, "output": 8.0}}
                ]
            },
        },
        # A long flush interval: rows sit in memory until shutdown forces them out.
        "ledger": {"flush_interval": 60, "batch_rows": 100000},
    }


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_flushes_every_pending_row(
    fresh_sim: Simulator, start_gateway: GatewayFactory, sig: int
) -> None:
    gw = start_gateway(config(fresh_sim))

    async def burst() -> None:
        ac = async_client(gw)
        await asyncio.gather(
            *[
                ac.chat.completions.create(model="kimi-k2", messages=[{"role": "user", "content": f"n{i}"}])
                for i in range(200)
            ]
        )
        await ac.close()

    asyncio.run(burst())
    assert gw.ledger() == []  # still pending: proves the flush below is the shutdown's doing
    assert gw.stop(sig) == 0
    rows = gw.ledger()
    assert len(rows) == 200 and {r["status"] for r in rows} == {"ok"}
    assert "ledger flushed" in gw.log()


def test_shutdown_lets_an_in_flight_stream_finish(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(config(fresh_sim))
    fresh_sim.enqueue("gpt-4.1", {"content": "a b c d e", "chunk_delay": 0.2})
    stream = client(gw).chat.completions.create(
        model="gpt-4.1", stream=True, messages=[{"role": "user", "content": "x"}]
    )
    first = next(iter(stream))
    assert gw.proc is not None
    gw.proc.send_signal(signal.SIGTERM)
    text = (first.choices[0].delta.content or "") + "".join(
        c.choices[0].delta.content or "" for c in stream if c.choices
    )
    assert text == "a b c d e"
    assert gw.stop() == 0
    [row] = gw.ledger()
    assert row["status"] == "ok"


def test_usage_command_reports_spend_by_model_provider_and_tag(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(config(fresh_sim))
    c = client(gw)
    for _ in range(3):
        fresh_sim.enqueue(
            "kimi-k2-0905-preview", {"usage": {"prompt_tokens": 1000, "completion_tokens": 100}}
        )
        c.chat.completions.create(
            model="kimi-k2",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-llmswitch-tags": "team=search"},
        )
    fresh_sim.enqueue("gpt-4.1", {"usage": {"prompt_tokens": 500, "completion_tokens": 50}})
    c.chat.completions.create(
        model="gpt-4.1",
        messages=[{"role": "user", "content": "x"}],
        extra_headers={"x-llmswitch-tags": "team=ads"},
    )
    gw.stop()

    def usage(*args: str) -> Any:
        out = subprocess.run(
            [sys.executable, "-m", "llmswitch", "usage", "--config", str(gw.config_path), *args],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=gw.workdir,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    report = json.loads(usage("--json", "--since", "1d"))
    by_model = {r["model"]: r for r in report["rows"]}
    assert report["total"]["requests"] == 4
    assert by_model["kimi-k2"]["requests"] == 3 and by_model["kimi-k2"]["input_tokens"] == 3000
    assert by_model["kimi-k2"]["cost_usd"] == pytest.approx(3 * (1000 * 0.6 + 100 * 2.5) / 1e6)
    assert by_model["gpt-4.1"]["cost_usd"] == pytest.approx((500 * 2.0 + 50 * 8.0) / 1e6)
    assert by_model["gpt-4.1"]["error_rate"] == 0
    assert by_model["gpt-4.1"]["p50_latency_ms"] > 0
    by_provider = {r["provider"]: r for r in json.loads(usage("--json", "--by", "provider"))["rows"]}
    assert set(by_provider) == {"cn", "us"}
    by_tag = {r["tag"]: r for r in json.loads(usage("--json", "--by", "tag"))["rows"]}
    assert by_tag["team=search"]["requests"] == 3 and by_tag["team=ads"]["requests"] == 1
    table = usage()
    assert "kimi-k2" in table and "gpt-4.1" in table and "TOTAL" in table


def worker_pids(gw: GatewayProcess) -> list[int]:
    assert gw.proc is not None
    out = subprocess.run(["pgrep", "-P", str(gw.proc.pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def start_two_workers(sim: Simulator, start_gateway: GatewayFactory) -> tuple[GatewayProcess, list[int]]:
    cfg = config(sim)
    cfg["ledger"] = {"flush_interval": 0.05}
    gw = start_gateway(cfg, args=["--workers", "2"])
    workers = worker_pids(gw)
    assert len(workers) == 2
    return gw, workers


def test_workers_share_the_port_restart_on_crash_and_all_flush(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    import os
    import time

    gw, workers = start_two_workers(fresh_sim, start_gateway)

    async def burst(n: int) -> None:
        ac = async_client(gw)
        await asyncio.gather(
            *[
                ac.chat.completions.create(model="kimi-k2", messages=[{"role": "user", "content": f"n{i}"}])
                for i in range(n)
            ]
        )
        await ac.close()

    asyncio.run(burst(100))
    assert len(gw.ledger(at_least=100)) == 100  # flushed before the crash below
    time.sleep(1.5)  # and each worker has published its metrics since
    os.kill(workers[0], signal.SIGKILL)  # the supervisor must replace it
    for _ in range(100):
        now = worker_pids(gw)
        if len(now) == 2 and workers[0] not in now:
            break
        time.sleep(0.1)
    assert len(now) == 2 and workers[0] not in now
    asyncio.run(burst(50))
    # Whichever worker answers, /metrics counts every worker's requests, the crashed one's included
    # (other workers' counts are at most a second old: each publishes once a second).
    time.sleep(1.5)
    for _ in range(3):
        metrics = request("GET", f"{gw.url}/metrics")[2].decode()
        lines = [x for x in metrics.splitlines() if x.startswith("llmswitch_requests_total")]
        assert lines == ['llmswitch_requests_total{model="kimi-k2",status="200",surface="openai"} 150.0']
    assert gw.stop() == 0
    rows = gw.ledger()
    assert len(rows) == 150 and {r["status"] for r in rows} == {"ok"}
    assert "restarting" in gw.log()
    # Tokens and cost in /metrics add up, over every worker, to what the ledger holds.
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(("llmswitch_tokens_total", "llmswitch_cost_usd_total"))
    }
    series = '{kind="%s",model="kimi-k2",provider="cn"}'
    assert values["llmswitch_tokens_total" + series % "input"] == sum(r["input_tokens"] for r in rows)
    assert values["llmswitch_tokens_total" + series % "output"] == sum(r["output_tokens"] for r in rows)
    assert values['llmswitch_cost_usd_total{model="kimi-k2",provider="cn"}'] == pytest.approx(
        sum(r["cost_usd"] for r in rows)
    )


def test_workers_stop_when_the_supervisor_that_records_their_rows_is_gone(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    """With `--workers N` the supervisor writes the ledger. Orphaned workers could answer but no longer
    record, so each stops by itself (within a flush interval) instead of serving unrecorded traffic."""
    import os
    import time

    gw, workers = start_two_workers(fresh_sim, start_gateway)
    c = client(gw)
    c.chat.completions.create(model="kimi-k2", messages=[{"role": "user", "content": "hi"}])
    assert len(gw.ledger(at_least=1)) == 1
    os.kill(gw.proc.pid, signal.SIGKILL)
    gw.proc.wait()

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in workers)
    assert gw.log().count("the supervisor's ledger is gone (") == 2  # each worker says why it stops


def test_workers_never_hand_out_the_same_request_id(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw, _ = start_two_workers(fresh_sim, start_gateway)
    ids: list[str] = []
    while len(ids) < 100 and len({i[:20] for i in ids}) < 2:  # until both workers have answered
        with client(gw) as c:  # a new connection each time
            raw = c.chat.completions.with_raw_response.create(
                model="kimi-k2", messages=[{"role": "user", "content": f"n{len(ids)}"}]
            )
            ids.append(raw.headers["x-llmswitch-request-id"])
    assert len({i[:20] for i in ids}) == 2  # one id prefix per worker, drawn after the fork
    assert len(set(ids)) == len(ids)
    rows = gw.ledger(at_least=len(ids))
    assert sorted(r["request_id"] for r in rows) == sorted(ids)
