"""loopline/embedded/startup_heap.py: once the embedded default's first stack is up, what the process
holds is out of the collector's full collections, and garbage made later is still collected."""

from __future__ import annotations

import gc
import weakref


def test_the_first_stack_freezes_the_heap_and_later_cycles_are_still_collected(aws):
    assert gc.get_freeze_count() > 100_000  # the modules, botocore's models, moto's backends

    class Cycle:
        pass

    cycle = Cycle()
    cycle.itself = cycle  # only the collector frees a cycle
    gone = weakref.ref(cycle)
    del cycle
    gc.collect()
    assert gone() is None
