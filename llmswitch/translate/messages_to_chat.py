"""Anthropic Messages request → OpenAI Chat Completions request (for OpenAI-compatible upstreams).

Choices where the protocols differ:
- `cache_control` markers are dropped (OpenAI-compatible servers cache prefixes on their own).
- The system prompt (string or text blocks) becomes one system message, blocks joined by a blank line.
- A user turn whose blocks are all text becomes a string (the blocks joined by a newline, as vLLM renders
  text parts): several open-model servers accept only string content. Images keep the part-list form.
- `tool_result` blocks become `role: tool` messages right after the assistant turn that made the calls;
  the rest of that user turn (text, images, and images a tool returned) follows as one user message.
- Assistant `thinking` blocks become `reasoning_content`: DeepSeek and Kimi require it back on turns
  with tool calls. `redacted_thinking` (opaque) and server tools (no `input_schema`) have no equivalent.
- `top_k` has no OpenAI field and is dropped; `thinking` needs no upstream field (it only decides whether
  the answer's reasoning is shown), nor does `anthropic-beta`.
"""

from __future__ import annotations

from typing import Any

from llmswitch.translate._util import Json, dump, new_id, text_of

_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}


class BadClientBody(ValueError):
    """The client's request is not a Messages request we can translate (→ 400 invalid_request_error)."""


def check_messages_body(body: Json) -> str | None:
    """Why `body` is not a valid Messages request, or None. Light: the upstream judges the details."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: a model name is required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: a non-empty list is required"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            return f"messages.{i}: each message needs role 'user' or 'assistant'"
        if not isinstance(m.get("content"), str | list):
            return f"messages.{i}.content: a string or a list of content blocks is required"
    max_tokens = body.get("max_tokens")
    if type(max_tokens) is not int or max_tokens < 1:
        return "max_tokens: a positive integer is required"
    return None


def chat_request(body: Json, upstream_model: str, stream: bool) -> Json:
    """The OpenAI request body for an Anthropic request `body` (assumed to pass `check_messages_body`)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadClientBody("messages: a list is required")
    out: Json = {"model": upstream_model, "messages": chat_messages(body.get("system"), messages)}
    if type(body.get("max_tokens")) is int:
        out["max_tokens"] = body["max_tokens"]
    for key in ("temperature", "top_p"):
        if isinstance(body.get(key), int | float):
            out[key] = body[key]
    stops = stop_sequences(body)
    if stops:
        out["stop"] = stops
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    tools = chat_tools(body.get("tools"))
    if tools:
        out["tools"] = tools
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            kind = choice.get("type")
            if kind == "tool" and isinstance(choice.get("name"), str):
                out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
            elif kind in _TOOL_CHOICE:
                out["tool_choice"] = _TOOL_CHOICE[kind]
            if choice.get("disable_parallel_tool_use") is True:
                out["parallel_tool_calls"] = False
    if stream:
        # Always: the Anthropic stream's final message_delta must carry usage, wanted or not.
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def stop_sequences(body: Json) -> list[str]:
    stops = body.get("stop_sequences")
    return [s for s in stops if isinstance(s, str) and s] if isinstance(stops, list) else []


def chat_tools(tools: Any) -> list[Json]:
    out: list[Json] = []
    for t in tools if isinstance(tools, list) else []:
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or "input_schema" not in t:
            continue  # server tools (web_search_…, bash_…, text_editor_…) run at Anthropic only
        fn: Json = {"name": t["name"]}
        if isinstance(t.get("description"), str):
            fn["description"] = t["description"]
        fn["parameters"] = t["input_schema"]
        out.append({"type": "function", "function": fn})
    return out


def chat_messages(system: Any, messages: list[Any]) -> list[Json]:
    out: list[Json] = []
    system_text = text_of(system, "\n\n")
    if system_text:
        out.append({"role": "system", "content": system_text})
    for m in messages:
        if not isinstance(m, dict):
            raise BadClientBody("messages: each message must be an object")
        role, content = m.get("role"), m.get("content")
        if role not in ("user", "assistant"):
            raise BadClientBody(f"messages: unknown role {role!r}")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
            continue
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        if role == "assistant":
            out.append(_assistant(blocks))
        else:
            out.extend(_user(blocks))
    return out


def _assistant(blocks: list[Json]) -> Json:
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[Json] = []
    for b in blocks:
        kind = b.get("type")
        if kind == "text" and isinstance(b.get("text"), str):
            texts.append(b["text"])  # consecutive text blocks are one answer split (e.g. by citations)
        elif kind == "tool_use":
            tool_input = b.get("input")
            args = dump(tool_input if tool_input is not None else {})
            fn = {"name": str(b.get("name", "")), "arguments": args}
            call_id = b.get("id")
            calls.append(
                {
                    "id": call_id if isinstance(call_id, str) and call_id else new_id("call_"),
                    "type": "function",
                    "function": fn,
                }
            )
        elif kind == "thinking" and isinstance(b.get("thinking"), str):
            thoughts.append(b["thinking"])
    msg: Json = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        msg["tool_calls"] = calls
    if thoughts:
        msg["reasoning_content"] = "\n\n".join(thoughts)
    return msg


def _user(blocks: list[Json]) -> list[Json]:
    """One Anthropic user turn → `tool` messages first (they must follow the calls), then the rest."""
    tool_msgs: list[Json] = []
    tool_parts: list[Json] = []  # what a tool returned that a tool message cannot hold (images)
    parts: list[Json] = []
    for b in blocks:
        kind = b.get("type")
        if kind == "tool_result":
            text, images = _tool_result(b)
            tool_msgs.append({"role": "tool", "tool_call_id": str(b.get("tool_use_id", "")), "content": text})
            if images:
                label = f"(images returned by tool call {b.get('tool_use_id')})"
                tool_parts.append({"type": "text", "text": label})
                tool_parts.extend(images)
        else:
            part = _part(b)
            if part is not None:
                parts.append(part)
    parts = tool_parts + parts
    if not parts:
        return tool_msgs if tool_msgs else [{"role": "user", "content": ""}]
    if all(p["type"] == "text" for p in parts):
        return [*tool_msgs, {"role": "user", "content": "\n".join(p["text"] for p in parts)}]
    return [*tool_msgs, {"role": "user", "content": parts}]


def _tool_result(b: Json) -> tuple[str, list[Json]]:
    content = b.get("content")
    images: list[Json] = []
    if isinstance(content, list):
        texts = []
        for c in content:
            part = _part(c) if isinstance(c, dict) else None
            if part is not None and part["type"] == "text":
                texts.append(part["text"])
            elif part is not None:
                images.append(part)
        text = "\n".join(texts)
    else:
        text = content if isinstance(content, str) else ""
    if b.get("is_error") is True:
        text = "Error: " + text  # OpenAI has no error flag on tool results: say it in the text
    return text, images


def _part(b: Json) -> Json | None:
    """A user content block → an OpenAI content part; None for what has no equivalent."""
    kind = b.get("type")
    if kind == "text" and isinstance(b.get("text"), str):
        return {"type": "text", "text": b["text"]}
    source = b.get("source")
    if not isinstance(source, dict):
        return None
    if kind == "image":
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
        elif source.get("type") == "url" and isinstance(source.get("url"), str):
            url = source["url"]
        else:
            return None  # Files-API ids mean nothing to another provider
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "document":
        if source.get("type") == "text" and isinstance(source.get("data"), str):
            return {"type": "text", "text": source["data"]}
        if source.get("type") == "base64":
            media = source.get("media_type", "application/pdf")
            file = {"file_data": f"data:{media};base64,{source.get('data', '')}"}
            if isinstance(b.get("title"), str):
                file["filename"] = b["title"]
            return {"type": "file", "file": file}
    return None
