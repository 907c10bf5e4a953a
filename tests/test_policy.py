"""Routing policy through a real gateway: a key's policy (jurisdiction, open weights, own hardware, price)
decides which deployments serve it; a request no deployment may serve is refused and never sent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest

from llmswitch.config import ConfigError, config_from_data
from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import GatewayProcess, provider
from tests.test_auto_route import CHEAP, MATH, STRONG
from tests.test_auto_route import config as auto_config

GatewayFactory = Callable[..., GatewayProcess]
KEYS = {
    "free": "sk-free-1",
    "us": "sk-us-2",
    "open-us": "sk-openus-3",
    "onprem": "sk-onprem-4",
    "cheap": "sk-cheap-5",
}
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def gw(fresh_sim: Simulator, start_gateway: GatewayFactory) -> GatewayProcess:
    cfg: dict[str, Any] = {
        "providers": {
            "deepseek": provider(fresh_sim.url, region="CN", pricing_provider="deepseek"),
            "usopen": provider(fresh_sim.url, region="US"),
            "openai": provider(fresh_sim.url, region="US", pricing_provider="openai"),
            "gpu": provider(fresh_sim.url),
        },
        "models": {
            # the maker's API first, then a US host of the same open weights
            "deepseek-v3": {
                "deployments": [
                    {"provider": "deepseek", "model": "deepseek-chat"},
                    {"provider": "usopen", "model": "deepseek-chat", "price": {"input": 0.5, "output": 1.5}},
                ]
            },
            "gpt-4.1": {"deployments": [{"provider": "openai", "model": "gpt-4.1"}]},
            "mine": {
                "deployments": [{"provider": "gpu", "model": "my-ft", "self_hosted": {"gpu_hour_usd": 2}}]
            },
        },
        "policies": {
            "us": {"regions": ["US"]},
            "open-us": {"regions": ["us"], "open_weights": True},
            "onprem": {"self_hosted": True},
            "cheap": {"max_price": {"input": 1.0, "output": 2.0}},
        },
        "auth": {
            "keys": [{"id": k, "key": v, **({"policy": k} if k != "free" else {})} for k, v in KEYS.items()]
        },
    }
    return start_gateway(cfg)


def served_by(gw: GatewayProcess, key: str, model: str) -> str:
    raw = client(gw, KEYS[key]).chat.completions.with_raw_response.create(model=model, messages=HI)
    assert raw.parse().choices
    return raw.headers["x-llmswitch-provider"]


def refused(gw: GatewayProcess, sim: Simulator, key: str, model: str) -> str:
    before = len(sim.requests())
    with pytest.raises(openai.PermissionDeniedError) as e:
        client(gw, KEYS[key]).chat.completions.create(model=model, messages=HI)
    assert len(sim.requests()) == before  # nothing was sent upstream
    body: Any = e.value.body
    assert body["code"] == "policy_violation" and body["param"] == "model"
    return str(body["message"])


def test_jurisdiction_picks_the_allowed_deployment_of_a_model(gw: GatewayProcess) -> None:
    assert served_by(gw, "free", "deepseek-v3") == "deepseek"
    assert served_by(gw, "us", "deepseek-v3") == "usopen"  # the CN deployment is skipped, not failed over
    assert served_by(gw, "us", "gpt-4.1") == "openai"
    [row] = [
        r for r in gw.ledger(at_least=3) if r["key_id"] == "us" and r["requested_model"] == "deepseek-v3"
    ]
    assert row["provider"] == "usopen" and row["attempt"] == 1  # one attempt: no CN call failed first


def test_a_model_no_deployment_may_serve_is_refused_and_never_sent(
    gw: GatewayProcess, fresh_sim: Simulator
) -> None:
    message = refused(gw, fresh_sim, "open-us", "gpt-4.1")
    assert "policy 'open-us'" in message and "openai/gpt-4.1: its weights are not open" in message
    message = refused(gw, fresh_sim, "us", "mine")
    assert "gpu/my-ft: its provider's region is not set, not one of US" in message
    assert served_by(gw, "open-us", "deepseek-v3") == "usopen"


def test_models_list_shows_what_the_key_may_use(gw: GatewayProcess) -> None:
    listed = {k: [m.id for m in client(gw, v).models.list()] for k, v in KEYS.items()}
    assert listed["free"] == ["deepseek-v3", "gpt-4.1", "mine"]
    assert listed["open-us"] == ["deepseek-v3"]
    assert listed["onprem"] == ["mine"]
    claude = anthropic.Anthropic(base_url=gw.url, api_key=KEYS["onprem"], max_retries=0)
    assert [m.id for m in claude.models.list()] == ["mine"]


def test_self_hosted_only(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    assert served_by(gw, "onprem", "mine") == "gpu"
    message = refused(gw, fresh_sim, "onprem", "deepseek-v3")
    assert "deepseek/deepseek-chat: it is not self-hosted" in message
    assert "usopen/deepseek-chat: it is not self-hosted" in message


def test_price_ceiling_uses_list_prices(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    # gpt-4.1 lists $2 / $8 per Mtok; deepseek-chat $0.27 / $1.10 (or half that off-peak)
    message = refused(gw, fresh_sim, "cheap", "gpt-4.1")
    assert "list price $2 / $8 per Mtok (input / output) is over $1 / $2" in message
    assert served_by(gw, "cheap", "deepseek-v3") == "deepseek"


def test_refusal_on_the_anthropic_surface_has_its_shape(gw: GatewayProcess, fresh_sim: Simulator) -> None:
    before = len(fresh_sim.requests())
    c = anthropic.Anthropic(base_url=gw.url, api_key=KEYS["open-us"], max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as e:
        c.messages.create(model="gpt-4.1", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert len(fresh_sim.requests()) == before
    body: Any = e.value.body
    assert body["type"] == "error" and body["error"]["type"] == "permission_error"
    assert "weights are not open" in body["error"]["message"]


def test_auto_chooses_only_among_allowed_candidates(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    # candidate prices (config of test_auto_route): $1/$2, $2/$3, $3/$4 for the cheap ones, $4/$5 the strong
    cfg = auto_config(fresh_sim, {"strategy": "predictive", "candidates": [*CHEAP, STRONG], "target": 0.5})
    cascade = {"strategy": "cascade", "candidates": [*CHEAP[:2], STRONG]}
    cfg["models"]["cascade"] = {"route": cascade}
    cfg["models"]["cascade-strong"] = {"route": {**cascade, "cascade": {"strong": STRONG}}}
    cfg["policies"] = {"budget": {"max_price": {"input": 2.5, "output": 3.5}}}
    cfg["auth"] = {
        "keys": [{"id": "free", "key": "sk-a"}, {"id": "budget", "key": "sk-b", "policy": "budget"}]
    }
    gw = start_gateway(cfg)
    hard = {"x-llmswitch-min-quality": "1.0"}
    picks = {}
    for key in ("sk-a", "sk-b"):
        raw = client(gw, key).chat.completions.with_raw_response.create(
            model="auto", messages=MATH, extra_headers=hard
        )
        assert raw.parse().choices
        picks[key] = raw.headers["x-llmswitch-model"]
    assert picks["sk-a"] not in CHEAP[:2]  # unrestricted, the hardest target needs a dearer model
    assert picks["sk-b"] in CHEAP[:2]
    # a cascade climbs only the allowed candidates...
    before = len(fresh_sim.requests())
    assert client(gw, "sk-b").chat.completions.create(model="cascade", messages=MATH).choices
    called = [r["body"]["model"] for r in fresh_sim.requests()[before:]]
    assert called and set(called) <= set(CHEAP[:2])
    # ...and one that must escalate to a model the policy forbids is refused up front
    with pytest.raises(openai.PermissionDeniedError) as e:
        client(gw, "sk-b").chat.completions.create(model="cascade-strong", messages=MATH)
    assert f"without {STRONG}" in str(e.value)


def test_a_key_naming_an_unknown_policy_is_a_config_error() -> None:
    data = {"auth": {"keys": [{"id": "k", "key": "x", "policy": "secret"}]}, "policies": {"open": {}}}
    with pytest.raises(
        ConfigError, match=r"auth.keys\['k'\].policy: unknown policy 'secret' \(configured: open\)"
    ):
        config_from_data(data)
