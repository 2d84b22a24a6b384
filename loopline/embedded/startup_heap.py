"""What the embedded default's process holds once its first stack is up, kept out of full collections.

By then the process holds some 330,000 objects (gc.get_objects() counted them in a W1 loop) that
live as long as it does: the modules, botocore's service models, moto's backends, the stack's
resources. Python's full (oldest-generation) garbage collection walks all of them each time it runs,
and as the emulated tables and streams grow it runs every few runs of a workflow: about a tenth of a
W1 run's CPU (bench/peers.py's chain), timed with and without the freeze in a loop of runs.
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
