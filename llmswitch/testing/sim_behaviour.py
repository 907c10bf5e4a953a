"""Pure response builders for the upstream simulator: parsed request + behaviour -> response bytes.

No I/O here; `simulator.py` owns sockets and timing. Shapes follow the OpenAI Chat Completions and
Anthropic Messages wire formats closely enough for the official SDKs to parse them.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import orjson

Json = dict[str, Any]
Behaviour = dict[str, Any]

GARBAGE = b"<html>oops</html>"
_OA_FINISH = {"stop": "stop", "length": "length", "stop_sequence": "stop", "tool": "tool_calls"}
_AN_FINISH = {
    "stop": "end_turn",
    "length": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool": "tool_use",
}
_USAGE_KEYS = {  # Answer.usage key -> accepted override keys in a behaviour's "usage"
    "prompt": ("prompt_tokens", "input_tokens"),
    "completion": ("completion_tokens", "output_tokens"),
    "cached": ("cached_tokens",),
    "reasoning": ("reasoning_tokens",),
    "cache_read": ("cache_read", "cache_read_input_tokens"),
    "cache_creation": ("cache_creation", "cache_creation_input_tokens"),
}


def static_behaviour(model: str) -> Behaviour:
    """Behaviour encoded in a model id: `qwen@500`, `x@429`, `x@reset`, `x@slow0.5`, `x@cut3`, ..."""
    b: Behaviour = {}
    for d in model.split("@")[1:]:
        if d.isdigit():
            b["status"] = int(d)
        elif d in ("reset", "garbage", "hang"):
            b[d] = True
        elif d.startswith("slow") and re.fullmatch(r"\d+(\.\d+)?", d[4:]):
            b["delay"] = float(d[4:])
        elif d.startswith("cut") and d[3:].isdigit():
            b["cut_after"] = int(d[3:])
    return b


def _texts(content: Any) -> list[str]:
    """Every text piece of a message content: a string, text parts, or Anthropic tool_result blocks."""
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    for part in content if isinstance(content, list) else []:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, dict):
            if isinstance(part.get("text"), str):
                out.append(part["text"])
            elif part.get("type") == "tool_result":
                out += _texts(part.get("content"))
    return out


def _text(content: Any) -> str:
    return " ".join(_texts(content))


def prompt_tokens(messages: list[Any], system: Any = None) -> int:
    """Rough token count: a quarter of the characters of all message (and system) text, at least 1."""
    chars = sum(len(t) for t in _texts(system))
    chars += sum(len(t) for m in messages if isinstance(m, dict) for t in _texts(m.get("content")))
    return max(1, chars // 4)


def words(text: str) -> list[str]:
    """Whitespace-separated words, each keeping its leading whitespace, so "".join() restores the text."""
    pieces: list[str] = re.findall(r"\s*\S+", text)
    tail = text[len("".join(pieces)) :]  # trailing whitespace rides on the last word
    if tail and pieces:
        pieces[-1] += tail
    elif tail:
        pieces = [tail]
    return pieces


def _split(s: str, parts: int = 3) -> list[str]:
    """`s` in `parts` roughly equal pieces (at least 2 when len(s) >= 2), for streamed tool arguments."""
    size = max(1, -(-len(s) // parts))
    return [s[i : i + size] for i in range(0, len(s), size)] or [""]


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


@dataclass(slots=True)
class Answer:
    """What the simulated model "said", independent of wire format."""

    model: str
    text: str | None  # None when the answer is a tool call
    finish: str  # "stop" | "length" | "stop_sequence" | "tool"
    id: str
    tool_name: str | None = None
    tool_id: str = ""
    tool_args: str = "{}"  # JSON text
    stop_seq: str | None = None
    reasoning: str = ""
    n: int = 1
    created: int = field(default_factory=lambda: int(time.time()))
    usage: dict[str, int] = field(default_factory=dict)


def _pick_tool(req: Json) -> str | None:
    """Tool the model will call (OpenAI or Anthropic tools / tool_choice), or None for a text answer."""
    tools = req.get("tools")
    if not isinstance(tools, list) or not tools or not isinstance(tools[0], dict):
        return None
    choice = req.get("tool_choice")
    if choice == "none" or (isinstance(choice, dict) and choice.get("type") == "none"):
        return None
    if isinstance(choice, dict):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else choice.get("name")
        if isinstance(name, str):
            return name
    first = tools[0].get("function", tools[0])
    return str(first.get("name", "tool")) if isinstance(first, dict) else "tool"


def _tool_reply(last: Json) -> str | None:
    """Text of a tool result if the last message is one (OpenAI role "tool" or Anthropic tool_result)."""
    if last.get("role") == "tool":
        return _text(last.get("content"))
    content = last.get("content")
    if isinstance(content, list):
        results = [p for p in content if isinstance(p, dict) and p.get("type") == "tool_result"]
        if results:
            return " ".join(_text(p.get("content")) for p in results)
    return None


def plan(req: Json, b: Behaviour, *, anthropic: bool) -> Answer:
    """Decide the answer for a (validated) chat request under behaviour `b`."""
    model = str(req.get("model", ""))
    messages: list[Any] = req["messages"]
    last: Json = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    reply = _tool_reply(last)
    tool = _pick_tool(req) if reply is None else None
    n = req.get("n")
    a = Answer(
        model=str(b.get("model", model)),
        text=None,
        finish="tool",
        id=_new_id("msg_sim" if anthropic else "chatcmpl-sim-"),
        reasoning=str(b.get("reasoning", "")),
        n=min(max(n, 1), 16) if isinstance(n, int) and not anthropic else 1,
    )
    if tool is not None:
        args = b.get("tool_arguments")
        a.tool_name, a.tool_args = tool, orjson.dumps(args if isinstance(args, dict) else {}).decode()
        a.tool_id = _new_id("toolu_sim" if anthropic else "call_sim")
        completion = max(1, len(a.tool_args) // 4)
    else:
        if "content" in b:
            text = str(b["content"])
        else:
            if reply is not None:
                text = f"Tool said: {reply[:60]}"
            else:
                users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
                said = _text(users[-1].get("content"))[:60] if users else ""
                text = f"Hello from {model}! You said: {said}"
            fmt = req.get("response_format")
            if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
                text = orjson.dumps({"answer": text}).decode()
        a.finish = "stop"
        stops = req.get("stop") or req.get("stop_sequences")
        hits = [(text.find(s), s) for s in ([stops] if isinstance(stops, str) else stops or []) if s]
        hits = [h for h in hits if h[0] >= 0]
        if hits:
            cut, a.stop_seq = min(hits)
            text, a.finish = text[:cut], "stop_sequence"
        limit = req.get("max_completion_tokens")
        limit = req.get("max_tokens") if limit is None else limit
        pieces = words(text)
        if isinstance(limit, int) and len(text.split()) > limit:
            text, a.finish, a.stop_seq = "".join(pieces[:limit]), "length", None
        a.text = text
        completion = len(text.split())
    reasoning_tokens = len(a.reasoning.split())
    a.usage = {
        "prompt": prompt_tokens(messages, req.get("system")),
        "completion": (completion + reasoning_tokens) * a.n,
        "cached": 0,
        "reasoning": reasoning_tokens * a.n,
        "cache_read": 0,
        "cache_creation": 0,
    }
    over = b.get("usage")
    for key, names in _USAGE_KEYS.items():
        for name in names:
            if isinstance(over, dict) and isinstance(over.get(name), int):
                a.usage[key] = over[name]
    return a


# --- OpenAI Chat Completions -------------------------------------------------------------------


def _oa_usage(a: Answer) -> Json:
    u = a.usage
    return {
        "prompt_tokens": u["prompt"],
        "completion_tokens": u["completion"],
        "total_tokens": u["prompt"] + u["completion"],
        "prompt_tokens_details": {"cached_tokens": u["cached"]},
        "completion_tokens_details": {"reasoning_tokens": u["reasoning"]},
    }


def openai_body(a: Answer) -> bytes:
    msg: Json = {"role": "assistant", "content": a.text, "refusal": None}
    if a.tool_name is not None:
        fn = {"name": a.tool_name, "arguments": a.tool_args}
        msg["tool_calls"] = [{"id": a.tool_id, "type": "function", "function": fn}]
    if a.reasoning:
        msg["reasoning_content"] = a.reasoning
    choice = {"message": msg, "logprobs": None, "finish_reason": _OA_FINISH[a.finish]}
    return orjson.dumps(
        {
            "id": a.id,
            "object": "chat.completion",
            "created": a.created,
            "model": a.model,
            "choices": [{"index": i, **choice} for i in range(a.n)],
            "usage": _oa_usage(a),
            "system_fingerprint": "fp_sim",
        }
    )


def openai_events(a: Answer, include_usage: bool) -> list[bytes]:
    """SSE events (`data: ...\\n\\n`) of a streamed completion, ending with `data: [DONE]`."""
    base = {"id": a.id, "object": "chat.completion.chunk", "created": a.created, "model": a.model}

    def ev(i: int, delta: Json, finish: str | None = None) -> bytes:
        chunk: Json = {
            **base,
            "choices": [{"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:  # like OpenAI: "usage": null on every chunk but the last
            chunk["usage"] = None
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    out: list[bytes] = []
    for i in range(a.n):
        if a.tool_name is not None:
            fn = {"name": a.tool_name, "arguments": ""}
            call = {"index": 0, "id": a.tool_id, "type": "function", "function": fn}
            out.append(ev(i, {"role": "assistant", "content": None, "tool_calls": [call]}))
            for piece in _split(a.tool_args):
                out.append(ev(i, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        else:
            out.append(ev(i, {"role": "assistant", "content": ""}))
            out += [ev(i, {"reasoning_content": w}) for w in words(a.reasoning)]
            out += [ev(i, {"content": w}) for w in words(a.text or "")]
        out.append(ev(i, {}, _OA_FINISH[a.finish]))
    if include_usage:
        out.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": _oa_usage(a)}) + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return out


# --- Anthropic Messages ------------------------------------------------------------------------


def _an_usage(a: Answer, output: int) -> Json:
    return {
        "input_tokens": a.usage["prompt"],
        "output_tokens": output,
        "cache_read_input_tokens": a.usage["cache_read"],
        "cache_creation_input_tokens": a.usage["cache_creation"],
    }


def _an_message(a: Answer, content: list[Json], done: bool) -> Json:
    return {
        "id": a.id,
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": content,
        "stop_reason": _AN_FINISH[a.finish] if done else None,
        "stop_sequence": a.stop_seq if done else None,
        "usage": _an_usage(a, a.usage["completion"] if done else 1),
    }


def _an_block(a: Answer, full: bool) -> Json:
    if a.tool_name is None:
        return {"type": "text", "text": a.text if full else ""}
    args = orjson.loads(a.tool_args) if full else {}
    return {"type": "tool_use", "id": a.tool_id, "name": a.tool_name, "input": args}


def anthropic_body(a: Answer) -> bytes:
    return orjson.dumps(_an_message(a, [_an_block(a, True)], True))


def anthropic_events(a: Answer) -> list[bytes]:
    """Anthropic streaming event grammar: message_start, block start/deltas/stop, message_delta/stop."""

    def ev(kind: str, data: Json) -> bytes:
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"

    out = [
        ev("message_start", {"message": _an_message(a, [], False)}),
        ev("content_block_start", {"index": 0, "content_block": _an_block(a, False)}),
        ev("ping", {}),
    ]
    if a.tool_name is None:
        deltas = [{"type": "text_delta", "text": w} for w in words(a.text or "")]
    else:
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *_split(a.tool_args)]]
    out += [ev("content_block_delta", {"index": 0, "delta": d}) for d in deltas]
    out.append(ev("content_block_stop", {"index": 0}))
    stop = {"stop_reason": _AN_FINISH[a.finish], "stop_sequence": a.stop_seq}
    out.append(ev("message_delta", {"delta": stop, "usage": {"output_tokens": a.usage["completion"]}}))
    out.append(ev("message_stop", {}))
    return out


# --- errors ------------------------------------------------------------------------------------

_OA_ERR = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
           404: "not_found_error", 429: "rate_limit_exceeded"}  # fmt: skip
_AN_ERR = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
           404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
           529: "overloaded_error"}  # fmt: skip


def error_body(status: int, anthropic: bool, message: str | None = None) -> bytes:
    """Provider-shaped error body for `status`."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    msg = message or f"simulated upstream error {status} ({phrase})"
    if anthropic:
        return orjson.dumps(
            {"type": "error", "error": {"type": _AN_ERR.get(status, "api_error"), "message": msg}}
        )
    kind = _OA_ERR.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return orjson.dumps({"error": {"message": msg, "type": kind, "param": None, "code": kind}})


def garbage_event(anthropic: bool) -> bytes:
    """A stream event whose data line is not JSON."""
    return (b"event: message_start\n" if anthropic else b"") + b"data: " + GARBAGE + b"\n\n"
