"""Bad input, auth and secrets: OpenAI-shaped errors with the right status, and no key ever leaks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest

from llmswitch.testing.simulator import Simulator
from tests.conftest import client
from tests.harness import UPSTREAM_KEY, GatewayProcess, provider, request

GatewayFactory = Callable[..., GatewayProcess]
CLIENT_KEY = "sk-team-alpha-0a9b8c7d6e5f"
HASHED_KEY = "sk-ci-robot-1234567890"


def config(sim: Simulator, **extra: Any) -> dict[str, Any]:
    return {
        "providers": {"p": provider(sim.url)},
        "models": {"m": {"deployments": [{"provider": "p", "model": "up"}]}},
        **extra,
    }


def assert_openai_error(
    status: int, headers: dict[str, str], body: bytes, want_status: int, code: str
) -> None:
    assert status == want_status, body
    assert headers["content-type"] == "application/json"
    err = json.loads(body)["error"]
    assert err["code"] == code and isinstance(err["message"], str) and err["type"]
    assert "Traceback" not in body.decode()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_request"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "invalid_model"),
        (b'{"model": "m"}', "invalid_messages"),
        (b'{"model": "m", "messages": []}', "invalid_messages"),
        (b'{"model": "m", "messages": "hi"}', "invalid_messages"),
        (b'{"model": "m", "messages": [{"content": "no role"}]}', "invalid_messages"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "invalid_stream",
        ),
        (b"\xff\xfe garbage", "invalid_json"),
    ],
)
def test_bad_request_bodies_get_400(
    fresh_sim: Simulator, start_gateway: GatewayFactory, body: bytes, code: str
) -> None:
    gw = start_gateway(config(fresh_sim))
    status, headers, resp = request(
        "POST", f"{gw.url}/v1/chat/completions", body, {"content-type": "application/json"}
    )
    assert_openai_error(status, headers, resp, 400, code)
    assert headers["x-llmswitch-request-id"].startswith("req_")
    assert fresh_sim.requests() == []


def test_unknown_model_is_404_model_not_found(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    gw = start_gateway(config(fresh_sim))
    with pytest.raises(openai.NotFoundError) as exc:
        client(gw).chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert exc.value.code == "model_not_found"


def test_oversized_body_is_413(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    gw = start_gateway(config(fresh_sim, server={"max_body_bytes": 10_000}))
    big = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 20_000}]}).encode()
    status, headers, body = request("POST", f"{gw.url}/v1/chat/completions", big)
    assert_openai_error(status, headers, body, 413, "body_too_large")
    with pytest.raises(openai.APIStatusError) as exc:
        client(gw).chat.completions.create(model="m", messages=[{"role": "user", "content": "x" * 20_000}])
    assert exc.value.status_code == 413
    assert client(gw).chat.completions.create(model="m", messages=[{"role": "user", "content": "ok"}]).choices


def test_default_body_limit_is_10_mb(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    gw = start_gateway(config(fresh_sim))
    big = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * (10 * 1024 * 1024)}]})
    status, headers, body = request("POST", f"{gw.url}/v1/chat/completions", big.encode())
    assert_openai_error(status, headers, body, 413, "body_too_large")


def test_unknown_route_and_wrong_method(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    gw = start_gateway(config(fresh_sim))
    assert_openai_error(*request("GET", f"{gw.url}/v1/nothing"), 404, "not_found")
    assert_openai_error(*request("GET", f"{gw.url}/v1/chat/completions"), 405, "method_not_allowed")


def test_malformed_http_gets_400_not_a_crash(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    import socket

    gw = start_gateway(config(fresh_sim))
    host, port = gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400")
    assert client(gw).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]).choices


def auth_config(sim: Simulator) -> dict[str, Any]:
    return config(
        sim,
        auth={
            "keys": [
                {"id": "team-alpha", "key": "${TEAM_ALPHA_KEY}"},
                {"id": "ci", "sha256": hashlib.sha256(HASHED_KEY.encode()).hexdigest()},
            ]
        },
    )


def test_auth_rejects_missing_and_wrong_keys_and_records_key_ids(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(auth_config(fresh_sim), env={"TEAM_ALPHA_KEY": CLIENT_KEY})
    msgs: list[Any] = [{"role": "user", "content": "x"}]
    for bad in ("", "sk-wrong", CLIENT_KEY + "x", CLIENT_KEY[:-1]):
        with pytest.raises(openai.AuthenticationError) as exc:
            client(gw, key=bad or "none").chat.completions.create(model="m", messages=msgs)
        assert exc.value.code == "invalid_api_key"
    assert_openai_error(*request("POST", f"{gw.url}/v1/chat/completions", b"{}"), 401, "invalid_api_key")
    assert_openai_error(*request("GET", f"{gw.url}/v1/models"), 401, "invalid_api_key")
    assert fresh_sim.requests() == []
    client(gw, key=CLIENT_KEY).chat.completions.create(model="m", messages=msgs)
    client(gw, key=HASHED_KEY).chat.completions.create(model="m", messages=msgs)
    assert [r["key_id"] for r in gw.ledger(at_least=2)] == ["team-alpha", "ci"]


def test_no_secret_reaches_clients_logs_or_ledger(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    gw = start_gateway(auth_config(fresh_sim), env={"TEAM_ALPHA_KEY": CLIENT_KEY})
    c = client(gw, key=CLIENT_KEY)
    seen: list[str] = []
    msgs: list[Any] = [{"role": "user", "content": "x"}]
    # Upstream error messages that echo the key, as some providers do.
    for status in (400, 401, 500):
        fresh_sim.enqueue(
            "up",
            {"status": status, "content": f"bad key {UPSTREAM_KEY}"},
            {"status": status},
            {"status": status},
        )
        try:
            raw = c.chat.completions.with_raw_response.create(model="m", messages=msgs)
            seen.append(raw.http_response.text + json.dumps(dict(raw.headers)))
        except openai.APIStatusError as e:
            seen.append(e.response.text + json.dumps(dict(e.response.headers)))
    fresh_sim.reset()
    raw = c.chat.completions.with_raw_response.create(model="m", messages=msgs)
    seen.append(raw.http_response.text + json.dumps(dict(raw.headers)))
    for chunk in c.chat.completions.create(model="m", messages=msgs, stream=True):
        seen.append(chunk.model_dump_json())
    seen.append(request("GET", f"{gw.url}/metrics")[2].decode())
    gw.ledger(at_least=4)
    gw.stop()
    everything = "\n".join(seen) + gw.log() + gw.db_path.read_bytes().decode("latin-1")
    for wal in gw.workdir.glob("ledger.db*"):
        everything += wal.read_bytes().decode("latin-1")
    for secret in (UPSTREAM_KEY, CLIENT_KEY, HASHED_KEY, UPSTREAM_KEY[10:]):
        assert secret not in everything


def test_expect_100_continue_is_answered_at_once(fresh_sim: Simulator, start_gateway: GatewayFactory) -> None:
    import socket

    gw = start_gateway(config(fresh_sim))
    host, port = gw.url.removeprefix("http://").split(":")
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=0.5) as s:
        s.sendall(head)
        assert s.recv(4096).startswith(b"HTTP/1.1 100 Continue")  # within the timeout, before any body
        s.sendall(body)
        s.settimeout(10)
        assert s.recv(4096).startswith(b"HTTP/1.1 200 OK")


def test_a_credential_is_accepted_only_in_the_header_that_carried_it(
    fresh_sim: Simulator, start_gateway: GatewayFactory
) -> None:
    # The gateway remembers valid credentials to skip parsing and hashing; what it remembers must not
    # let an invalid Authorization through because a valid x-api-key once came with it, nor a key
    # sent in the wrong form.
    gw = start_gateway(auth_config(fresh_sim), env={"TEAM_ALPHA_KEY": CLIENT_KEY})
    url = f"{gw.url}/v1/chat/completions"
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode()
    json_type = {"content-type": "application/json"}
    both = {**json_type, "authorization": "Basic c29tZTpvbmU=", "x-api-key": CLIENT_KEY}
    for _ in range(2):
        assert request("POST", url, body, both)[0] == 200
        bearer = {**json_type, "authorization": f"Bearer {CLIENT_KEY}"}
        assert request("POST", url, body, bearer)[0] == 200
    basic_only = {**json_type, "authorization": "Basic c29tZTpvbmU="}
    assert_openai_error(*request("POST", url, body, basic_only), 401, "invalid_api_key")
    as_api_key = {**json_type, "x-api-key": f"Bearer {CLIENT_KEY}"}
    assert_openai_error(*request("POST", url, body, as_api_key), 401, "invalid_api_key")
    wrong_bearer = {**json_type, "authorization": f"Bearer {CLIENT_KEY}x", "x-api-key": CLIENT_KEY}
    assert_openai_error(*request("POST", url, body, wrong_bearer), 401, "invalid_api_key")
