"""Adversarial input fuzz: malformed and odd requests, over raw sockets, against a real gateway process.

Every case sends exact bytes (SDKs would refuse most of them client-side) and checks the product
standard for bad input:

- the answer is a well-formed JSON error in the surface's shape (OpenAI's `{"error": {...}}`, Anthropic's
  `{"type": "error", "error": {...}}` on `/v1/messages*`), or a well-formed success;
- a client mistake gets a 4xx: never a 5xx, never a traceback, never a hang;
- the connection is still usable afterwards (a good request on it succeeds) or is closed cleanly;
- no secret (the provider key, the client's virtual key) appears in any answer, the log or the ledger;
- every request that reached routing has its row in the ledger, and the ledger stays readable.

The corpus is generated (top-level field x bad value, message/content-block variants, HTTP framing
oddities), deterministic (no randomness at all), and one gateway serves the whole module.
Known bugs are kept as `xfail(strict=True)` cases with the root cause in the reason.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from llmswitch.testing.simulator import Simulator
from tests.harness import UPSTREAM_KEY, GatewayProcess, provider
from tests.raw_http import Resp, Wire

VIRTUAL_KEY = "sk-virtual-FUZZ-7e3a51c0d9b2"
MAX_BODY = 1_000_000
MODELS = ("m", "a", "c", "slow", "drip")  # every configured model name
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
COUNT = "/v1/messages/count_tokens"

# Codes (OpenAI surface) of errors produced after routing: an attempt was made, so a ledger row exists.
ROUTED_CODES = {"upstream_rejected", "upstream_failed", "upstream_auth_failed", "rate_limited", "timeout"}
ANTHROPIC_ERROR_TYPES = {
    "invalid_request_error",
    "authentication_error",
    "permission_error",
    "not_found_error",
    "request_too_large",
    "rate_limit_error",
    "api_error",
    "overloaded_error",
}


# --------------------------------------------------------------------------------------------------
# the gateway under test


@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    config: dict[str, Any] = {
        "server": {"max_body_bytes": MAX_BODY},
        "auth": {"keys": [{"id": "fuzz", "key": VIRTUAL_KEY}]},
        "providers": {
            "oa": provider(sim.url),
            "an": {"api": "anthropic", "base_url": f"{sim.url}/v1", "api_key": UPSTREAM_KEY},
        },
        "models": {
            "m": {"deployments": [{"provider": "oa", "model": "fuzz-up"}]},  # OpenAI-compatible upstream
            "a": {"deployments": [{"provider": "an", "model": "fuzz-claude"}]},  # Anthropic upstream
            "c": {"deployments": [{"provider": "oa", "model": "fuzz-up", "max_output_tokens": 16}]},
            "slow": {"deployments": [{"provider": "oa", "model": "fuzz-up@slow0.4"}]},
            "drip": {"deployments": [{"provider": "oa", "model": "fuzz-drip"}]},
        },
        # One attempt, no cool-down: a case must not change how the next one is served.
        "routing": {"max_attempts": 1, "timeout": 20, "attempt_timeout": 10, "cooldown": {"failures": 1000}},
        "ledger": {"flush_interval": 0.02},
    }
    workdir = tmp_path_factory.mktemp("fuzz-gw")
    g = GatewayProcess(config, workdir).start()
    yield g
    g.stop()


# --------------------------------------------------------------------------------------------------
def http(
    method: str = "POST",
    path: str = CHAT,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    auth: bool = True,
    content_length: bool = True,
    version: str = "HTTP/1.1",
) -> bytes:
    """The bytes of one request: default headers (host, the client key, JSON content type and length),
    overridden by `headers`; values beyond latin-1 go out as UTF-8."""
    base = {"host": "fuzz.test"}
    if auth:
        base["authorization"] = f"Bearer {VIRTUAL_KEY}"
    if body is not None:
        base["content-type"] = "application/json"
        if content_length:
            base["content-length"] = str(len(body))
    base.update(headers or {})
    lines = "".join(f"{k}: {v}\r\n" for k, v in base.items())
    head = f"{method} {path} {version}\r\n{lines}\r\n"
    try:
        raw = head.encode("latin-1")  # "\xff" in a value goes out as the single byte 0xff
    except UnicodeEncodeError:
        raw = head.encode()  # beyond latin-1: UTF-8 bytes on the wire
    return raw + (body or b"")


GOOD_CHAT = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "ping"}]})
GOOD_MESSAGES = orjson.dumps(
    {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "ping"}]}
)
FOLLOW_UP = http("GET", "/v1/models")  # cheap, authenticated, no ledger row


# --------------------------------------------------------------------------------------------------
# checks


def surface_of(path: str) -> str:
    return "anthropic" if path.startswith("/v1/messages") else "openai"


def assert_no_secret(data: bytes) -> None:
    assert UPSTREAM_KEY.encode() not in data, "the provider key leaked"
    assert VIRTUAL_KEY.encode() not in data, "the client's virtual key leaked"


def assert_error_shape(resp: Resp, surface: str) -> dict[str, Any]:
    """The error object ({"message", "type", ...}) of a well-formed error answer on `surface`."""
    text = resp.body.decode("utf-8", "replace")
    assert "Traceback" not in text and 'File "' not in text, text[:500]
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.head
    try:
        obj = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {resp.body[:300]!r}") from None
    assert isinstance(obj, dict), obj
    if surface == "anthropic":
        assert obj.get("type") == "error", f"not Anthropic-shaped: {obj}"
        err = obj.get("error")
        assert isinstance(err, dict) and err.get("type") in ANTHROPIC_ERROR_TYPES, obj
    else:
        err = obj.get("error")
        assert isinstance(err, dict) and isinstance(err.get("type"), str) and err["type"], obj
        assert "type" not in obj, f"Anthropic-shaped error on the OpenAI surface: {obj}"
    assert isinstance(err.get("message"), str) and err["message"], obj
    return err


def assert_success_shape(resp: Resp, path: str, stream: bool) -> None:
    if path not in (CHAT, MESSAGES, COUNT):
        resp.json()  # /health, /v1/models, /v1/feedback: JSON, nothing more to say
        return
    if path == COUNT:
        obj = resp.json()
        assert type(obj.get("input_tokens")) is int and obj["input_tokens"] >= 1, obj
        return
    assert resp.headers.get("x-llmswitch-request-id", "").startswith("req_"), resp.head
    if stream:
        assert resp.headers.get("content-type", "").startswith("text/event-stream"), resp.head
        if surface_of(path) == "anthropic":
            assert b"event: message_stop" in resp.body and b"event: error" not in resp.body, resp.body[-500:]
        else:
            assert resp.body.rstrip().endswith(b"data: [DONE]"), resp.body[-500:]
            assert b'"error"' not in resp.body, resp.body[-500:]
        return
    obj = resp.json()
    if surface_of(path) == "anthropic":
        assert obj.get("type") == "message" and isinstance(obj.get("content"), list), obj
    else:
        assert isinstance(obj.get("choices"), list), obj


def upstream_log(sim: Simulator) -> list[dict[str, Any]]:
    """The simulator's request log, shallow-copied: `Simulator.requests()` deep-copies it through orjson,
    which fails (Recursion limit reached) once the log holds the 300-level-deep bodies sent here."""
    with sim.state._lock:
        return list(sim.state._log)


def ledger_rows(gw: GatewayProcess, request_id: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    end = time.monotonic() + timeout
    while True:
        rows: list[dict[str, Any]] = []
        if gw.db_path.exists():
            con = sqlite3.connect(f"file:{gw.db_path}?mode=ro", uri=True, timeout=5.0)
            con.row_factory = sqlite3.Row
            try:
                rows = [
                    dict(r) for r in con.execute("SELECT * FROM attempts WHERE request_id = ?", (request_id,))
                ]
            except sqlite3.OperationalError:
                rows = []
            finally:
                con.close()
        if rows or time.monotonic() > end:
            return rows
        time.sleep(0.02)


def reached_routing(resp: Resp, path: str) -> bool:
    if path not in (CHAT, MESSAGES):
        return False
    if resp.status == 200:
        return True
    try:
        err = resp.json().get("error") or {}
    except ValueError:
        return False
    if err.get("code") in ROUTED_CODES:
        return True
    message = str(err.get("message", ""))  # Anthropic-shaped errors carry no code
    return message.startswith(("upstream ", "provider ", "all ", "every deployment"))


def assert_connection_fate(w: Wire, resp: Resp) -> None:
    """After an answer the connection is either still usable (a good request succeeds) or closed."""
    if resp.closes:
        assert w.eof_within(), "answer said `connection: close` but the connection stayed open"
        return
    w.send(FOLLOW_UP)
    follow = w.response()
    assert follow.status == 200 and b'"data"' in follow.body, f"follow-up on the same connection: {follow}"


ROUTED: dict[str, str] = {}  # request id → case id, for every answer that came through routing


@dataclass
class Case:
    id: str
    raw: bytes  # the whole request
    path: str
    expect: tuple[int, ...] | None = None  # exact statuses allowed; None = 200 or any 4xx
    stream: bool = False
    method: str = "POST"
    timeout: float = 10.0  # for the answer; longer is a hang


def check_exchange(gw: GatewayProcess, case: Case) -> Resp:
    """Send one case on a fresh connection and check everything the standard promises about it."""
    with Wire(gw.url, timeout=case.timeout) as w:
        w.send(case.raw)
        try:
            resp = w.response(head_request=case.method == "HEAD")
        except TimeoutError:
            raise AssertionError(f"no answer within {case.timeout:g} s (hang)") from None
        assert_no_secret(resp.head + resp.body)
        assert resp.status < 500, f"{resp.status} for a client request: {resp.body[:400]!r}"
        if case.expect is not None:
            assert resp.status in case.expect, f"want {case.expect}, got {resp.status}: {resp.body[:400]!r}"
        else:
            assert resp.status == 200 or 400 <= resp.status < 500, resp.status
        if case.method == "HEAD":
            pass  # no body to judge; the follow-up below shows whether one was sent anyway
        elif resp.status >= 400:
            assert_error_shape(resp, surface_of(case.path))
        else:
            assert_success_shape(resp, case.path, case.stream)
        if reached_routing(resp, case.path):
            rid = resp.headers.get("x-llmswitch-request-id", "")
            assert rid.startswith("req_"), f"routed answer without a request id: {resp.head!r}"
            ROUTED[rid] = case.id  # its ledger row is checked in bulk at the end (the writer batches)
        assert_connection_fate(w, resp)
    return resp


def as_params(cases: list[Case]) -> list[Any]:
    seen: set[str] = set()
    out = []
    for c in cases:
        assert c.id not in seen, f"duplicate case id {c.id}"
        seen.add(c.id)
        bug = known_bug(c.id)
        marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=f"BUG: {bug}")] if bug else []
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


# --------------------------------------------------------------------------------------------------
# the corpus: raw JSON text, so that values Python would never produce (-0, 1e999, "\ud800") go out as is

DEEP_LIST = "[" * 300 + "]" * 300  # parses (orjson allows 1024 levels) but orjson cannot re-encode it (254)
DEEP_OBJ = '{"a":' * 300 + "1" + "}" * 300
HUGE_STR = '"' + "x" * 200_000 + '"'

BAD_VALUES: dict[str, str] = {
    "null": "null",
    "true": "true",
    "false": "false",
    "zero": "0",
    "neg": "-1",
    "negzero": "-0",
    "float": "1.5",
    "1e308": "1e308",
    "2^64": "18446744073709551616",
    "-2^63-1": "-9223372036854775809",
    "empty_str": '""',
    "str": '"abc"',
    "huge_str": HUGE_STR,
    "nul": '"a\\u0000b"',
    "emoji": '"\\ud83d\\ude00 \\u202e\\ufeff"',
    "empty_list": "[]",
    "list_null": "[null]",
    "list_mixed": '[1,"a",{},[],null]',
    "empty_obj": "{}",
    "obj": '{"a":{"b":[1]}}',
    "deep_list": DEEP_LIST,
    "deep_obj": DEEP_OBJ,
}

# Not JSON (or not JSON orjson accepts): always 400, whatever the field.
INVALID_VALUES: dict[str, str] = {
    "1e999": "1e999",
    "-1e999": "-1e999",
    "NaN": "NaN",
    "Infinity": "Infinity",
    "lone_high_surrogate": '"\\ud800"',
    "lone_low_surrogate": '"x\\udc00y"',
    "too_deep": "[" * 1100 + "]" * 1100,
    "trailing_comma": "[1,]",
    "hex": "0x1F",
    "single_quotes": "'a'",
    "raw_control_char": '"a\x01b"',
    "undefined": "undefined",
    "unterminated": '"abc',
}

OPENAI_FIELDS = [
    "model",
    "messages",
    "stream",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "tools",
    "tool_choice",
    "response_format",
    "stream_options",
    "metadata",
    "user",
    "parallel_tool_calls",
    "seed",
    "logprobs",
    "thinking",
]
ANTHROPIC_FIELDS = [
    "model",
    "messages",
    "max_tokens",
    "system",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "stop_sequences",
    "tools",
    "tool_choice",
    "metadata",
    "thinking",
]

OPENAI_BASE = {"model": '"m"', "messages": '[{"role":"user","content":"hi"}]'}
ANTHROPIC_BASE = {"model": '"m"', "max_tokens": "16", "messages": '[{"role":"user","content":"hi"}]'}

TOOLS_OA = '[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{}}}}]'
TOOLS_AN = '[{"name":"f","input_schema":{"type":"object","properties":{}}}]'

# Values that only make sense for one field: field → {name: {field: raw, ...}} (extra fields included).
OPENAI_SHAPED: dict[str, dict[str, dict[str, str]]] = {
    "tools": {
        "num_item": {"tools": "[1]"},
        "no_function": {"tools": '[{"type":"function"}]'},
        "function_num": {"tools": '[{"type":"function","function":5}]'},
        "name_num": {"tools": '[{"type":"function","function":{"name":5}}]'},
        "params_str": {"tools": '[{"type":"function","function":{"name":"f","parameters":"x"}}]'},
        "params_deep": {
            "tools": '[{"type":"function","function":{"name":"f","parameters":' + DEEP_OBJ + "}}]"
        },
        "server_tool": {"tools": '[{"type":"web_search"}]'},
        "no_type": {"tools": '[{"function":{"name":"f"}}]'},
        "desc_num": {"tools": '[{"type":"function","function":{"name":"","description":5}}]'},
    },
    "tool_choice": {
        name: {"tools": TOOLS_OA, "tool_choice": raw}
        for name, raw in {
            "required": '"required"',
            "bogus_str": '"bogus"',
            "fn_no_name": '{"type":"function"}',
            "fn_name_num": '{"type":"function","function":{"name":5}}',
            "fn_unknown": '{"type":"function","function":{"name":"nope"}}',
            "anthropic_shape": '{"type":"tool","name":"f"}',
            "num": "5",
        }.items()
    },
    "response_format": {
        name: {"response_format": raw}
        for name, raw in {
            "schema_missing": '{"type":"json_schema"}',
            "schema_num": '{"type":"json_schema","json_schema":5}',
            "schema_schema_num": '{"type":"json_schema","json_schema":{"schema":5}}',
            "schema_deep": '{"type":"json_schema","json_schema":{"name":"x","schema":' + DEEP_OBJ + "}}",
            "json_object": '{"type":"json_object"}',
            "type_bogus": '{"type":"bogus"}',
            "type_num": '{"type":5}',
        }.items()
    },
    "stream_options": {
        f"{name}_stream_{s}": {"stream": s, "stream_options": raw}
        for name, raw in {
            "usage_str": '{"include_usage":"yes"}',
            "usage_true": '{"include_usage":true}',
            "num": "5",
            "list": "[]",
            "null": "null",
        }.items()
        for s in ("true", "false")
    },
    "stop": {
        name: {"stop": raw}
        for name, raw in {
            "mixed": '["a",5]',
            "empty": '[""]',
            "many": json.dumps(["x"] * 100),
            "obj": '{"a":1}',
        }.items()
    },
    "metadata": {
        "user_id_num": {"metadata": '{"user_id":5}'},
        "wide": {"metadata": json.dumps({f"k{i}": i for i in range(200)})},
    },
}

ANTHROPIC_SHAPED: dict[str, dict[str, dict[str, str]]] = {
    "tools": {
        name: {"tools": raw}
        for name, raw in {
            "no_schema": '[{"name":"t"}]',
            "name_num": '[{"name":5,"input_schema":{}}]',
            "schema_num": '[{"name":"t","input_schema":5}]',
            "schema_deep": '[{"name":"t","input_schema":' + DEEP_OBJ + "}]",
            "server_tool": '[{"type":"web_search_20250305","name":"web_search"}]',
            "cache_control_num": '[{"name":"t","input_schema":{},"cache_control":5}]',
            "num_item": "[1]",
        }.items()
    },
    "tool_choice": {
        name: {"tools": TOOLS_AN, "tool_choice": raw}
        for name, raw in {
            "tool_no_name": '{"type":"tool"}',
            "tool_name_num": '{"type":"tool","name":5}',
            "any_parallel_str": '{"type":"any","disable_parallel_tool_use":"yes"}',
            "str": '"auto"',
            "type_bogus": '{"type":"bogus"}',
            "none": '{"type":"none"}',
        }.items()
    },
    "system": {
        name: {"system": raw}
        for name, raw in {
            "block_text_num": '[{"type":"text","text":5}]',
            "nums": "[1,2]",
            "image_block": '[{"type":"image"}]',
            "cache_control_bogus": '[{"type":"text","text":"a","cache_control":{"type":"bogus"}}]',
        }.items()
    },
    "thinking": {
        name: {"thinking": raw}
        for name, raw in {
            "enabled_no_budget": '{"type":"enabled"}',
            "budget_str": '{"type":"enabled","budget_tokens":"x"}',
            "type_num": '{"type":5}',
            "str": '"on"',
        }.items()
    },
    "stop_sequences": {
        name: {"stop_sequences": raw} for name, raw in {"nums": "[5]", "str": '"x"', "empty": '[""]'}.items()
    },
    "metadata": {"user_id_num": {"metadata": '{"user_id":5}'}},
}

# Message arrays: OpenAI chat messages with every role and content part, missing/wrong fields.
U = '{"role":"user","content":"hi"}'
OPENAI_MESSAGES: dict[str, str] = {
    "role_system_only": '[{"role":"system","content":"s"}]',
    "role_developer": '[{"role":"developer","content":[{"type":"text","text":"d"}]},' + U + "]",
    "role_function": '[{"role":"function","name":"f","content":"x"},' + U + "]",
    "role_bogus": '[{"role":"bogus","content":"x"}]',
    "role_empty": '[{"role":"","content":"x"}]',
    "role_num": '[{"role":5,"content":"x"}]',
    "role_null": '[{"role":null,"content":"x"}]',
    "msg_str": '["hi"]',
    "msg_null": "[null]",
    "msg_list": "[[]]",
    "content_null": '[{"role":"user","content":null}]',
    "content_num": '[{"role":"user","content":5}]',
    "content_obj": '[{"role":"user","content":{}}]',
    "content_empty_list": '[{"role":"user","content":[]}]',
    "content_missing": '[{"role":"user"}]',
    "content_nums": '[{"role":"user","content":[1]}]',
    "content_strs": '[{"role":"user","content":["str"]}]',
    "part_text_missing": '[{"role":"user","content":[{"type":"text"}]}]',
    "part_text_num": '[{"role":"user","content":[{"type":"text","text":5}]}]',
    "part_text_list": '[{"role":"user","content":[{"type":"text","text":["a"]}]}]',
    "part_text_deep": '[{"role":"user","content":[{"type":"text","text":' + DEEP_LIST + "}]}]",
    "part_type_num": '[{"role":"user","content":[{"type":5}]}]',
    "part_type_missing": '[{"role":"user","content":[{"text":"a"}]}]',
    "image_missing": '[{"role":"user","content":[{"type":"image_url"}]}]',
    "image_num": '[{"role":"user","content":[{"type":"image_url","image_url":5}]}]',
    "image_url_num": '[{"role":"user","content":[{"type":"image_url","image_url":{"url":5}}]}]',
    "image_url_str": '[{"role":"user","content":[{"type":"image_url","image_url":"http://x/y.png"}]}]',
    "image_data_empty": (
        '[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:;base64,"}}]}]'
    ),
    "audio_num": '[{"role":"user","content":[{"type":"input_audio","input_audio":5}]}]',
    "file_missing": '[{"role":"user","content":[{"type":"file"}]}]',
    "file_data_num": '[{"role":"user","content":[{"type":"file","file":{"file_data":5}}]}]',
    "file_pdf": (
        '[{"role":"user","content":[{"type":"file",'
        '"file":{"file_data":"data:application/pdf;base64,QQ=="}}]}]'
    ),
    "refusal_num": '[{"role":"user","content":[{"type":"refusal","refusal":5}]}]',
    "name_num": '[{"role":"user","content":"x","name":5}]',
    "assistant_content_num": '[{"role":"assistant","content":5},' + U + "]",
    "assistant_text_num": '[{"role":"assistant","content":[{"type":"text","text":5}]},' + U + "]",
    "assistant_text_list": '[{"role":"assistant","content":[{"type":"text","text":["a"]}]},' + U + "]",
    "assistant_refusal_num": '[{"role":"assistant","content":[{"type":"refusal","refusal":5}]},' + U + "]",
    "tool_calls_num": '[{"role":"assistant","tool_calls":5},' + U + "]",
    "tool_calls_nums": '[{"role":"assistant","tool_calls":[5]},' + U + "]",
    "tool_calls_empty_obj": '[{"role":"assistant","tool_calls":[{}]},' + U + "]",
    "tool_call_function_num": '[{"role":"assistant","tool_calls":[{"function":5}]},' + U + "]",
    "tool_call_name_args_num": '[{"role":"assistant","tool_calls":[{"function":{"name":5,"arguments":5}}]},'
    + U
    + "]",
    "tool_call_args_bad_json": '[{"role":"assistant","tool_calls":[{"id":5,"type":"function",'
    '"function":{"name":"f","arguments":"{bad"}}]},' + U + "]",
    "tool_call_args_obj": '[{"role":"assistant","tool_calls":[{"id":"c1","type":"function",'
    '"function":{"name":"f","arguments":{"a":1}}}]},' + U + "]",
    "tool_call_args_deep": '[{"role":"assistant","tool_calls":[{"id":"c1","type":"function",'
    '"function":{"name":"f","arguments":' + json.dumps(DEEP_OBJ) + "}}]}," + U + "]",
    "tool_no_id": '[{"role":"tool","content":"r"},' + U + "]",
    "tool_id_num": '[{"role":"tool","tool_call_id":5,"content":5},' + U + "]",
    "tool_content_parts": (
        '[{"role":"tool","tool_call_id":"c","content":[{"type":"image_url","image_url":{"url":"x"}}]}]'
    ),
    "nested_model_key": '[{"role":"user","content":"hi","model":"m"}]',
    "many_messages": "[" + ",".join([U] * 2000) + "]",
}

# Anthropic messages with every content-block type, missing/wrong fields.
AU = '{"role":"user","content":"hi"}'


def _user_blocks(blocks: str) -> str:
    return '[{"role":"user","content":' + blocks + "}]"


def _assistant_blocks(blocks: str) -> str:
    return '[{"role":"user","content":"q"},{"role":"assistant","content":' + blocks + "}," + AU + "]"


TOOL_USE = '{"type":"tool_use","id":"toolu_1","name":"f","input":{}}'
ANTHROPIC_MESSAGES: dict[str, str] = {
    "role_system": '[{"role":"system","content":"x"}]',
    "role_tool": '[{"role":"tool","content":"x"}]',
    "role_num": '[{"role":5,"content":"x"}]',
    "role_missing": '[{"content":"x"}]',
    "msg_str": '["hi"]',
    "msg_null": "[null]",
    "content_num": _user_blocks("5"),
    "content_null": _user_blocks("null"),
    "content_obj": _user_blocks("{}"),
    "content_empty_list": _user_blocks("[]"),
    "content_empty_str": _user_blocks('""'),
    "content_nums": _user_blocks("[1]"),
    "content_strs": _user_blocks('["s"]'),
    "content_nulls": _user_blocks("[null]"),
    "block_type_missing": _user_blocks('[{"text":"a"}]'),
    "block_type_num": _user_blocks('[{"type":5}]'),
    "block_type_unknown": _user_blocks('[{"type":"hologram","data":1}]'),
    "text_missing": _user_blocks('[{"type":"text"}]'),
    "text_num": _user_blocks('[{"type":"text","text":5}]'),
    "text_empty": _user_blocks('[{"type":"text","text":""}]'),
    "text_cache_control_num": _user_blocks('[{"type":"text","text":"a","cache_control":5}]'),
    "text_deep_extra": _user_blocks('[{"type":"text","text":"a","x":' + DEEP_LIST + "}]"),
    "image_no_source": _user_blocks('[{"type":"image"}]'),
    "image_source_num": _user_blocks('[{"type":"image","source":5}]'),
    "image_base64_no_data": _user_blocks('[{"type":"image","source":{"type":"base64"}}]'),
    "image_media_num": _user_blocks('[{"type":"image","source":{"type":"base64","media_type":5,"data":5}}]'),
    "image_url_num": _user_blocks('[{"type":"image","source":{"type":"url","url":5}}]'),
    "image_file": _user_blocks('[{"type":"image","source":{"type":"file","file_id":"f"}}]'),
    "image_source_bogus": _user_blocks('[{"type":"image","source":{"type":"bogus"}}]'),
    "document_text_num": _user_blocks('[{"type":"document","source":{"type":"text","data":5}}]'),
    "document_base64": _user_blocks(
        '[{"type":"document","title":5,"source":{"type":"base64","media_type":"application/pdf","data":"QQ=="}}]'
    ),
    "document_content": _user_blocks(
        '[{"type":"document","source":{"type":"content","content":[{"type":"text","text":5},7]}}]'
    ),
    "document_no_source": _user_blocks('[{"type":"document"}]'),
    "tool_result_no_id": '[{"role":"user","content":"q"},{"role":"assistant","content":['
    + TOOL_USE
    + ']},{"role":"user","content":[{"type":"tool_result"}]}]',
    "tool_result_id_num": _user_blocks('[{"type":"tool_result","tool_use_id":5,"content":5}]'),
    "tool_result_content_nums": _user_blocks('[{"type":"tool_result","tool_use_id":"t","content":[1,null]}]'),
    "tool_result_image_bad": _user_blocks(
        '[{"type":"tool_result","tool_use_id":"t","content":[{"type":"image","source":5}]}]'
    ),
    "tool_result_is_error_str": _user_blocks(
        '[{"type":"tool_result","tool_use_id":"t","is_error":"yes","content":"r"}]'
    ),
    "tool_result_nested_deep": _user_blocks(
        '[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"a","x":'
        + DEEP_LIST
        + "}]}]"
    ),
    "tool_use_no_id": _assistant_blocks('[{"type":"tool_use","name":"f","input":{}}]'),
    "tool_use_id_num": _assistant_blocks('[{"type":"tool_use","id":5,"name":5,"input":{}}]'),
    "tool_use_no_name": _assistant_blocks('[{"type":"tool_use","id":"toolu_1","input":{}}]'),
    "tool_use_input_str": _assistant_blocks('[{"type":"tool_use","id":"toolu_1","name":"f","input":"x"}]'),
    "tool_use_input_list": _assistant_blocks('[{"type":"tool_use","id":"toolu_1","name":"f","input":[1]}]'),
    "tool_use_input_deep": _assistant_blocks(
        '[{"type":"tool_use","id":"toolu_1","name":"f","input":' + DEEP_OBJ + "}]"
    ),
    "tool_use_in_user_turn": _user_blocks(f"[{TOOL_USE}]"),
    "thinking_num": _assistant_blocks('[{"type":"thinking","thinking":5}]'),
    "thinking_unsigned": _assistant_blocks(
        '[{"type":"thinking","thinking":"t","signature":""},{"type":"text","text":"a"}]'
    ),
    "thinking_unsigned_deep": _assistant_blocks(
        '[{"type":"thinking","thinking":"t","signature":""},{"type":"text","text":"a","x":' + DEEP_LIST + "}]"
    ),
    "redacted_thinking_num": _assistant_blocks('[{"type":"redacted_thinking","data":5}]'),
    "server_tool_use": _assistant_blocks(
        '[{"type":"server_tool_use","id":"s","name":"web_search","input":5}]'
    ),
    "web_search_result": _user_blocks('[{"type":"web_search_tool_result","tool_use_id":"s","content":5}]'),
    "assistant_last": '[{"role":"user","content":"q"},{"role":"assistant","content":"prefill"}]',
    "assistant_first": '[{"role":"assistant","content":"a"}]',
    "nested_model_key": '[{"role":"user","content":"hi","model":"m"}]',
}


def render(fields: dict[str, str]) -> bytes:
    return ("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}").encode()


def parsed(body: bytes) -> Any:
    """The body as the gateway's parser (orjson) sees it, or a marker when it is not JSON to orjson."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _INVALID


_INVALID = object()


def expect_openai(body: bytes) -> tuple[int, ...] | None:
    """What decode_chat (and routing) must answer; None when the upstream judges (200 or 4xx)."""
    b = parsed(body)
    if b is _INVALID or not isinstance(b, dict):
        return (400,)
    if not isinstance(b.get("model"), str) or not b["model"]:
        return (400,)
    msgs = b.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return (400,)
    if any(not isinstance(m, dict) or not isinstance(m.get("role"), str) for m in msgs):
        return (400,)
    if b.get("stream") is not None and not isinstance(b["stream"], bool):
        return (400,)
    if b["model"] not in MODELS:
        return (404,)
    return None


def expect_anthropic(body: bytes) -> tuple[int, ...] | None:
    """What decode_messages (and routing) must answer, as Anthropic itself would refuse it."""
    b = parsed(body)
    if b is _INVALID or not isinstance(b, dict):
        return (400,)
    if not isinstance(b.get("model"), str) or not b["model"]:
        return (400,)
    msgs = b.get("messages")
    if not isinstance(msgs, list) or not msgs:
        return (400,)
    for m in msgs:
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            return (400,)
        if not isinstance(m.get("content"), str | list):
            return (400,)
    if type(b.get("max_tokens")) is not int or b["max_tokens"] < 1:
        return (400,)
    if b.get("system") is not None and not isinstance(b["system"], str | list):
        return (400,)
    if "stream" in b and not isinstance(b["stream"], bool):
        return (400,)
    if b["model"] not in MODELS:
        return (404,)
    return None


def expect_count(body: bytes) -> tuple[int, ...] | None:
    b = parsed(body)
    if b is _INVALID or not isinstance(b, dict) or not isinstance(b.get("messages"), list):
        return (400,)
    if b.get("tools") is not None and not isinstance(b["tools"], list):
        return (400,)
    try:
        orjson.dumps(b)
    except orjson.JSONEncodeError:  # nested deeper than JSON encoders write: 400 if a measured part is
        return (200, 400)
    return (200,)


def is_stream(body: bytes) -> bool:
    b = parsed(body)
    return isinstance(b, dict) and b.get("stream") is True


# --------------------------------------------------------------------------------------------------
# known bugs, by root cause: case-id patterns (fnmatch) → reason. Strict xfails: a fix turns them into
# XPASS failures, and the entry must then be removed.


KNOWN_BUGS: list[tuple[str, str]] = []


def known_bug(case_id: str) -> str | None:
    return next((reason for pattern, reason in KNOWN_BUGS if fnmatch.fnmatchcase(case_id, pattern)), None)


# --------------------------------------------------------------------------------------------------
# generation


def openai_cases() -> list[Case]:
    cases: list[Case] = []

    def add(cid: str, fields: dict[str, str], target: str) -> None:
        fields = {**OPENAI_BASE, "model": json.dumps(target), **fields} if "model" not in fields else {
            **OPENAI_BASE, **fields
        }  # fmt: skip
        body = render(fields)
        cases.append(
            Case(
                f"openai-{target}-{cid}",
                http("POST", CHAT, body),
                CHAT,
                expect_openai(body),
                stream=is_stream(body),
            )
        )

    for f in OPENAI_FIELDS:
        for vname, raw in BAD_VALUES.items():
            if f == "model":
                add(f"model={vname}", {"model": raw}, "m")
                continue
            for target in ("m", "a"):
                add(f"{f}={vname}", {f: raw}, target)
    for vname, raw in INVALID_VALUES.items():
        for f in ("temperature", "messages"):
            add(f"{f}={vname}", {f: raw}, "m")
    for f, shaped in OPENAI_SHAPED.items():
        for vname, fields in shaped.items():
            for target in ("m", "a"):
                add(f"{f}:{vname}", fields, target)
    for vname, raw in OPENAI_MESSAGES.items():
        for target in ("m", "a"):
            add(f"messages:{vname}", {"messages": raw}, target)
            add(f"messages:{vname}:stream", {"messages": raw, "stream": "true"}, target)
    # the clamp path (max_output_tokens) re-encodes the body
    for vname in ("deep_list", "deep_obj", "huge_str", "nul", "2^64"):
        add(f"clamp:metadata={vname}", {"max_tokens": "100", "metadata": BAD_VALUES[vname]}, "c")
    # the pass-through re-encodes too when it must add stream_options or sees "model" twice
    add("reencode:stream_options+deep", {"stream": "true", "stream_options": "{}", "metadata": DEEP_OBJ}, "m")
    add("reencode:dup_model+deep", {"model": '"m","model":"m"', "metadata": DEEP_LIST}, "m")
    for vname in ("2^64", "1e308", "negzero", "float", "true"):
        add(f"clamp:max_tokens={vname}", {"max_tokens": BAD_VALUES[vname]}, "c")
    # model names and duplicate keys
    for name, raw in {
        "unknown": '"nope"',
        "nul": '"m\\u0000"',
        "space": '" m"',
        "case": '"M"',
        "long": '"' + "m" * 100_000 + '"',
        "unicode": '"模型"',
        "at_behaviour": '"m@500"',
        "path_like": '"../m"',
        "escaped": '"\\u006d"',
    }.items():
        add(f"model_name={name}", {"model": raw}, "m")
    add("dup:model_last_wins", {"model": '"nope","model":"m"'}, "m")
    add("dup:model_last_unknown", {"model": '"m","model":"nope"'}, "m")
    add("dup:stream", {"stream": 'true,"stream":false'}, "m")
    add("dup:messages", {"messages": '5,"messages":[{"role":"user","content":"x"}]'}, "m")
    return cases


def anthropic_cases() -> list[Case]:
    cases: list[Case] = []

    def add(cid: str, fields: dict[str, str], target: str) -> None:
        model = {} if "model" in fields else {"model": json.dumps("m" if target == "count" else target)}
        fields = {**ANTHROPIC_BASE, **model, **fields}
        body = render(fields)
        path = COUNT if target == "count" else MESSAGES
        expect = expect_count(body) if target == "count" else expect_anthropic(body)
        cases.append(
            Case(
                f"anthropic-{target}-{cid}",
                http("POST", path, body, {"anthropic-version": "2023-06-01"}),
                path,
                expect,
                stream=target != "count" and is_stream(body),
            )
        )

    for f in ANTHROPIC_FIELDS:
        for vname, raw in BAD_VALUES.items():
            for target in ("m", "a", "count"):
                if f == "model" and target == "a":
                    continue
                add(f"{f}={vname}", {f: raw}, target)
    for vname, raw in INVALID_VALUES.items():
        for target in ("m", "count"):
            add(f"temperature={vname}", {"temperature": raw}, target)
    for f, shaped in ANTHROPIC_SHAPED.items():
        for vname, fields in shaped.items():
            for target in ("m", "a", "count"):
                add(f"{f}:{vname}", fields, target)
    for vname, raw in ANTHROPIC_MESSAGES.items():
        for target in ("m", "a", "count"):
            add(f"messages:{vname}", {"messages": raw}, target)
        for target in ("m", "a"):
            add(f"messages:{vname}:stream", {"messages": raw, "stream": "true"}, target)
    add("dup:model_last_wins", {"model": '"nope","model":"m"'}, "m")
    add("model_name=unknown", {"model": '"nope"'}, "m")
    return cases


def body_cases() -> list[Case]:
    """Whole bodies that are not a request object, on every POST endpoint."""
    bodies = {
        "empty": b"",
        "spaces": b"   \r\n\t ",
        "not_json": b"{not json",
        "truncated": GOOD_CHAT[:-3],
        "trailing_garbage": GOOD_CHAT + b"xyz",
        "two_objects": GOOD_CHAT + GOOD_CHAT,
        "array": b"[1, 2]",
        "string": b'"hello"',
        "number": b"42",
        "null": b"null",
        "true": b"true",
        "bom": b"\xef\xbb\xbf" + GOOD_CHAT,
        "utf16": GOOD_CHAT.decode().encode("utf-16"),
        "latin1_bytes": b'{"model":"m","messages":[{"role":"user","content":"caf\xe9"}]}',
        "overlong_utf8": b'{"model":"m","messages":[{"role":"user","content":"\xc0\xaf"}]}',
        "raw_nul_byte": b'{"model":"m",\x00"messages":[]}',
        "too_deep": b"[" * 5000 + b"]" * 5000,
        "deep_object": b'{"a":' * 1100 + b"1" + b"}" * 1100,
        "huge_number": b'{"model":"m","n":' + b"9" * 5000 + b"}",
        "many_keys": render({f"k{i}": str(i) for i in range(20_000)}),
        "form_encoded": b"model=m&messages=hi",
    }
    out = []
    for name, body in bodies.items():
        for path in (CHAT, MESSAGES, COUNT, "/v1/feedback"):
            expect: tuple[int, ...] | None = (400,)
            if path == CHAT:
                expect = expect_openai(body)
            elif path == MESSAGES:
                expect = expect_anthropic(body)
            elif path == COUNT:
                expect = expect_count(body)
            out.append(
                Case(
                    f"body-{name}-{path.strip('/').replace('/', '_')}", http("POST", path, body), path, expect
                )
            )
    return out


def feedback_cases() -> list[Case]:
    bodies = {
        "no_request_id": b'{"score":1}',
        "request_id_num": b'{"request_id":5,"score":1}',
        "score_str": b'{"request_id":"r","score":"1"}',
        "score_bool": b'{"request_id":"r","score":true}',
        "score_big": b'{"request_id":"r","score":2}',
        "score_neg": b'{"request_id":"r","score":-0.5}',
        "score_2^64": b'{"request_id":"r","score":18446744073709551616}',
        "score_inf": b'{"request_id":"r","score":1e999}',
        "comment_num": b'{"request_id":"r","score":0.5,"comment":5}',
        "comment_nul": b'{"request_id":"r\\u0000","score":0.5,"comment":"a\\u0000b"}',
        "negzero": b'{"request_id":"r","score":-0}',
    }
    ok = {"comment_num", "comment_nul", "negzero"}
    return [
        Case(f"feedback-{n}", http("POST", "/v1/feedback", b), "/v1/feedback", (200,) if n in ok else (400,))
        for n, b in bodies.items()
    ]


def http_cases() -> list[Case]:
    """Framing, methods, paths, headers: the parser and the dispatcher."""
    cases: list[Case] = []

    def add(cid: str, raw: bytes, path: str, expect: tuple[int, ...] | None, method: str = "POST") -> None:
        cases.append(Case(f"http-{cid}", raw, path, expect, method=method))

    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "HEAD"):
        for path in (CHAT, MESSAGES, COUNT, "/v1/feedback"):
            add(f"{method}-{path}", http(method, path), path, (405,), method)
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        add(f"{method}-/health", http(method, "/health"), "/health", (200, 404, 405), method)
    add("HEAD-/health", http("HEAD", "/health"), "/health", (200, 404, 405), "HEAD")
    add("HEAD-/v1/models", http("HEAD", "/v1/models"), "/v1/models", (200, 404, 405), "HEAD")
    add("BREW-/", b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", "/", (400, 404, 405, 501))
    for path in (
        "/",
        "/v1",
        "/v1/",
        "/v1/chat/completions/",
        "/v1/chat/completions/x",
        "/v1/embeddings",
        "/v1/completions",
        "/v1/messages/batches",
        "/v1/messages/",
        "/v1/messagesX",
        "/v2/chat/completions",
        "/V1/CHAT/COMPLETIONS",
        "/v1//chat/completions",
        "/v1/chat/../chat/completions",
        "/%2e%2e/etc/passwd",
        "/v1/chat%2Fcompletions",
        "/" + "a" * 60_000,
    ):
        add(f"POST-{path[:40]}", http("POST", path, GOOD_CHAT), path, (404,))
    add(
        "absolute-uri", http("POST", "http://fuzz.test/v1/chat/completions", GOOD_CHAT), CHAT, (200, 400, 404)
    )
    add("asterisk-uri", http("OPTIONS", "*"), "*", (400, 404, 405), "OPTIONS")
    # query strings are not part of the route
    add("query-chat", http("POST", CHAT + "?stream=true&model=x", GOOD_CHAT), CHAT, (200,))
    add("query-messages", http("POST", MESSAGES + "?beta=true", GOOD_MESSAGES), MESSAGES, (200,))
    add("query-models", http("GET", "/v1/models?limit=abc&after=%00"), "/v1/models", (200,), "GET")
    # content types are not checked: the body decides
    for ct in (
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "",
        "\x7f",
    ):
        add(
            f"content-type={ct[:20]!r}",
            http("POST", CHAT, GOOD_CHAT, {"content-type": ct}),
            CHAT,
            (200, 400, 415),
        )
    # framing
    add("no-content-length", http("POST", CHAT, GOOD_CHAT, content_length=False), CHAT, (400,))
    add(
        "content-length-short",
        http("POST", CHAT, GOOD_CHAT, {"content-length": str(len(GOOD_CHAT) - 5)}),
        CHAT,
        (400,),
    )
    for name, value in {"neg": "-1", "alpha": "abc", "plus": "+10", "space": "1 0", "hex": "0x10"}.items():
        add(f"content-length={name}", http("POST", CHAT, GOOD_CHAT, {"content-length": value}), CHAT, (400,))
    add(
        "content-length-twice",
        http("POST", CHAT, GOOD_CHAT).replace(b"content-length:", b"content-length: 3\r\ncontent-length:", 1),
        CHAT,
        (400,),
    )
    add("content-length-huge", http("POST", CHAT, b"{}", {"content-length": "9" * 30}), CHAT, (400, 413))
    add("over-limit-declared", http("POST", CHAT, b"{}", {"content-length": str(MAX_BODY + 1)}), CHAT, (413,))
    add(
        "over-limit-declared-anthropic",
        http("POST", MESSAGES, b"{}", {"content-length": str(MAX_BODY + 1)}),
        MESSAGES,
        (413,),
    )
    big = render({**OPENAI_BASE, "x": '"' + "y" * (MAX_BODY + 10) + '"'})
    add("over-limit-sent", http("POST", CHAT, big), CHAT, (413,))
    add("over-limit-sent-anthropic", http("POST", MESSAGES, big), MESSAGES, (413,))
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(GOOD_CHAT), GOOD_CHAT)
    add("chunked", http("POST", CHAT, None, {"transfer-encoding": "chunked"}) + chunked, CHAT, (200,))
    pieces = b"".join(b"1\r\n%c\r\n" % c for c in GOOD_MESSAGES) + b"0\r\n\r\n"
    add(
        "chunked-1-byte",
        http("POST", MESSAGES, None, {"transfer-encoding": "chunked"}) + pieces,
        MESSAGES,
        (200,),
    )
    add(
        "chunked-bad-size",
        http("POST", CHAT, None, {"transfer-encoding": "chunked"}) + b"zz\r\nabc\r\n0\r\n\r\n",
        CHAT,
        (400,),
    )
    add(
        "chunked-with-content-length",
        http("POST", CHAT, None, {"transfer-encoding": "chunked", "content-length": "5"}) + chunked,
        CHAT,
        (400,),
    )
    over = b"".join(b"%x\r\n%s\r\n" % (100_000, b"z" * 100_000) for _ in range(11)) + b"0\r\n\r\n"
    add("chunked-over-limit", http("POST", CHAT, None, {"transfer-encoding": "chunked"}) + over, CHAT, (413,))
    add("te-gzip", http("POST", CHAT, GOOD_CHAT, {"transfer-encoding": "gzip"}), CHAT, (400, 411, 501))
    add(
        "content-encoding-gzip",
        http("POST", CHAT, GOOD_CHAT, {"content-encoding": "gzip"}),
        CHAT,
        (200, 400, 415),
    )
    add("expect-100", http("POST", CHAT, GOOD_CHAT, {"expect": "100-continue"}), CHAT, (200,))
    add("expect-bogus", http("POST", CHAT, GOOD_CHAT, {"expect": "200-ok"}), CHAT, (200, 417))
    add(
        "upgrade-websocket",
        http("GET", "/v1/models", None, {"connection": "Upgrade", "upgrade": "websocket"}),
        "/v1/models",
        (400,),
        "GET",
    )
    add("h2c-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "/", (400,))
    add("http-1.0", http("POST", CHAT, GOOD_CHAT, version="HTTP/1.0"), CHAT, (200,))
    cases.append(
        Case("http-http-0.9", b"GET /health\r\n", "/health", (200, 400, 505), method="GET", timeout=2.0)
    )
    add("http-2.0-line", http("GET", "/health", version="HTTP/2.0"), "/health", (200, 400, 505))
    add("no-host", http("POST", CHAT, GOOD_CHAT).replace(b"host: fuzz.test\r\n", b""), CHAT, (200, 400))
    add("lf-only", http("POST", CHAT, GOOD_CHAT).replace(b"\r\n", b"\n"), CHAT, (200, 400))
    add("space-before-colon", http("POST", CHAT, GOOD_CHAT).replace(b"host:", b"host :"), CHAT, (400,))
    add("obs-fold", http("POST", CHAT, GOOD_CHAT, {"x-a": "a\r\n b"}), CHAT, (200, 400))
    add("nul-in-header", http("POST", CHAT, GOOD_CHAT, {"x-a": "a\x00b"}), CHAT, (400,))
    add("nul-in-path", b"GET /v1/mod\x00els HTTP/1.1\r\nHost: x\r\n\r\n", "/v1/models", (400, 404), "GET")
    add("long-header-64k", http("POST", CHAT, GOOD_CHAT, {"x-long": "v" * 65_536}), CHAT, (200, 400, 431))
    add("long-header-2m", http("POST", CHAT, GOOD_CHAT, {"x-long": "v" * 2_000_000}), CHAT, (200, 400, 431))
    many = {f"x-h{i}": "v" for i in range(5000)}
    add("many-headers", http("POST", CHAT, GOOD_CHAT, many), CHAT, (200, 400, 431))
    add("high-bytes-header", http("POST", CHAT, GOOD_CHAT, {"x-a": "caf\xe9\xff"}), CHAT, (200, 400))
    add("connection-close", http("POST", CHAT, GOOD_CHAT, {"connection": "close"}), CHAT, (200,))
    add("connection-close-error", http("POST", CHAT, b"{bad", {"connection": "close"}), CHAT, (400,))
    # authentication: every surface answers in its own shape
    for path, body in (
        (CHAT, GOOD_CHAT),
        (MESSAGES, GOOD_MESSAGES),
        (COUNT, GOOD_MESSAGES),
        ("/v1/models", None),
    ):
        method = "GET" if body is None else "POST"
        tag = path.strip("/").replace("/", "_")
        for name, hdrs in {
            "none": {},
            "empty-bearer": {"authorization": "Bearer "},
            "basic": {"authorization": "Basic " + VIRTUAL_KEY},
            "wrong": {"authorization": "Bearer sk-wrong"},
            "upstream-key": {"authorization": "Bearer " + UPSTREAM_KEY},
            "key-prefix": {"authorization": "Bearer " + VIRTUAL_KEY[:-1]},
            "key-plus-space": {"authorization": "Bearer " + VIRTUAL_KEY + " x"},
            "x-api-key-wrong": {"x-api-key": "nope"},
            "huge": {"authorization": "Bearer " + "k" * 100_000},
            "high-bytes": {"authorization": "Bearer \xff\xfe"},
        }.items():
            add(f"auth-{name}-{tag}", http(method, path, body, hdrs, auth=False), path, (401,), method)
        add(
            f"auth-x-api-key-{tag}",
            http(method, path, body, {"x-api-key": VIRTUAL_KEY}, auth=False),
            path,
            (200,),
            method,
        )
        add(
            f"auth-lowercase-bearer-{tag}",
            http(method, path, body, {"authorization": "bearer " + VIRTUAL_KEY}, auth=False),
            path,
            (200,),
            method,
        )
    # x-llmswitch-tags: a JSON object or k=v pairs, at most 2048 bytes
    for name, value in {
        "array": "[1,2]",
        "bad_json": "{bad",
        "long": "a" * 3000,
        "nested": '{"a":{"b":[1,{"c":null}]}}',
        "kv": "team=a,, =x,flag",
        "deep": '{"a":' + "[" * 300 + "]" * 300 + "}",
        "num": '{"a":1e999}',
        "big_int": '{"a":18446744073709551616}',
        "unicode": '{"ключ":"值"}',
        "high_bytes": "a=\xff",
    }.items():
        for path, body in ((CHAT, GOOD_CHAT), (MESSAGES, GOOD_MESSAGES)):
            add(
                f"tags-{name}-{path.strip('/').replace('/', '_')}",
                http("POST", path, body, {"x-llmswitch-tags": value}),
                path,
                None,
            )
    return cases


ALL_CASES = openai_cases() + anthropic_cases() + body_cases() + feedback_cases() + http_cases()


@pytest.mark.parametrize("case", as_params(ALL_CASES))
def test_bad_input(gw: GatewayProcess, case: Case) -> None:
    check_exchange(gw, case)


# --------------------------------------------------------------------------------------------------
# connection-level behaviour: pipelining, disconnects, HEAD


def _pipeline(gw: GatewayProcess, data: bytes, n: int, heads: tuple[int, ...] = ()) -> list[Resp]:
    with Wire(gw.url) as w:
        w.send(data)
        return [w.response(head_request=i in heads) for i in range(n)]


def test_pipelined_requests_answer_in_order(gw: GatewayProcess) -> None:
    bodies = [
        GOOD_CHAT,
        b"{bad json",
        orjson.dumps({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
    ]
    data = b"".join(http("POST", CHAT, b) for b in bodies) + http("POST", MESSAGES, GOOD_MESSAGES) + FOLLOW_UP
    got = _pipeline(gw, data, 5)
    assert [r.status for r in got] == [200, 400, 404, 200, 200]
    assert_error_shape(got[1], "openai")
    assert got[0].json()["object"] == "chat.completion" and got[3].json()["type"] == "message"


def test_pipelined_malformed_request_after_slow_one(gw: GatewayProcess) -> None:
    slow = orjson.dumps({"model": "slow", "messages": [{"role": "user", "content": "x"}]})
    got = []
    with Wire(gw.url) as w:
        w.send(http("POST", CHAT, slow) + b"GARBAGE / NOT-HTTP\r\n\r\n")
        with pytest.raises(EOFError):  # collect until the server closes
            while True:
                got.append(w.response())
    assert [r.status for r in got] == [200, 400], [r.body[:200] for r in got]


def test_pipelined_oversized_request_after_slow_one(gw: GatewayProcess) -> None:
    slow = orjson.dumps({"model": "slow", "messages": [{"role": "user", "content": "x"}]})
    data = http("POST", CHAT, slow) + http("POST", CHAT, b"{}", {"content-length": str(MAX_BODY + 1)})
    got = []
    with Wire(gw.url) as w:
        w.send(data)
        with pytest.raises(EOFError):
            while True:
                got.append(w.response())
    assert [r.status for r in got] == [200, 413], [r.body[:200] for r in got]


@pytest.mark.parametrize("path", ["/health", "/v1/models", CHAT])
def test_head_then_get_on_one_connection(gw: GatewayProcess, path: str) -> None:
    got = _pipeline(gw, http("HEAD", path) + FOLLOW_UP, 2, heads=(0,))
    assert got[1].status == 200 and b'"data"' in got[1].body


def test_pipelined_expect_continue_does_not_corrupt_a_stream(gw: GatewayProcess, sim: Simulator) -> None:
    sim.enqueue("fuzz-drip", {"content": "a b c d e f", "chunk_delay": 0.05})
    stream = orjson.dumps({"model": "drip", "stream": True, "messages": [{"role": "user", "content": "x"}]})
    with Wire(gw.url) as w:
        w.send(http("POST", CHAT, stream))
        assert w.rf.readline().startswith(b"HTTP/1.1 200")
        w.send(http("POST", CHAT, None, {"expect": "100-continue", "content-length": str(len(GOOD_CHAT))}))
        while w.rf.readline() not in (b"\r\n", b""):
            pass  # the rest of response 1's head
        body = w.chunked()  # response 1's chunked body must be intact
        assert body.rstrip().endswith(b"data: [DONE]")
        w.send(GOOD_CHAT)
        assert w.response().status == 200


def test_disconnect_mid_body_and_mid_headers(gw: GatewayProcess) -> None:
    for partial in (
        http("POST", CHAT, GOOD_CHAT)[:-20],  # body cut
        http("POST", MESSAGES, GOOD_MESSAGES)[:30],  # head cut
        http("POST", CHAT, None, {"transfer-encoding": "chunked"}) + b"10\r\nabc",  # inside a chunk
    ):
        with Wire(gw.url) as w:
            w.send(partial)
        with Wire(gw.url) as w:  # the gateway noticed nothing it should not have
            w.send(http("POST", CHAT, GOOD_CHAT))
            assert w.response().status == 200


def test_disconnect_mid_stream_is_recorded(gw: GatewayProcess, sim: Simulator) -> None:
    """A client that leaves mid-stream: the gateway stays up and the attempt is in the ledger."""
    long_text = " ".join(f"w{i}" for i in range(60))
    for path, body in (
        (CHAT, {"model": "drip", "stream": True, "messages": [{"role": "user", "content": "x"}]}),
        (
            MESSAGES,
            {
                "model": "drip",
                "stream": True,
                "max_tokens": 99,
                "messages": [{"role": "user", "content": "x"}],
            },
        ),
    ):
        sim.enqueue("fuzz-drip", {"content": long_text, "chunk_delay": 0.05})
        with Wire(gw.url) as w:
            w.send(http("POST", path, orjson.dumps(body)))
            line = w.rf.readline()
            assert line.startswith(b"HTTP/1.1 200"), line
            rid = ""
            while (h := w.rf.readline()) not in (b"\r\n", b""):
                name, _, value = h.decode().partition(":")
                if name.lower() == "x-llmswitch-request-id":
                    rid = value.strip()
            assert w.rf.readline()  # the first chunk's size line: the stream has begun
        rows = ledger_rows(gw, rid)
        assert (
            rows and rows[0]["status"] in ("error", "truncated") and rows[0]["error_class"] == "client_closed"
        )
        with Wire(gw.url) as w:
            w.send(http("POST", CHAT, GOOD_CHAT))
            assert w.response().status == 200


@pytest.mark.parametrize(
    "body",
    [
        b'{"model":"m","mo\\u0064el":"m","messages":[{"role":"user","content":"hi"}]}',
        b'{"mo\\u0064el":"m","messages":[{"role":"user","content":"hi","model":"m"}]}',
    ],
    ids=["escaped-duplicate-key", "escaped-key-plus-nested-key"],
)
def test_upstream_always_gets_the_deployment_model(gw: GatewayProcess, sim: Simulator, body: bytes) -> None:
    with Wire(gw.url) as w:
        w.send(http("POST", CHAT, body))
        resp = w.response()
    assert resp.status == 200
    rid = resp.headers["x-llmswitch-request-id"]
    [sent] = [r for r in upstream_log(sim) if r["headers"].get("x-request-id") == rid]
    assert sent["body"]["model"] == "fuzz-up", sent["raw_body"][:200]


def _requests_total(gw: GatewayProcess, model: str, status: str) -> float:
    with Wire(gw.url) as w:
        w.send(http("GET", "/metrics"))
        text = w.response().body.decode()
    pattern = rf'llmswitch_requests_total{{model="{model}",status="{status}",surface="openai"}} (\S+)'
    m = re.search(pattern, text)
    return float(m.group(1)) if m else 0.0


def test_a_refused_request_is_counted_with_its_status(gw: GatewayProcess) -> None:
    # a body too deep to re-encode for the upstream: once a 500 counted as "200", now a 400 counted as such
    before = _requests_total(gw, "c", "400"), _requests_total(gw, "c", "200")
    body = render({**OPENAI_BASE, "model": '"c"', "max_tokens": "100", "metadata": DEEP_LIST})
    with Wire(gw.url) as w:
        w.send(http("POST", CHAT, body))
        assert w.response().status == 400
    assert (_requests_total(gw, "c", "400"), _requests_total(gw, "c", "200")) == (before[0] + 1, before[1])


# --------------------------------------------------------------------------------------------------
# after the storm (runs last: pytest keeps definition order within a module)


def test_zz_gateway_alive_ledger_complete_and_no_secret_anywhere(gw: GatewayProcess, sim: Simulator) -> None:
    with Wire(gw.url) as w:
        for path, body in ((CHAT, GOOD_CHAT), (MESSAGES, GOOD_MESSAGES)):
            w.send(http("POST", path, body))
            resp = w.response()
            assert resp.status == 200, resp.body
            assert ledger_rows(gw, resp.headers["x-llmswitch-request-id"])
    prefix = resp.headers["x-llmswitch-request-id"][:20]  # this gateway process's request ids
    sent = {r["headers"].get("x-request-id", "") for r in upstream_log(sim)}
    ours = {s for s in sent if s.startswith(prefix)}  # every request that reached an upstream
    assert ours
    want = ours | set(ROUTED)
    end = time.monotonic() + 5.0
    while True:
        con = sqlite3.connect(f"file:{gw.db_path}?mode=ro", uri=True, timeout=5.0)
        try:
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            rows = con.execute("SELECT request_id, key_id, requested_model FROM attempts").fetchall()
        finally:
            con.close()
        missing = sorted(want - {r[0] for r in rows})
        if not missing or time.monotonic() > end:
            break
        time.sleep(0.05)
    described = [f"{rid} ({ROUTED.get(rid, 'reached the upstream')})" for rid in missing[:5]]
    assert not missing, f"{len(missing)} routed request(s) have no ledger row: {described}"
    assert all(r[1] == "fuzz" and r[2] in MODELS for r in rows), "a ledger row has a wrong key id or model"
    con = sqlite3.connect(f"file:{gw.db_path}?mode=ro", uri=True, timeout=5.0)
    try:
        for status, tags in con.execute("SELECT status, tags FROM attempts"):
            assert status in ("ok", "error", "truncated"), status
            assert tags is None or isinstance(json.loads(tags), dict), tags  # x-llmswitch-tags: a JSON object
    finally:
        con.close()
    for f in [gw.log_path, *gw.db_path.parent.glob(gw.db_path.name + "*")]:
        assert_no_secret(f.read_bytes())
