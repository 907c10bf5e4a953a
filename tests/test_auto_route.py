"""`model: auto` through a real gateway: predictive picks, cascades call and check, every call is recorded."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import GatewayProcess, provider, request

GatewayFactory = Callable[..., GatewayProcess]
CHEAP = ["gemini-1.5-flash", "deepseek-v2.5-0908", "gpt-4o-mini-2024-07-18"]
STRONG = "claude-3-5-sonnet-20241022"
MATH: Any = [{"role": "user", "content": "What is 6 * 7? Reason, then give the final answer as JSON."}]


def config(sim: Simulator, route: dict[str, Any], **extra: Any) -> dict[str, Any]:
    models: dict[str, Any] = {
        name: {
            "deployments": [
                {"provider": "sim", "model": name, "price": {"input": 1.0 + i, "output": 2.0 + i}}
            ]
        }
        for i, name in enumerate([*CHEAP, STRONG])
    }
    models["auto"] = {"route": route}
    return {"providers": {"sim": provider(sim.url)}, "models": models, **extra}


def upstream_models(sim: Simulator) -> list[str]:
    return [r["body"]["model"] for r in sim.requests()]


def test_predictive_picks_by_target_and_records_its_decision(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(
        config(fresh_sim, {"strategy": "predictive", "candidates": [*CHEAP, STRONG], "target": 0.5})
    )
    c = client(gw)
    picks = {}
    traces = {}
    for q in ("0.0", "1.0"):
        raw = c.chat.completions.with_raw_response.create(
            model="auto", messages=MATH, extra_headers={"x-llmswitch-min-quality": q}
        )
        assert raw.parse().choices[0].message.content
        assert "strategy=predictive" in raw.headers["x-llmswitch-route"]
        picks[q] = upstream_models(fresh_sim)[-1]
        [row] = gw.rows_for(raw.headers["x-llmswitch-request-id"])
        assert row["requested_model"] == "auto" and row["upstream_model"] == picks[q]
        trace = json.loads(row["route"])
        assert set(trace["predicted"]) >= set(CHEAP) and trace["model"] == picks[q]
        traces[q] = trace
    # No bar at all: the cheapest candidate; an unreachable bar: the one predicted strongest.
    costs, predicted = traces["0.0"]["est_cost_usd"], traces["1.0"]["predicted"]
    assert picks["0.0"] == min(costs, key=costs.get)
    assert predicted[picks["1.0"]] == max(predicted.values())  # (the trace rounds: ties are possible)
    stream = c.chat.completions.create(model="auto", messages=MATH, stream=True)
    assert "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    status, _, body = request(
        "POST",
        f"{gw.url}/v1/chat/completions",
        json.dumps({"model": "auto", "messages": MATH}).encode(),
        {"x-llmswitch-min-quality": "2"},
    )
    assert status == 400 and json.loads(body)["error"]["code"] == "invalid_header"
    metrics = request("GET", f"{gw.url}/metrics")[2].decode()
    assert 'llmswitch_requests_total{model="auto",status="200",surface="openai"} 3.0' in metrics


CASCADE = {
    "strategy": "cascade",
    "candidates": [*CHEAP[:2], STRONG],
    "cascade": {"check": "agreement", "order": CHEAP[:2], "strong": STRONG, "first_batch": 2, "max_cheap": 2},
}


@pytest.mark.parametrize("stream", [False, True])
def test_cascade_accepts_agreeing_cheap_answers(
    fresh_sim: Simulator, start_gateway: GatewayFactory, stream: bool
) -> None:
    gw = start_gateway(config(fresh_sim, CASCADE))
    for name in CHEAP[:2]:
        fresh_sim.enqueue(
            name,
            {
                "content": '6 times 7. {"answer": 42}',
                "usage": {"prompt_tokens": 100, "completion_tokens": 10},
            },
        )
    raw = client(gw).chat.completions.with_raw_response.create(model="auto", messages=MATH, stream=stream)
    if stream:
        text = "".join(ch.choices[0].delta.content or "" for ch in raw.parse() if ch.choices)
    else:
        text = raw.parse().choices[0].message.content or ""
    assert text == '6 times 7. {"answer": 42}'
    assert sorted(upstream_models(fresh_sim)) == sorted(CHEAP[:2])  # the strong model was never called
    rows = gw.rows_for(raw.headers["x-llmswitch-request-id"], at_least=2)
    assert [r["attempt"] for r in rows] == [1, 2] and {r["status"] for r in rows} == {"ok"}
    assert "calls=" in raw.headers["x-llmswitch-route"]


def test_cascade_escalates_on_disagreement(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    gw = start_gateway(config(fresh_sim, CASCADE))
    fresh_sim.enqueue(CHEAP[0], {"content": '{"answer": 41}'})
    fresh_sim.enqueue(CHEAP[1], {"content": '{"answer": 43}'})
    fresh_sim.enqueue(STRONG, {"content": '{"answer": 42}'})
    raw = client(gw).chat.completions.with_raw_response.create(model="auto", messages=MATH)
    assert raw.parse().choices[0].message.content == '{"answer": 42}'
    assert upstream_models(fresh_sim)[-1] == STRONG
    rows = gw.rows_for(raw.headers["x-llmswitch-request-id"], at_least=3)
    assert len(rows) == 3
    # The client pays for every call the cascade made, and the header says so.
    assert float(raw.headers["x-llmswitch-cost-usd"]) == pytest.approx(sum(r["cost_usd"] or 0 for r in rows))


def test_feedback_and_training_from_the_ledger(
    fresh_sim: Simulator, start_gateway: GatewayFactory, tmp_path: Path
) -> None:
    gw = start_gateway(
        config(
            fresh_sim, {"strategy": "predictive", "candidates": [*CHEAP, STRONG]}, logging={"bodies": True}
        )
    )
    c = client(gw)
    for i in range(12):
        model = CHEAP[0] if i % 2 else STRONG
        raw = c.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": f"question {i} " + "word " * i}]
        )
        status, _, body = request(
            "POST",
            f"{gw.url}/v1/feedback",
            json.dumps(
                {
                    "request_id": raw.headers["x-llmswitch-request-id"],
                    "score": 1.0 if model == STRONG else 0.25,
                }
            ).encode(),
        )
        assert status == 200 and json.loads(body)["ok"] is True
    for bad in (b'{"request_id": "x", "score": 3}', b'{"score": 1}', b"nope"):
        assert request("POST", f"{gw.url}/v1/feedback", bad)[0] == 400
    gw.stop()
    con = sqlite3.connect(gw.db_path)
    assert con.execute("SELECT COUNT(*), MIN(score), MAX(score) FROM feedback").fetchone() == (12, 0.25, 1.0)
    out = tmp_path / "mine.npz"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "llmswitch",
            "router",
            "train",
            "--from-ledger",
            "--config",
            str(gw.config_path),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=gw.workdir,
    )
    assert result.returncode == 0, result.stderr
    assert "12 scored answers" in result.stderr and out.exists()
