"""Items kept once each, in a few requests: a stream batch's history entries (DynamoHistory.append_all).

One conditional PutItem per entry keeps an entry once and says whether it was new; on the embedded
default that was a quarter of the process's CPU (a request's cost is mostly its own, not its item's).
Here the entries that are there already are read first (BatchGetItem, strongly consistent, 100 keys
a request), then the others are written 25 to a request (BatchWriteItem). A BatchWriteItem is not
conditional, so it relies on what an entry is: its key names one change record (its time and
sequence number) and its content is made from that record alone, so writing it again writes the
same item. What the read says is new is what the caller counts (its metrics, once per entry).

A request refused as a whole (an entry DynamoDB will not take), or entries it keeps leaving
unprocessed, fall back to the conditional puts one by one for that request's entries, in order:
the entries before the one that fails are kept, and ``HistoryUnfinished`` says how many, so the
records before it are done and only the rest is delivered again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..ports import HistoryUnfinished, StoreError
from .dynamo_calls import call

log = logging.getLogger(__name__)
READS_PER_REQUEST = 100  # BatchGetItem's limit
WRITES_PER_REQUEST = 25  # BatchWriteItem's limit
ROUNDS = 6  # requests for what a batch request left unprocessed (throttling) before falling back
BACKOFF = 0.05  # seconds before the first such retry, doubled each time


def keep_all(client, table: str, items: list[dict[str, Any]], put_one: Callable[[dict[str, Any]], bool]
             ) -> list[bool]:
    """Keep each item (``pk``, ``sk``) once; for each, True when it was not there before. ``put_one``:
    the conditional put of one item, the fallback (True when it wrote it)."""
    keys = [_key(item) for item in items]
    there = _existing(client, table, list(dict.fromkeys(keys)))
    new: list[bool] = []
    wanted: dict[tuple[str, str], int] = {}  # key -> index of its first item, if it is to be written
    for index, key in enumerate(keys):
        new.append(key not in there and key not in wanted)
        if new[-1]:
            wanted[key] = index
    order = list(wanted.values())
    for start in range(0, len(order), WRITES_PER_REQUEST):
        chunk = order[start:start + WRITES_PER_REQUEST]
        left = _write(client, table, [items[i] for i in chunk])
        for index in chunk:
            if keys[index] not in left:
                continue
            try:
                put_one(items[index])  # False: the batch request wrote it after all
            except StoreError as error:
                raise HistoryUnfinished(f"{error} (after {index} of {len(items)} entries)", new[:index]) from error
    return new


def _key(item: dict[str, Any]) -> tuple[str, str]:
    return item["pk"]["S"], item["sk"]["S"]


def _existing(client, table: str, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for start in range(0, len(keys), READS_PER_REQUEST):
        ask: dict[str, Any] = {table: {"Keys": [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in
                                                keys[start:start + READS_PER_REQUEST]],
                                       "ProjectionExpression": "pk, sk", "ConsistentRead": True}}
        for attempt in range(ROUNDS + 1):
            reply = call(client, "batch_get_item", RequestItems=ask)
            found.update(_key(item) for item in reply.get("Responses", {}).get(table, []))
            ask = reply.get("UnprocessedKeys") or {}
            if not ask:
                break
            if attempt == ROUNDS:
                raise StoreError(f"DynamoDB batch_get_item left {len(ask[table]['Keys'])} keys unread")
            time.sleep(BACKOFF * 2 ** attempt)
    return found


def _write(client, table: str, items: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """The keys of ``items`` this could not write: none, what stayed unprocessed, or all of them (a
    request refused as a whole)."""
    ask: list[dict[str, Any]] = [{"PutRequest": {"Item": item}} for item in items]
    for attempt in range(ROUNDS + 1):
        try:
            reply = call(client, "batch_write_item", RequestItems={table: ask})
        except StoreError:
            log.warning("history: a batch write of %d entries refused; they are put one by one", len(ask),
                        exc_info=True)
            return {_key(request["PutRequest"]["Item"]) for request in ask}
        ask = (reply.get("UnprocessedItems") or {}).get(table, [])
        if not ask:
            return set()
        if attempt < ROUNDS:
            time.sleep(BACKOFF * 2 ** attempt)
    return {_key(request["PutRequest"]["Item"]) for request in ask}
