"""Rankings and the dashboard, through a real gateway: traffic sent with the openai SDK to simulated
providers, then `/dashboard.json`, `/dashboard` and `llmswitch rankings` read back from the ledger."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import UPSTREAM_KEY, GatewayProcess, provider, request

GatewayFactory = Callable[..., GatewayProcess]

ADMIN, MEMBER = "sk-admin-7c41d09e", "sk-member-52be8a11"
USAGE = {"prompt_tokens": 1_000, "completion_tokens": 200}
CODE = "Write a Python function that reverses a linked list.\n```python\ndef reverse(head):\n    pass\n```"
MATH = "Solve for x: 3x + 7 = 22. How many apples are left if I eat 4 of 12? Show the equation."
# (model sent, upstream id, prompt, requests)
TRAFFIC = [
    ("deepseek-v3", "deepseek-chat", CODE, 3),
    ("gpt-4.1", "gpt-4.1", MATH, 1),
    ("mine", "my-ft-v7", CODE, 1),
]


@pytest.fixture
def gw(fresh_sim: Simulator, start_gateway: GatewayFactory) -> GatewayProcess:
    cfg: dict[str, Any] = {
        "auth": {"keys": [{"id": "ops", "key": ADMIN, "admin": True}, {"id": "team", "key": MEMBER}]},
        "logging": {"bodies": True},
        "providers": {
            "deepseek": provider(fresh_sim.url, pricing_provider="deepseek"),
            "openai": provider(fresh_sim.url, pricing_provider="openai"),
            "gpu": provider(fresh_sim.url),
        },
        "models": {
            "deepseek-v3": {"deployments": [{"provider": "deepseek", "model": "deepseek-chat"}]},
            "gpt-4.1": {"deployments": [{"provider": "openai", "model": "gpt-4.1"}]},
            "mine": {
                "deployments": [{"provider": "gpu", "model": "my-ft-v7", "self_hosted": {"gpu_hour_usd": 2}}]
            },
        },
    }
    gw = start_gateway(cfg)
    c = client(gw, MEMBER)
    for model, upstream, prompt, n in TRAFFIC:
        for _ in range(n):
            fresh_sim.enqueue(upstream, {"usage": USAGE})
            c.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
    gw.ledger(at_least=5)
    wait_for_bodies(gw, 5)
    return gw


def wait_for_bodies(gw: GatewayProcess, n: int, timeout: float = 5.0) -> None:
    """Prompts are logged by their own background writer, after the ledger rows."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        con = sqlite3.connect(f"file:{gw.db_path}?mode=ro", uri=True)
        try:
            if con.execute("SELECT COUNT(*) FROM bodies").fetchone()[0] >= n:
                return
        finally:
            con.close()
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} logged bodies after {timeout} s")


def get(
    gw: GatewayProcess, path: str, key: str | None = ADMIN, basic: bool = False
) -> tuple[int, dict[str, str], bytes]:
    headers = {}
    if key is not None:
        token = base64.b64encode(f"anyone:{key}".encode()).decode()
        headers["Authorization"] = f"Basic {token}" if basic else f"Bearer {key}"
    return request("GET", gw.url + path, headers=headers)


def test_rankings_count_each_model_lab_origin_and_weights(gw: GatewayProcess) -> None:
    status, headers, body = get(gw, "/dashboard.json")
    assert status == 200, body
    assert headers["content-type"].startswith("application/json")
    data = orjson.loads(body)
    rows = gw.ledger(at_least=5)
    assert data["total"]["requests"] == 5
    assert data["total"]["tokens"] == 5 * 1_200
    assert data["total"]["cost_usd"] == pytest.approx(sum(r["cost_usd"] or 0 for r in rows), rel=1e-9)

    [first, *_] = data["models"]
    assert (first["model"], first["tokens"], first["requests"]) == ("deepseek-chat", 3_600, 3)
    assert (first["lab"], first["origin"], first["open_weights"]) == ("DeepSeek", "CN", True)
    assert first["token_share"] == pytest.approx(0.6)
    by = {k: {r["name"]: r["token_share"] for r in data[k]} for k in ("origins", "weights", "hosting")}
    assert by["origins"] == pytest.approx({"CN": 0.6, "US": 0.2, "unknown": 0.2})
    # my-ft-v7 is unknown to the catalog, but it runs on the user's own GPUs: its weights are at hand
    assert by["weights"] == pytest.approx({"open": 0.8, "closed": 0.2})
    assert by["hosting"] == pytest.approx({"API": 0.8, "self-hosted": 0.2})
    assert {p["provider"]: p["requests"] for p in data["providers"]} == {"deepseek": 3, "openai": 1, "gpu": 1}
    [team] = data["keys"]  # all traffic came with the member key: its id, never the key itself
    assert (team["name"], team["requests"], team["tokens"]) == ("team", 5, 6_000)
    assert sum(sum(v) for v in data["series"]["tokens"].values()) == 6_000


def test_savings_are_priced_against_the_baseline_list_price(gw: GatewayProcess) -> None:
    data = orjson.loads(get(gw, "/dashboard.json?since=1d&baseline=gpt-4.1")[2])
    s = data["savings"]
    # gpt-4.1 lists $2.00 in / $8.00 out per million tokens: 5 requests of 1,000 in and 200 out.
    assert s["baseline_cost_usd"] == pytest.approx(5 * (1_000 * 2.00 + 200 * 8.00) / 1e6)
    assert s["saved_usd"] == pytest.approx(s["baseline_cost_usd"] - data["total"]["cost_usd"])
    assert 0 < s["saved_share"] < 1


def test_task_categories_come_from_logged_prompts(gw: GatewayProcess) -> None:
    cats = orjson.loads(get(gw, "/dashboard.json")[2])["categories"]
    assert cats["classified"] == 5
    assert {r["category"]: r["requests"] for r in cats["rows"]} == {"programming": 4, "math": 1}


def test_page_is_html_for_an_admin_with_basic_auth_and_holds_no_secret(gw: GatewayProcess) -> None:
    status, headers, body = get(gw, "/dashboard", basic=True)
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    page = body.decode()
    assert "deepseek-chat" in page and "China (CN)" in page and "<svg" in page
    for secret in (ADMIN, MEMBER, UPSTREAM_KEY):
        assert secret not in page


def test_only_admin_keys_see_the_dashboard(gw: GatewayProcess) -> None:
    status, headers, body = get(gw, "/dashboard", key=None)
    assert status == 401
    assert headers["www-authenticate"].startswith("Basic ")
    assert orjson.loads(body)["error"]["code"] == "invalid_api_key"
    status, _, body = get(gw, "/dashboard.json", key=MEMBER)
    assert status == 403
    assert orjson.loads(body)["error"]["code"] == "permission_denied"
    assert get(gw, "/dashboard", key="sk-wrong", basic=True)[0] == 401


def test_bad_window_is_a_400_json_error(gw: GatewayProcess) -> None:
    for query in ("since=forever", "since=0s", "since=500d"):
        status, _, body = get(gw, f"/dashboard.json?{query}")
        assert status == 400, query
        assert orjson.loads(body)["error"]["param"] == "since"


def test_text_from_upstreams_is_escaped_in_the_page(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    fresh_sim.enqueue("gpt-4.1", {"usage": USAGE, "model": "<script>alert(1)</script>"})
    client(gw, MEMBER).chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    gw.ledger(at_least=6)
    page = get(gw, "/dashboard")[2].decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script>" not in page


def test_cli_reports_the_same_figures(gw: GatewayProcess) -> None:
    served = orjson.loads(get(gw, "/dashboard.json")[2])
    out = subprocess.run(
        [sys.executable, "-m", "llmswitch", "rankings", "--config", str(gw.config_path), "--json"],
        capture_output=True, text=True, check=True, cwd=gw.workdir,
    )  # fmt: skip
    cli = json.loads(out.stdout)
    for key in ("total", "models", "origins", "weights", "hosting", "keys", "categories", "savings"):
        assert cli[key] == served[key], key
    text = subprocess.run(
        [sys.executable, "-m", "llmswitch", "rankings", "--config", str(gw.config_path)],
        capture_output=True, text=True, check=True, cwd=gw.workdir,
    ).stdout  # fmt: skip
    assert "deepseek-chat" in text and "by origin: CN 60.0%, US 20.0%, unknown 20.0%" in text
