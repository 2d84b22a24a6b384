"""The keys of a run's items: pure functions of ids and indexes, so the core (statemachine/) names
items as the engine (infra/engine/keys.py, which adds the names of timers) stores them.

A task's item key is its id; a role task that can run more than once (a catch handler, per
caught failure; a compensation, per compensated task) runs as an instance keyed
``<task id>@<other task id>``. Ids cannot contain "@".

Loops: the loop's item is its id; iteration i is ``<loop>.<i>``; a body task's run in
iteration i is ``<task>@<loop>.<i>``; a for_each's list is kept 100 items to an item
(``<loop>:items:<k>``), so a loop over 10,000 items writes 10,000 small items, never one
growing item. Approvals: each vote is ``<task key>:vote:<hash of the approver>``, refused
uses of a task's links are counted in ``<task key>:refused``.
"""

from __future__ import annotations

import hashlib

CHUNK = 100  # items per stored chunk of a for_each's list


def instance_key(task_id: str, for_task: str) -> str:
    return f"{task_id}@{for_task}"


def node_of(key: str) -> str:
    """The plan node an item key belongs to."""
    return key.split("@", 1)[0]


def iteration_key(loop_id: str, index: int) -> str:
    return f"{loop_id}.{index}"


def chunk_key(loop_id: str, index: int) -> str:
    """Where item ``index`` of a for_each is kept: starting an iteration reads one small chunk."""
    return f"{loop_id}:items:{index // CHUNK}"


def is_chunk(key: str) -> bool:
    """Is ``key`` a chunk of a for_each's list (written once, never changed: a reader may share it)?
    Task ids have no ':' (statemachine/dsl.py), so only a chunk's key has ':items:'."""
    return ":items:" in key


def body_key(task_id: str, loop_id: str, index: int) -> str:
    return f"{task_id}@{loop_id}.{index}"


def iteration_of(key: str) -> tuple[str, int] | None:
    """(loop id, index) of a body task's key, or None for a key outside any loop."""
    _, _, rest = key.partition("@")
    loop_id, _, index = rest.rpartition(".")
    return (loop_id, int(index)) if loop_id and index.isdigit() else None


def refusal_key(task_key: str) -> str:
    """The item holding the refused uses of a task's links (a redrive keeps it)."""
    return f"{task_key}:refused"


def vote_key(task_key: str, approver: str) -> str:
    return f"{task_key}:vote:{hashlib.sha256(approver.encode()).hexdigest()[:16]}"
