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
        # Optional: a translator that can pass leading events of a block through untouched says how many
        # bytes (`fast_prefix`), and the per-event work (split, inspect, re-join) is skipped for them.
        self._fast: Callable[[bytes], int] | None = getattr(translator, "fast_prefix", None)
        self._commit = commit  # sends the response head plus the first events
        self._forward = forward  # sends further events
        self._splitter = EventSplitter()  # keeps the start of an event whose end has not arrived yet
        self._out: list[bytes] = []  # translated bytes not yet written, until the end of this network read
        self.committed = False
        self.error: str | None = None  # set when the stream is unusable before commit

    def close(self) -> None:
        """Drop the callbacks once the stream is over: they close over the relay's owner, and that cycle
        would leave each stream's objects to the garbage collector (whose pauses are latency)."""
        self._commit = self._forward = _ignore

    def feed(self, data: bytes) -> None:
        if self.error is not None:
            return
        block = self._splitter.feed_block(data)
        fast = self._fast
        if fast is None:
            for event in block.split(b"\n\n"):
                if not self._translate(event):
                    return
            return
        while block:  # untouched runs of events in one piece, the others one by one
            n = fast(block)
            if n:
                if n == len(block):
                    self._out.append(block)
                    return
                self._out.append(block[:n])
                block = block[n:]
            event, _, block = block.partition(b"\n\n")
            if not self._translate(event):
                return

    def _translate(self, event: bytes) -> bool:
        """One event through the translator; False once the stream is unusable (nothing sent yet)."""
        if not event.strip():
            return True
        try:
            out = self.translator.feed(event)
        except BadUpstreamBody as e:
            if not self.committed:
                self.error = str(e)
                self._out.clear()
                return False
            return True
        if out:
            self._out.append(out)
        return True

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


def _ignore(data: bytes) -> None:
    """A closed relay's callbacks."""
