"""RunQueries in memory (local mode, tests): the runs the in-memory store holds, filtered and sorted.

Memory has no index to keep: each listing looks at every run, which is what an index spares
DynamoDB and costs little here (10,000 runs sort in milliseconds). The rules of a page are the
port's own (infra/listing.py ``in_window``), so both adapters list the same runs.
"""

from __future__ import annotations

import heapq

from infra.listing import RunPage, RunQuery, RunSummary, in_window, newest_first, order_key
from infra.ports import RunRecord
from statemachine.status import RunStatus

from .store import InMemoryStore


def summary_of(run: RunRecord) -> RunSummary:
    return RunSummary(run.run_id, run.workflow_id, run.status, run.created_at, run.ended_at, run.parent)


class InMemoryRunQueries:
    def __init__(self, store: InMemoryStore):
        self._store = store

    def list_runs(self, query: RunQuery) -> RunPage:
        found = heapq.nlargest(query.limit + 1, (r for r in self._store.runs() if in_window(r, query)), key=order_key)
        return newest_first([summary_of(r) for r in found], query.limit)

    def count_runs(self, workflow_id: str | None = None, since: str | None = None,
                   until: str | None = None) -> dict[str, int]:
        counts = {status.value: 0 for status in RunStatus}
        window = RunQuery(workflow_id=workflow_id, since=since, until=until)
        for run in self._store.runs():
            if in_window(run, window):
                counts[run.status] = counts.get(run.status, 0) + 1
        return counts
