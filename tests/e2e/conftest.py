"""Fixtures shared by the concurrency tests of this folder."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def bench():
    """One emulated AWS and runtime for a whole test module (tests/e2e/concurrent_runs.py)."""
    from tests.e2e.concurrent_runs import own_bench

    with own_bench() as made:
        yield made
