"""Approval and callback links: unguessable tokens that are stored only as a hash.

token = HMAC-SHA256(key, run|task|attempt|kind|nonce), 256 bits, base64url.
The store keeps sha256(token) as the key of the token item and the random
128-bit nonce on the task; only a holder of the key (the deployment's secret)
can turn a nonce back into a link, so a leaked table yields no usable link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


class LinkSigner:
    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("the link key must be at least 16 bytes")
        self._key = key

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_hex(16)

    def token(self, run_id: str, task_id: str, attempt: int, kind: str, nonce: str) -> str:
        message = f"{run_id}|{task_id}|{attempt}|{kind}|{nonce}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def csrf(self, token: str) -> str:
        """The approval form's anti-forgery value: only a page served for this link carries it."""
        return hmac.new(self._key, f"csrf|{token}".encode(), hashlib.sha256).hexdigest()[:32]
