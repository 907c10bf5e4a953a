"""Upstream failures: which are retried, what the upstream said, and keeping secrets out of it."""

from __future__ import annotations

import re

import orjson

# The request (or our credentials) is wrong everywhere: trying another deployment cannot help.
NEVER_RETRY = frozenset({400, 401, 403, 404, 422})
_KEYLIKE = re.compile(r"\b(sk|pk|rk|key|api[-_]?key)[-_][A-Za-z0-9*._-]{6,}", re.IGNORECASE)


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with every configured secret, and anything shaped like an API key, replaced by ***."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return _KEYLIKE.sub("***", text)


def retry_after(value: bytes | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None  # HTTP-date form: rare from LLM APIs; fall back to our own backoff


def error_message(raw: bytes) -> str:
    try:
        data = orjson.loads(raw)
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])[:500]
        if isinstance(err, str):
            return err[:500]
    except orjson.JSONDecodeError:
        pass
    return raw[:200].decode("utf-8", "replace")
