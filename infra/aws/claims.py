"""JSON values as DynamoDB attributes, with the claim check for large ones.

A value is stored as its JSON text (``{"S": ...}``); a value whose JSON is
larger than ``threshold`` bytes goes to S3 and the attribute becomes a map
``{"claim": <sha256>, "bytes": n}``. The two never mix up: user data is always
a string attribute, a claim always a map. Loading resolves a claim
transparently, so the engine never sees the difference. The threshold keeps
each item far below DynamoDB's 400 KB (a run item holds the inputs and every
variable; a task item its output, error and request) and each transaction
below 4 MB. A compiled plan is already JSON text (``dump_text``): a 2,000-task
chain is over 1 MB, so a large plan is a claim in its definitions item too.
"""

from __future__ import annotations

import json
from typing import Any

from ..ports import Payloads, StoreError

DEFAULT_THRESHOLD = 32 * 1024


class JsonAttributes:
    def __init__(self, payloads: Payloads | None = None, threshold: int = DEFAULT_THRESHOLD):
        self.payloads = payloads
        self.threshold = threshold

    def dump(self, value: Any) -> dict[str, Any]:
        # NaN and Infinity are not JSON: the engine refuses them before a write, and this never writes one.
        return self.dump_text(json.dumps(value, separators=(",", ":"), allow_nan=False))

    def load(self, attribute: dict[str, Any]) -> Any:
        return json.loads(self.load_text(attribute))

    def dump_text(self, text: str) -> dict[str, Any]:
        """JSON text as an attribute: inline, or a claim on an S3 object when over the threshold."""
        if self.payloads is None or len(text) <= self.threshold:
            return {"S": text}
        data = text.encode()
        return {"M": {"claim": {"S": self.payloads.put(data)}, "bytes": {"N": str(len(data))}}}

    def load_text(self, attribute: dict[str, Any]) -> str:
        if "S" in attribute:
            return attribute["S"]
        claim = attribute["M"]["claim"]["S"]
        if self.payloads is None:
            raise StoreError(f"value {claim} is in the payload bucket, and no bucket is configured")
        return self.payloads.get(claim).decode()


def dump_message(message: dict[str, Any], payloads: Payloads | None, limit: int) -> str:
    """An SQS body: the message's JSON, or a claim on it when larger than ``limit`` (the SQS
    Extended Client's pattern: only the start of a run with large inputs needs it)."""
    body = json.dumps(message, separators=(",", ":"))
    if payloads is None or len(body.encode()) <= limit:
        return body
    return json.dumps({"$claim": payloads.put(body.encode())})


def load_message(body: str, payloads: Payloads | None) -> dict[str, Any]:
    message = json.loads(body)
    if isinstance(message, dict) and set(message) == {"$claim"}:
        if payloads is None:
            raise StoreError("a claimed message, and no payload bucket is configured")
        message = json.loads(payloads.get(message["$claim"]))
    return message
