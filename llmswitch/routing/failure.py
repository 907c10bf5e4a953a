"""How an attempt at one deployment failed, shared by the executor's async path and its fast path."""

from __future__ import annotations

from llmswitch.api.errors import GatewayError


class AttemptFailure(Exception):
    """An attempt failed. `final` is set when the client must get that error and nothing else is tried."""

    def __init__(
        self,
        error_class: str,
        message: str,
        http_status: int | None = None,
        retry_after: float | None = None,
        final: GatewayError | None = None,
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.http_status = http_status
        self.retry_after = retry_after
        self.final = final
