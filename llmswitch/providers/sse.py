"""Server-sent events: split an upstream byte stream into whole events, whatever the chunk boundaries."""

from __future__ import annotations


class EventSplitter:
    """Feed bytes, get complete events (each without its blank-line terminator)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        return [e for e in self.feed_block(data).split(b"\n\n") if e.strip()]

    def feed_block(self, data: bytes) -> bytes:
        """The complete events received so far, as one block ending in a blank line (b"" if none)."""
        buf = self._buf + data if self._buf else data
        if b"\r" in buf:  # CRLF framing: normalise (a CR split from its LF is completed next time)
            buf = buf.replace(b"\r\n", b"\n")
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            self._buf = buf
            return b""
        self._buf = buf[cut + 2 :]
        return buf[: cut + 2]

    @property
    def pending(self) -> bytes:
        """Bytes of an event not complete yet (what a cut stream left behind)."""
        return self._buf


def event_data(event: bytes) -> bytes | None:
    """The payload of an event's `data:` line(s); None for comment-only or data-less events."""
    if event.startswith(b"data:") and b"\n" not in event:
        return event[5:].strip()
    parts = [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(parts) if parts else None
