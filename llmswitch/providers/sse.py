"""Server-sent events: split an upstream byte stream into whole events, whatever the chunk boundaries."""

from __future__ import annotations


class EventSplitter:
    """Feed bytes, get complete events (each without its blank-line terminator)."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        if b"\r" in buf:  # normalise CRLF framing once; rare in practice
            buf = buf.replace(b"\r\n", b"\n")
        events = buf.split(b"\n\n")
        self._buf = events.pop()
        return [e for e in events if e.strip()]

    @property
    def pending(self) -> bytes:
        return self._buf


def event_data(event: bytes) -> bytes | None:
    """The payload of an event's `data:` line(s); None for comment-only or data-less events."""
    if event.startswith(b"data:") and b"\n" not in event:
        return event[5:].strip()
    parts = [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(parts) if parts else None
