"""`POST /v1/messages/count_tokens`: an estimate, with no network and no tokenizer download."""

from __future__ import annotations

from typing import Any

import orjson

from llmswitch.translate._util import Json

BYTES_PER_TOKEN = 4  # UTF-8 bytes per token: ~4 for English and code, generous for CJK text
PER_MESSAGE = 4  # role and turn delimiters
PER_TOOL = 8  # the tool-definition wrapper
PER_BLOCK = 2  # content-block framing (tool_use / tool_result ids and delimiters)
PER_IMAGE = 1600  # Anthropic's ceiling for an image (≈ width·height/750, capped at ~1.15 Mpx)
PER_DOCUMENT = 1500  # a binary document: its size in tokens is unknowable without parsing it
SYSTEM_OVERHEAD = 8


def count_tokens_estimate(body: Json) -> int:
    """Estimated input tokens of a Messages request.

    Method: ceil(UTF-8 bytes / 4) of every piece of text the model reads — the system prompt, message
    text, thinking, tool_use names and inputs (as JSON), tool_result content, text documents and each
    tool's name, description and input_schema (as JSON) — plus fixed overheads: 4 tokens per message, 2
    per content block, 8 per tool, 8 for a system prompt, 1600 per image and 1500 per binary document.
    Real tokenizers differ by model (±20-30 % is typical); use it for budgeting, not billing.
    """
    size = 0  # bytes of text
    fixed = 0  # tokens of overhead
    system = body.get("system")
    if system:
        b, f = _content(system)
        size, fixed = size + b, fixed + f + SYSTEM_OVERHEAD
    for m in body.get("messages") or []:
        if isinstance(m, dict):
            b, f = _content(m.get("content"))
            size, fixed = size + b, fixed + f + PER_MESSAGE
    for t in body.get("tools") or []:
        if isinstance(t, dict):
            size += len(orjson.dumps({k: t[k] for k in ("name", "description", "input_schema") if k in t}))
            fixed += PER_TOOL
    return max(1, -(-size // BYTES_PER_TOKEN) + fixed)


def _content(content: Any) -> tuple[int, int]:
    """(bytes of text, fixed tokens) of a content value: a string or a list of blocks."""
    if isinstance(content, str):
        return len(content.encode()), 0
    size = fixed = 0
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        fixed += PER_BLOCK
        kind = block.get("type")
        if kind == "text":
            size += _len(block.get("text"))
        elif kind == "thinking":
            size += _len(block.get("thinking"))
        elif kind == "tool_use":
            size += _len(block.get("name")) + len(orjson.dumps(block.get("input", {})))
        elif kind == "tool_result":
            b, f = _content(block.get("content"))
            size, fixed = size + b, fixed + f
        elif kind == "image":
            fixed += PER_IMAGE
        elif kind == "document":
            source = block.get("source")
            if isinstance(source, dict) and source.get("type") == "text":
                size += _len(source.get("data"))
            elif isinstance(source, dict) and source.get("type") == "content":
                b, f = _content(source.get("content"))
                size, fixed = size + b, fixed + f
            else:
                fixed += PER_DOCUMENT
    return size, fixed


def _len(v: Any) -> int:
    return len(v.encode()) if isinstance(v, str) else 0
