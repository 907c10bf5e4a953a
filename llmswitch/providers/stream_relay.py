"""Relay an upstream SSE stream to the client, event by event, through a protocol translator.

Nothing reaches the client until the first event that yields client output has arrived: until then the
attempt can still fail over to another deployment. After that, each batch of events is written as it
arrives (no buffering beyond event boundaries).
"""

from __future__ import annotations

from collections.abc import Callable

from llmswitch.providers.exchange import BadUpstreamBody, StreamTranslator
from llmswitch.providers.sse import EventSplitter


class StreamRelay:
    __slots__ = ("_commit", "_forward", "_splitter", "committed", "error", "translator")

    def __init__(
        self, translator: StreamTranslator, commit: Callable[[bytes], None], forward: Callable[[bytes], None]
    ) -> None:
        self.translator = translator
        self._commit = commit  # sends the response head plus the first events
        self._forward = forward  # sends further events
        self._splitter = EventSplitter()
        self.committed = False
        self.error: str | None = None  # set when the stream is unusable before commit

    def feed(self, data: bytes) -> None:
        if self.error is not None:
            return
        out = b""
        translate = self.translator.feed
        for event in self._splitter.feed(data):
            try:
                out += translate(event)
            except BadUpstreamBody as e:
                if not self.committed:
                    self.error = str(e)
                    return
        if not out:
            return
        if self.committed:
            self._forward(out)
        else:
            self.committed = True
            self._commit(out)
