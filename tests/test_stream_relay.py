"""The stream relay with the OpenAI pass-through: runs of plain events skip the per-event path, and the
bytes the client gets do not depend on how the upstream's stream was cut into reads."""

from __future__ import annotations

import pytest

from llmswitch.providers.openai import OpenAIPassthroughStream
from llmswitch.providers.stream_relay import StreamRelay

_HEAD = b'{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini",'
USAGE_EVENT = b"data: " + _HEAD + b'"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":19}}\n\n'
EVENTS = [
    b"data: " + _HEAD + b'"choices":[{"index":0,"delta":{"content":"t%d "},"finish_reason":null}]}\n\n' % i
    for i in range(20)
]
STREAM = b"".join([*EVENTS[:10], b": keep-alive\n\n", *EVENTS[10:], USAGE_EVENT, b"data: [DONE]\n\n"])


def relay(want_usage: bool, step: int) -> tuple[bytes, OpenAIPassthroughStream, StreamRelay]:
    translator = OpenAIPassthroughStream(want_usage)
    out: list[bytes] = []
    r = StreamRelay(translator, out.append, out.append)
    for i in range(0, len(STREAM), step):
        r.feed(STREAM[i : i + step])
        r.flush()
    return b"".join(out), translator, r


@pytest.mark.parametrize("step", [len(STREAM), 1, 7, 100, 333])
@pytest.mark.parametrize("want_usage", [False, True])
def test_every_cut_gives_the_same_bytes(want_usage: bool, step: int) -> None:
    out, translator, r = relay(want_usage, step)
    assert out == (STREAM if want_usage else STREAM.replace(USAGE_EVENT, b""))
    assert r.committed and translator.done and translator.served_model == "gpt-4o-mini"
    assert translator.usage is not None and translator.usage.output_tokens == 19
    assert translator.output_events == 21 if want_usage else 20


def test_fast_prefix_stops_before_events_that_need_a_look() -> None:
    translator = OpenAIPassthroughStream(False)
    assert translator.fast_prefix(STREAM) == 0  # the first event is always read
    translator.feed(EVENTS[0].rstrip(b"\n"))
    tail = b"".join([*EVENTS[1:3], USAGE_EVENT, b"data: [DONE]\n\n"])
    assert translator.fast_prefix(tail) == len(EVENTS[1]) + len(EVENTS[2])
    assert translator.fast_prefix(b"data: [DONE]\n\n") == 0


def test_an_unreadable_first_event_still_fails_before_anything_is_sent() -> None:
    translator = OpenAIPassthroughStream(False)
    sent: list[bytes] = []
    r = StreamRelay(translator, sent.append, sent.append)
    r.feed(b"data: {not json\n\n" + b"".join(EVENTS))
    r.flush()
    assert r.error is not None and not r.committed and not sent
