"""A small value that validates against a JSON Schema: what the local llm stand-in answers with a response_format.

Deterministic: the same schema and seed give the same value, so a workflow run
locally gives the same answers every time.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from ..base import TaskFailure
from ..common import INVALID_CONFIG


class SchemaSample:
    """A small value that validates against a JSON Schema, chosen deterministically from ``seed``."""

    FORMATS = {
        "date-time": "2000-01-01T00:00:00Z", "date": "2000-01-01", "time": "00:00:00Z",
        "email": "user@example.com", "idn-email": "user@example.com", "hostname": "example.com",
        "idn-hostname": "example.com", "ipv4": "192.0.2.1", "ipv6": "2001:db8::1",
        "uri": "https://example.com/", "uri-reference": "https://example.com/", "iri": "https://example.com/",
        "url": "https://example.com/", "uuid": "00000000-0000-4000-8000-000000000000",
        "duration": "PT1S", "regex": ".*", "json-pointer": "/",
    }

    def __init__(self, root: dict[str, Any], seed: str):
        self.root = root
        self.seed = seed
        self.depth = 0

    def value(self) -> Any:
        return self.sample(self.root, "")

    def _ref(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise TaskFailure(INVALID_CONFIG, f"response_format: only local $ref is supported, not {ref!r}")
        node: Any = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node.get(part)
            if node is None:
                raise TaskFailure(INVALID_CONFIG, f"response_format: $ref {ref!r} points nowhere")
        return node

    def _merge(self, schema: dict[str, Any]) -> dict[str, Any]:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema.get("allOf", []):
            part = self._merge(self._resolve(part))
            for key, value in part.items():
                if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
                    merged[key] = {**merged.get(key, {}), **value}
                elif key == "required":
                    merged[key] = sorted(set(merged.get(key, [])) | set(value))
                else:
                    merged.setdefault(key, value)
        return merged

    def _resolve(self, schema: Any) -> Any:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 32:
            target = self._ref(schema["$ref"])
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest} if isinstance(target, dict) else target
            seen += 1
        return schema

    def sample(self, schema: Any, path: str) -> Any:
        if schema is True or schema == {} or schema is None:
            return self._word(path)
        if schema is False:
            raise TaskFailure(INVALID_CONFIG, f"response_format: nothing validates against 'false' at {path or '/'}")
        self.depth += 1
        try:
            if self.depth > 32:
                return None
            schema = self._merge(self._resolve(schema))
            if "const" in schema:
                return schema["const"]
            if "enum" in schema and schema["enum"]:
                return schema["enum"][0]
            if "default" in schema:
                return schema["default"]
            for key in ("oneOf", "anyOf"):
                if schema.get(key):
                    base = {k: v for k, v in schema.items() if k != key}
                    option = self._merge(self._resolve(schema[key][0]))
                    return self.sample({**base, **option}, path)
            kind = schema.get("type")
            if isinstance(kind, list):
                kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
            if kind is None:
                kind = ("object" if "properties" in schema else "array" if "items" in schema
                        else "number" if any(k in schema for k in ("minimum", "maximum")) else "string")
            return getattr(self, f"_{kind}", self._string)(schema, path)
        finally:
            self.depth -= 1

    def _word(self, path: str) -> str:
        return "local-" + hashlib.sha256((self.seed + path).encode()).hexdigest()[:8]

    def _string(self, schema: dict[str, Any], path: str) -> str:
        if schema.get("format") in self.FORMATS:
            return self.FORMATS[schema["format"]]
        text = self._word(path)
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        if len(text) < low:
            text = (text * (low // len(text) + 1))[:low]
        if high is not None:
            text = text[: int(high)]
        return text

    def _number(self, schema: dict[str, Any], path: str, integer: bool = False) -> float | int:
        unit = schema.get("multipleOf") or (1 if integer else None)
        low, low_open = schema.get("minimum"), False
        high, high_open = schema.get("maximum"), False
        bound = schema.get("exclusiveMinimum")
        if isinstance(bound, (int, float)) and not isinstance(bound, bool) and (low is None or bound >= low):
            low, low_open = bound, True
        bound = schema.get("exclusiveMaximum")
        if isinstance(bound, (int, float)) and not isinstance(bound, bool) and (high is None or bound <= high):
            high, high_open = bound, True

        def above(v: float) -> bool:
            return low is None or (v > low if low_open else v >= low)

        def below(v: float) -> bool:
            return high is None or (v < high if high_open else v <= high)

        value: float = 0
        if not (above(value) and below(value)):
            if low is not None and not above(value):
                if unit:
                    value = math.floor(low / unit) * unit
                    while not above(value):
                        value += unit
                else:
                    value = low + (min(1, (high - low) / 2) if high is not None else 1) if low_open else low
            elif high is not None:  # zero is above the low bound (or there is none): it is the high one it breaks
                if unit:
                    value = math.ceil(high / unit) * unit
                    while not below(value):
                        value -= unit
                else:
                    value = high - 1 if high_open else high
        return int(value) if integer or float(value).is_integer() else value

    def _integer(self, schema: dict[str, Any], path: str) -> int:
        return int(self._number(schema, path, integer=True))

    def _boolean(self, schema: dict[str, Any], path: str) -> bool:
        return False

    def _null(self, schema: dict[str, Any], path: str) -> None:
        return None

    def _array(self, schema: dict[str, Any], path: str) -> list[Any]:
        prefix = schema.get("prefixItems") or (schema["items"] if isinstance(schema.get("items"), list) else [])
        items = schema.get("items") if isinstance(schema.get("items"), (dict, bool)) else {}
        count = max(int(schema.get("minItems", 0)), len(prefix) if prefix else 1)
        if schema.get("maxItems") is not None:
            count = min(count, int(schema["maxItems"]))
        out = []
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            out.append(self.sample(sub, f"{path}/{i}"))
        return out

    def _object(self, schema: dict[str, Any], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, sub in (schema.get("properties") or {}).items():
            out[name] = self.sample(sub, f"{path}/{name}")
        for name in schema.get("required", []):
            if name not in out:
                extra = schema.get("additionalProperties")
                out[name] = self.sample(extra if isinstance(extra, dict) else {}, f"{path}/{name}")
        return out
