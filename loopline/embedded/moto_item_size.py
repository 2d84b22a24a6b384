"""moto's check of a new DynamoDB item's size, made once per item instead of once per attribute.

moto 5 builds each item it stores (PutItem, a transaction's or a batch's put) by inserting its
attributes one by one into a ``LimitedSizeDict``, whose every insert sums the sizes of all the
attributes already in it, walking each value (a map's members, a list's items) again. An item of n
attributes costs n²/2 walks; a task item has about 18. With this module, bench/moto_floor.py's 10
conditional PutItems of such items take 6.5-6.8 ms instead of 7.6-7.9 (2026-12-05, 14:15 UTC,
bench/README.md).

The refusal depends on the total alone. An insert is refused when the sizes already in the dict plus
the new key's and value's exceed 405,000 bytes; sizes are never negative, so the running sum only
grows, and the first insert that makes it exceed the limit is the one refused. Here ``Item`` keeps
that running sum as it goes, in the same terms (each key's UTF-8 bytes plus ``DynamoType.size()`` of
its value), and raises the same ``ItemSizeTooLarge`` at the same attribute, so at the same point of
the request (moto builds the item before it tests any condition). An update's SETs, into a stored
item or into the key-only item moto makes for an update of a missing one, keep moto's own check.

Installed once per process (EmbeddedAws), not taken back; tests/component/moto_answers.py sends
items at and one byte over the limit, and test_moto_dynamodb_speedups.py compares the answers.
"""

from __future__ import annotations

import inspect
from typing import Any

from .moto_patching import install_once

LIMIT = 405_000  # moto's: LimitedSizeDict.__setitem__ refuses a sum above it


def install_item_size_speedups() -> None:
    install_once(__name__, _install)


def _install() -> None:
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models import dynamo_type
    from moto.dynamodb.models.utilities import bytesize

    DynamoType, LimitedSizeDict = dynamo_type.DynamoType, dynamo_type.LimitedSizeDict
    parameters = list(inspect.signature(dynamo_type.Item.__init__).parameters)
    if parameters != ["self", "hash_key", "range_key", "attrs"] or "__setitem__" not in vars(LimitedSizeDict):
        raise RuntimeError("moto's Item is not the one this speedup was written for")  # nothing installed

    def item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        # LimitedSizeDict's own __init__ goes through dict.update, which skips its __setitem__ too.
        kept = LimitedSizeDict.__new__(LimitedSizeDict)
        dict.__init__(kept)
        total = 0
        for key, value in attrs.items():
            typed = DynamoType(value)
            total += bytesize(key) + typed.size()
            if total > LIMIT:  # at the attribute moto's own insert would refuse
                raise ItemSizeTooLarge
            dict.__setitem__(kept, key, typed)
        self.attrs = kept

    dynamo_type.Item.__init__ = item_init  # type: ignore[method-assign]
