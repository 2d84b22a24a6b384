"""moto's Query of a table's own key reads the one partition it asks for, with the same answers.

moto 5 answers a Query on a table (no index) by listing every item of the table, sorting them all by
hash and range key, and keeping those of the asked hash key (``Table.query`` over ``Table.all_items``),
then sorting those by range key. So each Query costs the size of the whole table, every run's items:
measured on the embedded default's runs table, 1.7 ms with 10 runs' items, 9.9 ms with 100 runs',
111 ms with 1,000 runs' (``bench/moto_queries.py``). The engine queries a run's own partition (a
join counting its dependencies' ends, a loop counting its ended iterations, a run's task listing), so
a long ``loopline dev`` session, a benchmark or a test suite slowed down with every run it made.

moto keeps a table's items per hash key already (``Table.items``: hash key -> range key -> item), so a
table query here hands ``Table.query`` only the asked partition as "all items": it keeps the same
items (those of the asked hash key are exactly that partition's), then sorts them by range key as
before (unique within a partition, so the order is the same), and pages, compares, filters and
projects them with moto's own code. A query of an index, or of a table with no range key, is moto's
unchanged. The partition is handed on through a thread-local, for this thread's query only, so a scan
or a query of another thread running meanwhile lists the whole table as before. Installed once per
process (EmbeddedAws), not taken back; tests/component/moto_answers.py's queries are answered the
same with and without it (test_moto_dynamodb_speedups.py).
"""

from __future__ import annotations

import threading
from typing import Any

from .moto_patching import install_once

_asked = threading.local()  # .partition: (the table, its items of the asked hash key), during a table query


def install_query_speedups() -> None:
    install_once(__name__, _install)


def _install() -> None:
    from moto.dynamodb.models.table import Table

    original_query = Table.query
    original_all_items = Table.all_items

    def all_items(self: Any) -> list[Any]:
        asked = getattr(_asked, "partition", None)
        if asked is not None and asked[0] is self:
            return list(asked[1].values())
        return original_all_items(self)

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # index_name is the eighth parameter after hash_key's (moto's backend passes it by position)
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None or not self.range_key_attr:
            return original_query(self, hash_key, *args, **kwargs)
        _asked.partition = (self, self.items.get(hash_key) or {})  # .get: the defaultdict makes no entry
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _asked.partition = None

    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
