"""What the embedded default's process holds once its first stack is up, kept out of full collections.

By then the process holds ~330,000 objects that live as long as it does: the modules, botocore's
service models, moto's backends, the stack's resources. Python's full (oldest-generation) garbage
collection walks all of them each time it runs, and as the emulated tables and streams grow it runs
every few runs of a workflow: ~10 ms of the ~110 ms of CPU a W1 run (bench/peers.py) took here.
``gc.freeze()`` moves the objects alive now into a generation no collection walks; they are still
freed when nothing refers to them. Collected first, so no garbage is frozen with them. Once per
process: later stacks (tests start one each) are collected as before.
"""

from __future__ import annotations

import gc
import threading

_done = False
_guard = threading.Lock()


def freeze_startup_heap() -> None:
    global _done
    with _guard:
        if _done:
            return
        gc.collect()
        gc.freeze()
        _done = True
