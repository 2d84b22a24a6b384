"""The conditional writes' rules, for the stores that read, decide and write under one lock or
transaction: in memory (loopline/memory/store.py) and on SQLite (loopline/sqlite/store.py).

Each function is pure: given the stored records, it answers whether a write applies and what it
writes. DynamoDB says the same in its condition expressions (infra/aws/dynamo_store.py); one
contract test (tests/component/test_store_contract.py) holds all three to the port (infra/ports.py).
"""

from __future__ import annotations

import copy
from dataclasses import fields, replace
from typing import Any

from infra.copies import copied
from infra.ports import (
    LostRace,
    RequestClosed,
    RunGone,
    RunRecord,
    TaskChange,
    TaskRecord,
    TokenConsume,
    TokenRecord,
    TokenUsed,
)
from statemachine.decisions import one_edge
from statemachine.state import LastChange


def change_applies(current: TaskRecord | None, change: TaskChange) -> bool:
    """Whether ``change``'s conditions on the task hold (a missing item reads as PENDING)."""
    if change.absent and current is not None:
        return False
    status = current.status if current else None
    allowed = set(change.from_status)
    if status not in allowed and not (status == "PENDING" and None in allowed):
        return False
    if change.attempt is not None and (current is None or current.attempt != change.attempt):
        return False
    if change.lease_expired_before is not None:
        lease = current.lease_until if current else None
        if lease is not None and lease >= change.lease_expired_before:
            return False
    if change.votes is not None and (current.votes if current else 0) != change.votes:
        return False
    if change.epoch is not None and (current.redrive if current else 0) != change.epoch:
        return False  # reset by a rewind since the change was decided (a late result from before it)
    return True


def check_change(task_id: str, current: TaskRecord | None, change: TaskChange, run: RunRecord | None,
                 run_id: str, exports: dict[str, Any] | None, consume: TokenConsume | None,
                 token: TokenRecord | None, request: TaskRecord | None) -> None:
    """Raise the first condition of a ``change_task`` that fails, in the port's order: task, run,
    token, vote (``token``: the consumed one, ``request``: the voted-on approval's item)."""
    if not change_applies(current, change):
        raise LostRace(copy.deepcopy(current) or TaskRecord(task_id))
    if exports and run is None:
        raise RunGone(run_id)
    if consume is None:
        return
    if token is None or token.used_by or (token.expires_at is not None and consume.now_epoch >= token.expires_at):
        raise TokenUsed(consume.token_hash)
    if consume.vote_on is not None and (
            request is None or request.status != "WAITING" or request.attempt != consume.vote_on[1]):
        raise RequestClosed(consume.vote_on[0])


_TASK_FIELDS = frozenset(field.name for field in fields(TaskRecord))


def changed(current: TaskRecord | None, task_id: str, change: TaskChange) -> TaskRecord:
    """The task as ``change`` leaves it (the fields it does not set kept, its own values copied)."""
    record = current or TaskRecord(task_id)
    if not change.set.keys() <= _TASK_FIELDS:
        return replace(record, status=change.status, **change.set)  # raises: not a field
    # dataclasses.replace, without its pass through every field and __init__ (TaskRecord has no
    # __post_init__): the most frequent write's cost, once per transition.
    new = copy.copy(record)
    new.status = change.status
    for name, value in change.set.items():
        setattr(new, name, copied(value))
    return new


def edge_resolved(record: TaskRecord, dep_id: str, outcome: str, epoch: int | None = None) -> TaskRecord | None:
    """The task with ``dep_id`` counted once as ``outcome``; None if it was counted before, or if it is a
    fenced dependency's edge from before the item's epoch (StateStore.resolve_edge)."""
    if dep_id in record.resolved or fenced_off(record.fenced, dep_id, epoch, record.redrive):
        return None
    counted = one_edge(outcome)  # the one mapping of an outcome to counts (statemachine/decisions.py)
    return replace(record, resolved=record.resolved | {dep_id}, deps_ok=record.deps_ok + counted.ok,
                   deps_failed=record.deps_failed + counted.failed, deps_skipped=record.deps_skipped + counted.skipped,
                   forced_skip=record.forced_skip or counted.forced_skip)


def fenced_off(fenced: frozenset[str], task_id: str, epoch: int | None, floor: int) -> bool:
    """Whether a result of ``task_id`` stamped ``epoch`` is from before the rewind that fenced it (``floor``:
    the epoch it counts from)."""
    return epoch is not None and task_id in fenced and epoch < floor


def may_set_status(run: RunRecord, expected: str) -> bool:
    """set_run_status: the run is ``expected``, and no rewind holds it PAUSED (a resume must wait for it)."""
    return run.status == expected and not (expected == "PAUSED" and run.rewinding is not None)


def halted(run: RunRecord, reason_id: str, error: dict, note: LastChange | None) -> RunRecord:
    return replace(run, halt=True, failed_tasks=run.failed_tasks | {reason_id}, error=run.error or copy.deepcopy(error),
                   cancelled=run.cancelled or reason_id == "$cancel", last_change=note or run.last_change)


def may_reset(run: RunRecord, current: TaskRecord | None, epoch: int, rewinding: bool = False) -> bool:
    """A redrive resets a task only while its run is FAILED at the epoch before, once per epoch; a
    rewind only while its epoch is under way (the run has ended: nothing else writes the item)."""
    if rewinding:
        return run.rewinding == epoch
    return (run.status == "FAILED" and run.redrives == epoch - 1 and run.rewinding is None
            and (current is None or current.redrive < epoch))


def reopened(run: RunRecord, epoch: int, sinks_remaining: int, now: str, note: LastChange | None,
             rewinding: bool = False) -> RunRecord | None:
    """The redriven (or rewound) run, RUNNING again at ``epoch``; None if it is not FAILED at the epoch
    before, its compensation ran or a rewind is under way (rewound: None unless rewind ``epoch`` is under way)."""
    if rewinding:
        if run.rewinding != epoch:
            return None
    elif run.status != "FAILED" or run.redrives != epoch - 1 or run.end_comps or run.rewinding is not None:
        return None
    return replace(run, status="RUNNING", redrives=epoch, redriven_at=now, sinks_remaining=sinks_remaining,
                   outputs=None, error=None, ended_at=None, end_comps=None, failed_tasks=frozenset(), halt=False,
                   cancelled=False, ttl=None, rewinding=None, rewind_to=None, last_change=note or run.last_change)


def may_migrate_task(run: RunRecord, current: TaskRecord | None, epoch: int, plan_hash: str,
                     expect: TaskRecord | None) -> bool:
    """A migration (infra/engine/migration.py) writes a task only while its run is PAUSED at the epoch before on
    the plan it leaves, once per epoch, and only as the migration found it (None: no item)."""
    if run.status != "PAUSED" or run.redrives != epoch - 1 or run.plan_hash != plan_hash or run.rewinding is not None:
        return False
    if expect is None or current is None:
        return current is None and expect is None
    return current.redrive < epoch and (current.status, current.attempt, current.votes) == (
        expect.status, expect.attempt, expect.votes)


def paused_to_migrate(run: RunRecord, epoch: int, plan_hash: str, note: LastChange | None) -> RunRecord | None:
    """The run PAUSED for a migration; None unless it is RUNNING on ``plan_hash`` at the epoch before."""
    if run.status != "RUNNING" or run.redrives != epoch - 1 or run.plan_hash != plan_hash or run.rewinding is not None:
        return None
    return replace(run, status="PAUSED", last_change=note or run.last_change)


def switched(run: RunRecord, epoch: int, source: str, target: str, inputs: dict[str, Any],
             variables: dict[str, Any], sinks_remaining: int, note: LastChange | None) -> RunRecord | None:
    """The migrated run, RUNNING on ``target`` at ``epoch``; None if it is not PAUSED on ``source`` at the
    epoch before."""
    if run.status != "PAUSED" or run.redrives != epoch - 1 or run.plan_hash != source or run.rewinding is not None:
        return None
    return replace(run, status="RUNNING", plan_hash=target, redrives=epoch, inputs=copy.deepcopy(inputs),
                   variables=copy.deepcopy(variables),
                   sinks_remaining=sinks_remaining, last_change=note or run.last_change)


def rewind_begun(run: RunRecord, epoch: int, task_id: str, comps: list[list[str]] | None = None,
                 note: LastChange | None = None, moving: bool = False) -> RunRecord | None:
    """The ended run with rewind ``epoch`` to ``task_id`` under way (COMPENSATING with ``comps`` first, if
    any); None if it is not ended at the epoch before or another rewind is under way. ``moving``: the
    RUNNING or PAUSED run, PAUSED with the rewind under way (and ``comps`` its end steps, if any); None
    unless it is at the epoch before, not stopping and has no end steps."""
    if moving:
        if run.status not in ("RUNNING", "PAUSED") or run.redrives != epoch - 1 or run.rewinding is not None \
                or run.halt or run.end_comps is not None:
            return None
        # With ``comps``: PAUSED all the same (nothing of its flow starts), the compensations its end steps.
        return replace(run, status="PAUSED", rewinding=epoch, rewind_to=task_id, last_change=note or run.last_change,
                       end_comps=copy.deepcopy(comps) if comps else None)
    if run.status not in ("COMPLETED", "FAILED", "CANCELLED") or run.redrives != epoch - 1 \
            or run.rewinding is not None:
        return None
    if comps:
        run = replace(run, status="COMPENSATING", end_comps=copy.deepcopy(comps), last_change=note or run.last_change)
    return replace(run, rewinding=epoch, rewind_to=task_id)


def reopened_moving(run: RunRecord, sinks_done: set[str], epoch: int, gone: list[str], sinks: int,
                    fenced: list[str], now: str, note: LastChange | None) -> tuple[RunRecord, set[str]] | None:
    """The moving run's rewind ``epoch`` ended (StateStore.reopen_moving), with its counted sinks; None unless it
    is PAUSED with that rewind under way."""
    if run.status != "PAUSED" or run.rewinding != epoch or run.redrives != epoch - 1:
        return None
    done = sinks_done - set(gone)
    failed = run.failed_tasks - set(gone)
    return replace(run, status="RUNNING", redrives=epoch, redriven_at=now, sinks_remaining=sinks - len(done),
                   failed_tasks=failed, error=run.error if failed else None, rewinding=None, rewind_to=None,
                   end_comps=None,
                   fenced=frozenset(fenced), last_change=note or run.last_change), done
