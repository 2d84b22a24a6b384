"""moto's Query handed only what it keeps (a partition's key range, an index's hash key), with the same answers.

moto 5 answers a Query on a table (no index) by listing every item of the table, sorting them all by
hash and range key, and keeping those of the asked hash key (``Table.query`` over ``Table.all_items``),
then sorting those by range key. So each Query costs the size of the whole table, every run's items:
2.5 ms with 10 runs' items in the table, 5.6 ms with 100 runs', 39.8 ms with 1,000 runs', against
2.1 ms at each size with what follows (``bench/moto_queries.py``, moto alone). The engine queries a
run's own partition (a join counting its dependencies' ends, a loop counting its ended iterations, a
run's task listing), so a long ``loopline dev`` session, a benchmark or a test suite slowed down with
every run it made.

moto keeps a table's items per hash key already (``Table.items``: hash key -> range key -> item), so a
table query here hands ``Table.query`` only the asked partition as "all items": it keeps the same
items (those of the asked hash key are exactly that partition's), then sorts them by range key as
before (unique within a partition, so the order is the same), and pages, compares, filters and
projects them with moto's own code. A query of a table with no range key is moto's unchanged.

A query of an index (``GET /runs`` by status or by workflow, the console's runs list) lists the whole
table too, sorted, then keeps the items that match its hash key and have the index's range keys, and
sorts those by the index's keys: 65 ms a page of 50 with 1,000 runs' items, 23 ms with what follows.
moto keeps no index of its own, so here the items are still all read, but tested first, as moto tests
them, and only those kept go on, already in the order moto's own index path then sorts them into.

Within the partition, moto sorts the items with its own comparisons (a property read per key per
comparison), then tests each against the range condition (and adds its size to the page's): a span
of 10 keys in a partition of 5,000 items took 37.7 ms, 3.0 ms handed only its range
(``bench/moto_queries.py``). Where the range keys and the condition's values
are strings, the items handed on are those a sorted list of the partition's keys, bisected, puts in
the condition's range (``BETWEEN``, ``begins_with``, ``=``, ``<``, ``<=``, ``>``, ``>=``), in key
order, with the one key just outside each end: moto then sorts a list already sorted and tests only
those. The bisection compares the same Python strings moto's test compares, so it keeps every item
the test would keep, and moto answers the same items and LastEvaluatedKey. One difference is left, on
purpose: moto adds the size of each item it tests to a page's size before testing it against the
range, so an item outside the range could end a page near 1 MB early; beyond the neighbours it is no
longer tested, as DynamoDB reads no item outside the key condition. Any other condition or key type
gets the whole partition.

What is handed on goes through a thread-local, for this thread's query only, so a scan or a query of
another thread running meanwhile lists the whole table as before. Installed once per process
(EmbeddedAws), not taken back; tests/component/moto_answers.py's queries are answered the
same with and without it (test_moto_dynamodb_speedups.py).
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from typing import Any

from .moto_patching import install_once

_asked = threading.local()  # .partition: (the table, the items handed on as all of its items), during a query


def install_query_speedups() -> None:
    install_once(__name__, _install)


def _install() -> None:
    from moto.dynamodb.models.table import Table

    original_query = Table.query
    original_all_items = Table.all_items

    def all_items(self: Any) -> list[Any]:
        asked = getattr(_asked, "partition", None)
        if asked is not None and asked[0] is self:
            return list(asked[1])
        return original_all_items(self)

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # index_name is the eighth parameter after hash_key's (moto's backend passes it by position)
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name:
            handed = indexed(self, index_name, kwargs.get("hash_key_conditions") or [])
        elif hash_key is not None and self.range_key_attr:
            partition = self.items.get(hash_key) or {}  # .get: the defaultdict makes no entry
            handed = in_range(partition, args[0], args[1])
        else:
            handed = None
        if handed is None:
            return original_query(self, hash_key, *args, **kwargs)
        _asked.partition = (self, handed)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _asked.partition = None

    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]


def in_range(partition: dict[Any, Any], comparison: str | None, bounds: list[Any]) -> list[Any]:
    """The partition's items whose string range key meets ``comparison`` on ``bounds`` (moto's
    DynamoTypes), in key order; every item of the partition where the keys, the values or the
    comparison are of another kind."""
    items = list(partition.values())
    if not comparison or not bounds or any(key.type != "S" for key in partition) \
            or any(bound.type != "S" for bound in bounds):
        return items
    ordered = sorted(partition.items(), key=lambda pair: pair[0].value)
    keys = [key.value for key, _ in ordered]
    first, op = bounds[0].value, comparison.upper()
    low, high = 0, len(keys)
    if op == "BETWEEN" and len(bounds) == 2:
        low, high = bisect_left(keys, first), bisect_right(keys, bounds[1].value)
    elif op == "BEGINS_WITH":
        low = high = bisect_left(keys, first)
        while high < len(keys) and keys[high].startswith(first):
            high += 1
    elif op in ("=", "EQ"):
        low, high = bisect_left(keys, first), bisect_right(keys, first)
    elif op in ("<", "LT"):
        high = bisect_left(keys, first)
    elif op in ("<=", "LE"):
        high = bisect_right(keys, first)
    elif op in (">", "GT"):
        low = bisect_right(keys, first)
    elif op in (">=", "GE"):
        low = bisect_left(keys, first)
    else:
        return items
    # And the key just outside each end: moto tests a page's limit before testing the next item against
    # the range, so with a page full at the range's end it answers a LastEvaluatedKey, as DynamoDB does.
    return [item for _, item in ordered[max(low - 1, 0):high + 1]]


def indexed(table: Any, index_name: str, conditions: list[tuple[str, Any]]) -> list[Any] | None:
    """The items of ``table`` that a query of its index ``index_name`` keeps from moto's list of all of
    them: those whose attributes equal the query's hash key conditions and that have every range key of
    the index, tested as moto tests them. None (moto's own path) for an index moto would not find, or a
    query with no hash key condition."""
    index = next((i for i in table.all_indexes() if i.name == index_name), None)
    if index is None or not conditions:
        return None
    ranges = [key["AttributeName"] for key in index.schema if key["KeyType"] == "RANGE"]
    kept = []
    for held in table.items.values():
        for item in (held.values() if table.range_key_attr else (held,)):
            if all(_equal(item.attrs.get(name), value) for name, value in conditions) \
                    and all(item.attrs.get(name) for name in ranges):
                kept.append(item)
    # moto sorts what it keeps by the index's hash and range keys, then the table's: a key each item has
    # alone, so the order moto answers in does not depend on this list's. Handed in that order already
    # (compared on the cast values, as DynamoType compares, once per key and not twice per comparison),
    # moto's sort only walks it.
    attrs = [key["AttributeName"] for key in index.schema if key["KeyType"] == "HASH"] + ranges + \
        [a for a in (table.hash_key_attr, table.range_key_attr) if a]
    try:
        kept.sort(key=lambda item: tuple(item.attrs[a].cast_value for a in attrs))
    except (KeyError, TypeError):  # a key attribute missing, or values of two types: moto's sort decides
        pass
    return kept


def _equal(found: Any, wanted: Any) -> bool:
    """moto's test of a hash key condition (an attribute there, and DynamoType equality: the same type
    and cast value). A string's or a binary's cast value is its value, so those compare as they are,
    without moto working the cast value out on each side; a number's goes through moto's (1.0 = 1)."""
    if found is None:
        return False
    if wanted.type in ("S", "B"):
        return bool(found.type == wanted.type and found.value == wanted.value)
    return bool(found == wanted)
