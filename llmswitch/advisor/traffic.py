"""The traffic to replay: logged exchanges (`logging.bodies: true`) or a JSONL file, normalised into
replayable OpenAI chat requests.

A JSONL record is ``{"messages": [...], "response": "...", "model": "..."}`` (OpenAI chat format);
``response`` may also be a whole ``chat.completion`` object, ``request`` may carry a full request body
instead of ``messages``, and ``tags`` (object), ``category`` and ``reference`` (the known right final
answer, checked exactly) are optional. Anthropic-surface logs are converted to chat format (text, system).

Not replayable, skipped and counted: requests with tools or functions (a tool call is not an answer a
judge can compare without running the tools), images or other non-text parts, and anything without a
user/assistant message. Identical requests are replayed once (the sample is keyed by the request).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmswitch.categories import category_of_messages

__all__ = ["Exchange", "Traffic", "from_jsonl", "from_logged", "normalise"]

# Request fields that change the answer and are replayed as they were; the rest (model, stream, n,
# user, metadata, logprobs...) is dropped or set by the replayer.
_KEPT = (
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "response_format", "stop", "seed",
    "presence_penalty", "frequency_penalty", "reasoning_effort",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Exchange:
    """One replayable request."""

    key: str  # content hash of `request`: the sample, the cache and the report are keyed by it
    request: dict[str, Any]  # OpenAI chat body without `model` and streaming options
    response: str | None  # what the logged model answered (informational)
    model: str | None  # the model it was sent to
    category: str
    tags: dict[str, str] = field(default_factory=dict)
    reference: str | None = None  # a known right final answer, if the log says

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "request": self.request,
            "response": self.response,
            "model": self.model,
            "category": self.category,
            "tags": self.tags,
            "reference": self.reference,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Exchange:
        return cls(
            d["key"],
            d["request"],
            d.get("response"),
            d.get("model"),
            d["category"],
            dict(d.get("tags") or {}),
            d.get("reference"),
        )


@dataclass(slots=True)
class Traffic:
    exchanges: list[Exchange]
    skipped: Counter[str]  # reason -> count
    source: str  # for reports: "log FILE" or "ledger URL, last 7d"
    total: int = 0  # records read


def request_key(request: Mapping[str, Any]) -> str:
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _text_only(content: Any) -> str | None:
    """Plain text of a message content, or None if it holds anything but text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for p in content:
            if isinstance(p, str):
                parts.append(p)
            elif isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str):
                parts.append(p["text"])
            else:
                return None
        return "\n".join(parts)
    return None


def _from_anthropic(body: Mapping[str, Any]) -> dict[str, Any] | str:
    """An Anthropic Messages body as an OpenAI chat body, or the reason it cannot be replayed."""
    if body.get("tools"):
        return "tools"
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        text = _text_only(system)
        if text is None:
            return "non-text content"
        messages.append({"role": "system", "content": text})
    for m in body.get("messages") or []:
        text = _text_only(m.get("content")) if isinstance(m, dict) else None
        if text is None:
            return "non-text content"
        messages.append({"role": m.get("role", "user"), "content": text})
    out: dict[str, Any] = {"messages": messages}
    for k in ("temperature", "top_p", "max_tokens"):
        if k in body:
            out[k] = body[k]
    if body.get("stop_sequences"):
        out["stop"] = body["stop_sequences"]
    return out


def _from_openai(body: Mapping[str, Any]) -> dict[str, Any] | str:
    if body.get("tools") or body.get("functions"):
        return "tools"
    messages = []
    for m in body.get("messages") or []:
        if not isinstance(m, dict) or m.get("role") in ("tool", "function") or m.get("tool_calls"):
            return "tools"
        text = _text_only(m.get("content"))
        if text is None:
            return "non-text content"
        messages.append({"role": m.get("role", "user"), "content": text})
    out: dict[str, Any] = {"messages": messages}
    out.update({k: body[k] for k in _KEPT if body.get(k) is not None})
    return out


def _response_text(response: Any) -> str | None:
    if isinstance(response, str):
        return response
    if isinstance(response, dict):  # a chat.completion object
        choices = response.get("choices") or []
        if choices and isinstance(choices[0], dict):
            content = (choices[0].get("message") or {}).get("content")
            return content if isinstance(content, str) else None
    return None


def normalise(
    body: Mapping[str, Any],
    *,
    surface: str = "openai",
    response: Any = None,
    model: str | None = None,
    tags: Mapping[str, Any] | None = None,
    category: str | None = None,
    reference: Any = None,
) -> Exchange | str:
    """A replayable `Exchange`, or the reason the request is skipped."""
    converted = _from_anthropic(body) if surface == "anthropic" else _from_openai(body)
    if isinstance(converted, str):
        return converted
    messages = converted["messages"]
    if not any(m["role"] == "user" for m in messages):
        return "no user message"
    if messages[-1]["role"] == "assistant":
        return "ends with an assistant turn"
    return Exchange(
        key=request_key(converted),
        request=converted,
        response=_response_text(response),
        model=model,
        category=category or category_of_messages(messages),
        tags={str(k): str(v) for k, v in (tags or {}).items()},
        reference=None if reference is None else str(reference),
    )


def _collect(items: Iterable[Exchange | str], source: str) -> Traffic:
    seen: dict[str, Exchange] = {}
    skipped: Counter[str] = Counter()
    total = 0
    for item in items:
        total += 1
        if isinstance(item, str):
            skipped[item] += 1
        elif item.key in seen:
            skipped["duplicate"] += 1
        else:
            seen[item.key] = item
    return Traffic(list(seen.values()), skipped, source, total)


def from_jsonl(path: str | Path) -> Traffic:
    def items() -> Iterable[Exchange | str]:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    yield "unreadable line"
                    continue
                if not isinstance(rec, dict):
                    yield "unreadable line"
                    continue
                body: dict[str, Any] = rec["request"] if isinstance(rec.get("request"), dict) else rec
                if not isinstance(body.get("messages"), list):
                    yield "no messages"
                    continue
                yield normalise(
                    body,
                    response=rec.get("response"),
                    model=rec.get("model") if isinstance(rec.get("model"), str) else None,
                    tags=rec.get("tags") if isinstance(rec.get("tags"), dict) else None,
                    category=rec.get("category") if isinstance(rec.get("category"), str) else None,
                    reference=rec.get("reference"),
                )

    return _collect(items(), f"log {path}")


def from_logged(url: str, since_seconds: float | None) -> Traffic:
    """Exchanges the gateway logged (`logging.bodies: true`) in the window."""
    from llmswitch.ledger.bodies import read_logged

    logged = read_logged(url, since_seconds=since_seconds)
    items = (
        normalise(x.request, surface=x.surface, response=x.response_text, model=x.model, tags=x.tags)
        for x in logged
        if not x.tags.get("llmswitch-advise")  # never replay our own replays
    )
    return _collect(items, f"ledger {url}")


def for_baseline(traffic: Traffic, baseline: str) -> tuple[list[Exchange], str]:
    """The traffic the decision is about: requests sent to the baseline model if there are any (that is
    what a switch would move), else all of it. Returns (exchanges, description)."""
    own = [x for x in traffic.exchanges if x.model == baseline]
    if own:
        return own, f"{len(own)} requests to {baseline}"
    return traffic.exchanges, f"{len(traffic.exchanges)} requests (none named {baseline}: all models)"
