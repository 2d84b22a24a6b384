"""Each of moto's speedups (moto_speedups.py, moto_update_expressions.py, moto_attribute_values.py, moto_queries.py,
moto_item_size.py...) patches moto's classes for the life of the process: once, however many stacks a process starts."""

from __future__ import annotations

import threading
from typing import Callable

_installed: set[str] = set()
_guard = threading.Lock()


def install_once(name: str, install: Callable[[], None]) -> None:
    with _guard:
        if name not in _installed:
            install()  # a moto it does not fit raises here, and nothing counts as installed
            _installed.add(name)
