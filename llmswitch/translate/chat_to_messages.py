"""OpenAI Chat Completions request → Anthropic Messages request (for `api: anthropic` upstreams).

Choices where the protocols differ:
- system / developer messages, wherever they are, are joined (blank line) into the top-level `system`.
- `role: tool` messages become `tool_result` blocks of a user turn; consecutive same-role messages are
  merged into one turn, because Anthropic requires user and assistant to alternate.
- Empty text is skipped (Anthropic refuses empty text blocks). Tool-call ids are rewritten to the
  characters Anthropic accepts, the same way in tool_use and tool_result, so pairs still match.
- `max_tokens` is required by Anthropic: `max_completion_tokens`, else `max_tokens`, else 4096.
- `temperature` is capped at 1 (Anthropic's range is 0-1, OpenAI's 0-2); when both `temperature` and
  `top_p` are set only `temperature` is sent, since current Claude models refuse the pair.
- `response_format` json_object / json_schema has no Anthropic field: an instruction to answer with JSON
  (and the schema) is appended to the system prompt. Nothing enforces it; the text is not validated.
- `reasoning_content` on past assistant turns is dropped (Claude needs signed thinking blocks); a
  non-standard `thinking` object (as DeepSeek's extra_body) is passed through. `n`, `logprobs`,
  `seed`, penalties and `stream_options` have no equivalent and are dropped.
"""

from __future__ import annotations

from typing import Any

import orjson

from llmswitch.translate._util import Json, anthropic_tool_id, dump, text_of
from llmswitch.translate.messages_to_chat import BadClientBody

DEFAULT_MAX_TOKENS = 4096
_TOOL_CHOICE = {"auto": "auto", "required": "any", "none": "none"}


def messages_request(body: Json, upstream_model: str, stream: bool) -> Json:
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadClientBody("messages: a list is required")
    system, turns = _turns(messages)
    system += _json_instruction(body.get("response_format"))
    out: Json = {"model": upstream_model, "messages": turns}
    if system:
        out["system"] = "\n\n".join(system)
    limit = body.get("max_completion_tokens")
    limit = body.get("max_tokens") if limit is None else limit
    out["max_tokens"] = limit if type(limit) is int and limit > 0 else DEFAULT_MAX_TOKENS
    temperature = body.get("temperature")
    if isinstance(temperature, int | float):
        out["temperature"] = min(float(temperature), 1.0)
    elif isinstance(body.get("top_p"), int | float):
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    stops = [s for s in stops if isinstance(s, str) and s]
    if stops:
        out["stop_sequences"] = stops
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    tools = _tools(body.get("tools"))
    if tools:
        out["tools"] = tools
        choice = _tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False:
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if choice is not None:
            out["tool_choice"] = choice
    if isinstance(body.get("thinking"), dict):
        out["thinking"] = body["thinking"]
    if stream:
        out["stream"] = True  # Anthropic streams always carry usage
    return out


def _turns(messages: list[Any]) -> tuple[list[str], list[Json]]:
    system: list[str] = []
    turns: list[Json] = []
    for m in messages:
        if not isinstance(m, dict):
            raise BadClientBody("messages: each message must be an object")
        role = m.get("role")
        if role in ("system", "developer"):
            text = text_of(m.get("content"), "\n")
            if text:
                system.append(text)
            continue
        if role == "tool":
            role, blocks = "user", [_tool_result(m)]
        elif role == "user":
            blocks = _user_blocks(m.get("content"))
        elif role == "assistant":
            blocks = _assistant_blocks(m)
        else:
            continue  # the deprecated "function" role
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _user_blocks(content: Any) -> list[Json]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out: list[Json] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and isinstance(part.get("text"), str) and part["text"]:
            out.append({"type": "text", "text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str) and url:
                out.append({"type": "image", "source": _source(url)})
        elif kind == "file":
            file = part.get("file")
            data = file.get("file_data") if isinstance(file, dict) else None
            if isinstance(data, str) and data.startswith("data:"):
                out.append({"type": "document", "source": _source(data)})
    return out


def _source(url: str) -> Json:
    """A data: URL → base64 source; anything else → url source."""
    if url.startswith("data:") and ";base64," in url:
        head, data = url[5:].split(";base64,", 1)
        return {"type": "base64", "media_type": head or "application/octet-stream", "data": data}
    return {"type": "url", "url": url}


def _assistant_blocks(m: Json) -> list[Json]:
    out: list[Json] = []
    content = m.get("content")
    parts = content if isinstance(content, list) else []
    pieces = [p.get("text") or p.get("refusal") or "" for p in parts if isinstance(p, dict)]
    if not all(isinstance(t, str) for t in pieces):
        raise BadClientBody("messages: an assistant content part's text must be a string")
    text = content if isinstance(content, str) else "".join(pieces)
    if text:
        out.append({"type": "text", "text": text})
    calls = m.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            continue
        out.append(
            {
                "type": "tool_use",
                "id": anthropic_tool_id(call.get("id")),
                "name": str(fn.get("name", "")),
                "input": _arguments(fn.get("arguments")),
            }
        )
    return out


def _arguments(args: Any) -> Json:
    """Tool-call arguments (a JSON string) → the input object; Anthropic needs an object."""
    if isinstance(args, dict):
        return args
    try:
        value = orjson.loads(args) if isinstance(args, str) and args else {}
    except orjson.JSONDecodeError:
        return {"arguments": args}  # keep what the model wrote rather than lose it
    return value if isinstance(value, dict) else {"value": value}


def _tool_result(m: Json) -> Json:
    block: Json = {"type": "tool_result", "tool_use_id": anthropic_tool_id(m.get("tool_call_id"))}
    text = text_of(m.get("content"), "\n")
    if text:
        block["content"] = text
    return block


def _tools(tools: Any) -> list[Json]:
    out: list[Json] = []
    for t in tools if isinstance(tools, list) else []:
        fn = t.get("function") if isinstance(t, dict) and t.get("type", "function") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            continue
        tool: Json = {"name": fn["name"]}
        if isinstance(fn.get("description"), str):
            tool["description"] = fn["description"]
        params = fn.get("parameters")
        tool["input_schema"] = params if isinstance(params, dict) else {"type": "object", "properties": {}}
        out.append(tool)
    return out


def _tool_choice(choice: Any) -> Json | None:
    if isinstance(choice, str) and choice in _TOOL_CHOICE:
        return {"type": _TOOL_CHOICE[choice]}
    if isinstance(choice, dict):
        fn = choice.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return {"type": "tool", "name": fn["name"]}
    return None


def _json_instruction(fmt: Any) -> list[str]:
    if not isinstance(fmt, dict):
        return []
    if fmt.get("type") == "json_object":
        return ["Respond only with a single valid JSON object, with no text before or after it."]
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return [
            "Respond only with a single valid JSON object, with no text before or after it, "
            "that conforms to this JSON Schema:\n" + dump(schema if schema is not None else {})
        ]
    return []
