"""Relay an OpenAI-style SSE stream from an upstream to the client, event by event.

Nothing reaches the client until the first well-formed event has arrived: until then the attempt can still
fail over to another deployment. After that, each batch of events is written as it arrives (no buffering
beyond event boundaries), the usage chunk is read for pricing and dropped unless the client asked for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from llmswitch.pricing.usage import Usage
from llmswitch.providers.openai import parse_usage
from llmswitch.providers.sse import EventSplitter, event_data


class StreamRelay:
    __slots__ = (
        "_commit",
        "_forward",
        "_held",
        "_splitter",
        "committed",
        "content_events",
        "done_seen",
        "error",
        "served_model",
        "usage",
        "want_usage",
    )

    def __init__(
        self, want_usage: bool, commit: Callable[[bytes], None], forward: Callable[[bytes], None]
    ) -> None:
        self.want_usage = want_usage
        self._commit = commit  # sends the response head plus the first events
        self._forward = forward  # sends further events
        self._splitter = EventSplitter()
        self._held: list[bytes] = []
        self.committed = False
        self.done_seen = False
        self.error: str | None = None  # set when the stream is unusable before commit ("bad_body")
        self.usage: Usage | None = None
        self.served_model: str | None = None
        self.content_events = 0  # a fallback token count when a stream dies before its usage chunk

    def feed(self, data: bytes) -> None:
        if self.error is not None:
            return
        out: list[bytes] = []
        for event in self._splitter.feed(data):
            payload = event_data(event)
            if payload is None:  # comments / keep-alives: forward as they are
                out.append(event)
                continue
            if payload == b"[DONE]":
                self.done_seen = True
                out.append(event)
                continue
            # Parse only what we must: the first event (is the stream sound?) and usage-bearing ones.
            # With include_usage, OpenAI puts `"usage":null` on every chunk; those need no parse.
            if not self.committed or (b'"usage"' in payload and b'"usage":null' not in payload):
                chunk = self._parse(payload)
                if chunk is None:
                    if not self.committed:
                        self.error = "bad_body"
                        return
                    out.append(event)  # an unreadable event mid-stream: the client judges it
                    continue
                if self.served_model is None and isinstance(chunk.get("model"), str):
                    self.served_model = chunk["model"]
                usage = parse_usage(chunk.get("usage"))
                if usage is not None:
                    self.usage = usage
                    if not self.want_usage and not chunk.get("choices"):
                        continue  # the usage-only chunk we asked for on the client's behalf
            self.content_events += 1
            out.append(event)
        if not out:
            return
        if self.committed:
            self._forward(b"\n\n".join(out) + b"\n\n")
        elif self.content_events:
            self.committed = True
            held, self._held = self._held, []
            self._commit(b"\n\n".join(held + out) + b"\n\n")
        else:  # only comments so far: hold them until a real event commits the stream
            self._held.extend(out)

    @staticmethod
    def _parse(payload: bytes) -> dict[str, Any] | None:
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        return obj if isinstance(obj, dict) else None
