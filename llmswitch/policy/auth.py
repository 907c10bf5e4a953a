"""Client keys: `Authorization: Bearer <key>` checked against configured keys, stored only as sha256."""

from __future__ import annotations

import hashlib

from llmswitch.config import ClientKey


class KeyStore:
    def __init__(self, keys: list[ClientKey]) -> None:
        self._by_digest: dict[bytes, str] = {}
        for k in keys:
            digest = (
                hashlib.sha256(k.key.encode()).digest()
                if k.key is not None
                else bytes.fromhex(k.sha256 or "")
            )
            self._by_digest[digest] = k.id

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def identify(self, token: bytes) -> str | None:
        """The key id for a presented token, or None.

        The presented token is hashed first and only digests are ever compared, so how long a lookup takes
        reveals nothing about a stored key's bytes (an attacker controls the digest only through sha256).
        """
        return self._by_digest.get(hashlib.sha256(token).digest())


def bearer_token(authorization: bytes | None) -> bytes | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return None
    return token.strip()
