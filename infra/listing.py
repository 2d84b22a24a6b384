"""The run listing port: runs newest first, filtered by status, workflow and creation time, and
their counts by status. Read through indexes only (no adapter ever reads every run to answer).

A listing position is the (created_at, run_id) of the last run shown: the next page holds runs
strictly older than it (ties on created_at ordered by run id, descending), so a page never depends
on how many runs came in since the first one. Every store lists the same runs in the same order
(tests/component/test_run_queries_contract.py runs both adapters through the same cases).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, Union

from statemachine.status import RunStatus

from .ports import RunRecord


class Position(NamedTuple):
    """Where a page ended: the next one starts strictly after (older than) this run. A tuple, so
    positions compare as the listing orders runs (created_at, then run id)."""

    created_at: str
    run_id: str


@dataclass(frozen=True)
class RunQuery:
    """Which runs a page holds (every filter optional) and how many at most."""

    status: RunStatus | None = None
    workflow_id: str | None = None
    since: str | None = None  # ISO-8601 as the store writes it (infra/clock.iso): created_at >= since
    until: str | None = None  # created_at < until
    limit: int = 50
    after: Position | None = None  # the position the previous page ended at


@dataclass(frozen=True)
class RunSummary:
    """What a listing shows of a run (what the indexes project: no inputs, outputs or errors)."""

    run_id: str
    workflow_id: str
    status: str
    created_at: str
    ended_at: str | None = None
    parent: dict[str, Any] | None = None  # a sub-workflow's run: {"run", "task", ...} of its parent

    @property
    def position(self) -> Position:
        return Position(self.created_at, self.run_id)


@dataclass(frozen=True)
class RunPage:
    runs: list[RunSummary]
    more: bool  # another page follows, starting after runs[-1].position


class RunQueries(Protocol):
    def list_runs(self, query: RunQuery) -> RunPage:
        """Runs matching ``query``, newest first, at most ``query.limit`` of them."""
        ...

    def count_runs(self, workflow_id: str | None = None, since: str | None = None,
                   until: str | None = None) -> dict[str, int]:
        """How many runs are in each status (every RunStatus present, 0 when none), of one workflow or all,
        created in [since, until) when given (a window keeps a count's cost to the runs in it)."""
        ...


# What the listing orders and filters: a summary, or a stored run (the in-memory adapter's).
Listed = Union[RunSummary, RunRecord]


def in_window(run: Listed, query: RunQuery) -> bool:
    """Whether a run belongs on a page of ``query`` (its filters, its time window, after its position):
    the one rule both adapters apply, DynamoDB's key conditions only narrowing what it reads first."""
    if query.status is not None and run.status != query.status:
        return False
    if query.workflow_id is not None and run.workflow_id != query.workflow_id:
        return False
    if query.since is not None and run.created_at < query.since:
        return False
    if query.until is not None and run.created_at >= query.until:
        return False
    return query.after is None or order_key(run) < query.after


def order_key(run: Listed) -> tuple[str, str]:
    """Newest first is this key, descending."""
    return run.created_at, run.run_id


def newest_first(runs: list[RunSummary], limit: int) -> RunPage:
    ordered = sorted(runs, key=order_key, reverse=True)
    return RunPage(ordered[:limit], len(ordered) > limit)
