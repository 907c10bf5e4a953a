"""Error bodies in OpenAI's shape: `{"error": {"message", "type", "code", "param"}}`."""

from __future__ import annotations

import orjson

# HTTP status → OpenAI error type, as the official SDKs map them.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "server_error",
    504: "timeout_error",
}


# HTTP status → Anthropic error type (docs.anthropic.com/en/api/errors).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    return _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


class GatewayError(Exception):
    """An error the client should see, with the HTTP status and an OpenAI-style code.

    `surface` picks the wire shape: OpenAI's by default, Anthropic's on /v1/messages."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        *,
        param: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or []
        self.surface = "openai"

    @property
    def type(self) -> str:
        return _TYPES.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error")

    def body(self) -> bytes:
        return self.anthropic_body() if self.surface == "anthropic" else self.openai_body()

    def anthropic_body(self) -> bytes:
        return orjson.dumps(
            {"type": "error", "error": {"type": anthropic_error_type(self.status), "message": self.message}}
        )

    def openai_body(self) -> bytes:
        return orjson.dumps(
            {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        )
