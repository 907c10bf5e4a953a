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
    __slots__ = ("_commit", "_fast", "_forward", "_out", "_splitter", "committed", "error", "translator")

    def __init__(
        self, translator: StreamTranslator, commit: Callable[[bytes], None], forward: Callable[[bytes], None]
    ) -> None:
        self.translator = translator
        # Optional: a translator that can pass a whole block of events through untouched says so here,
        # and the per-event work (split, inspect, re-join) is skipped for the common block.
        self._fast: Callable[[bytes], bytes | None] | None = getattr(translator, "fast_block", None)
        self._commit = commit  # sends the response head plus the first events
        self._forward = forward  # sends further events
        self._splitter = EventSplitter()  # keeps the start of an event whose end has not arrived yet
        self._out: list[bytes] = []  # translated bytes not yet written, until the end of this network read
        self.committed = False
        self.error: str | None = None  # set when the stream is unusable before commit

    def feed(self, data: bytes) -> None:
        if self.error is not None:
            return
        block = self._splitter.feed_block(data)
        if not block:
            return
        if self.committed and self._fast is not None:
            passed = self._fast(block)
            if passed is not None:
                self._out.append(passed)
                return
        translate = self.translator.feed
        for event in block.split(b"\n\n"):
            if not event.strip():
                continue
            try:
                out = translate(event)
            except BadUpstreamBody as e:
                if not self.committed:
                    self.error = str(e)
                    self._out.clear()
                    return
                continue
            if out:
                self._out.append(out)

    def flush(self) -> None:
        """Write what the last network read produced, in one piece."""
        if not self._out or self.error is not None:
            return
        out = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out.clear()
        if self.committed:
            self._forward(out)
        else:
            self.committed = True
            self._commit(out)
