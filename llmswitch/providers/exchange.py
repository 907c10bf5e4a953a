"""How one client surface talks to one upstream protocol: request body, full answer, stream events.

The executor is protocol-agnostic; for each (client surface, upstream api) pair it asks for an
`Exchange`. Same-protocol pairs pass bytes through; cross-protocol pairs translate (see `translate/`).
"""

from __future__ import annotations

from typing import Any, Protocol

from llmswitch.pricing.usage import Usage


class BadUpstreamBody(Exception):
    """The upstream answered 200 with something we cannot read: retryable like a 5xx."""


class StreamTranslator(Protocol):
    """Turns upstream SSE events into client SSE bytes, tracking usage as it goes.

    `feed` gets one upstream event (its lines, without the blank line that ended it) and returns the
    bytes to send to the client: zero or more complete SSE events, each ending in a blank line. It raises
    `BadUpstreamBody` if the event cannot be read and nothing has been sent yet (the executor then fails
    over); after that, unreadable events are passed on or skipped, never fatal.
    """

    usage: Usage | None  # the latest usage seen (upstreams may report it in pieces)
    served_model: str | None  # the model the upstream says served the request
    done: bool  # the upstream's end-of-stream marker was seen ([DONE] or message_stop)
    output_events: int  # content-bearing events: a token estimate when a stream dies before its usage

    def feed(self, event: bytes) -> bytes: ...

    def finish(self) -> bytes:
        """Closing events to send after the upstream ended cleanly (empty for pass-through)."""
        ...

    def error_event(self, message: str, code: str) -> bytes:
        """An in-band error event in the client surface's format, for a stream cut mid-way."""
        ...


class Exchange(Protocol):
    """One (client surface, upstream api) pair."""

    def upstream_body(
        self, raw: bytes, body: dict[str, Any], upstream_model: str, stream: bool, want_usage: bool
    ) -> bytes:
        """The request body for the upstream, from the client's raw bytes and their decoded form."""
        ...

    def complete(self, raw: bytes, upstream_model: str) -> tuple[bytes, Usage | None, str]:
        """A full (non-streamed) upstream answer → (client body, usage, served model).

        Raises `BadUpstreamBody` when the answer is not what the protocol promises."""
        ...

    def stream(self, want_usage: bool, client_body: dict[str, Any]) -> StreamTranslator: ...
