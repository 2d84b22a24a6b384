"""The claim check: values too large for a DynamoDB item or an SQS message live in S3.

Objects are content-addressed (``payloads/<sha256>``), so a put is idempotent, a
retried or raced write stores the same bytes, and a reference can never point at
changed data. That also makes a process-wide cache safe: an object never
changes, so the bytes read (or written) once serve every later load of the same
value (a run's inputs are read on every transition).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from botocore.exceptions import ClientError

from ..ports import StoreError

PREFIX = "payloads/"


class S3Payloads:
    def __init__(self, client, bucket: str, cache_bytes: int = 64 * 1024 * 1024):
        self._s3 = client
        self.bucket = bucket
        self._cache = _LruBytes(cache_bytes)

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if self._cache.get(digest) is None:
            try:
                self._s3.put_object(Bucket=self.bucket, Key=PREFIX + digest, Body=data,
                                    ContentType="application/json")
            except ClientError as error:
                raise StoreError(f"S3 PutObject failed: {error}") from error
            self._cache.put(digest, data)
        return digest

    def get(self, digest: str) -> bytes:
        data = self._cache.get(digest)
        if data is None:
            try:
                data = self._s3.get_object(Bucket=self.bucket, Key=PREFIX + digest)["Body"].read()
            except ClientError as error:
                raise StoreError(f"S3 GetObject failed for payload {digest}: {error}") from error
            if hashlib.sha256(data).hexdigest() != digest:
                raise StoreError(f"payload {digest} does not match its content")
            self._cache.put(digest, data)
        return data


class InMemoryPayloads:
    """The same port without S3: for tests of the adapters that use it."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        self.objects[digest] = data
        return digest

    def get(self, digest: str) -> bytes:
        try:
            return self.objects[digest]
        except KeyError:
            raise StoreError(f"no payload {digest}") from None


class _LruBytes:
    def __init__(self, limit: int):
        self._limit = limit
        self._size = 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self._limit:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = data
            self._size += len(data)
            while self._size > self._limit:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)
