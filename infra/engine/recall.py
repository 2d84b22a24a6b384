"""What this invocation has read and written of a run, so that a task it carries on with (carry_on.py)
loads without a read (issue #12 item 2: "carry what the next step needs instead of re-reading it").

``RecallingStore`` wraps the state store. Outside a ``recalling()`` block it only passes calls on.
Inside one (a worker invocation, per thread), it remembers the run and task items it sees: what
``load`` read (an item it did not find included, as absent) and what each task write returned,
which is the item as stored after the write. ``load`` answers from memory when it holds the run and
every item asked for, and reads (and remembers) otherwise.

Why that is safe: an answer from memory is what a read made earlier in the same invocation would
have returned, and every decision taken on a read was already open to a change made after it (a
delivery reads, then claims): the writes that matter are conditional on the item's state, so a
stale image makes a condition fail (LostRace, handled as a lost race is) instead of a wrong write.
To keep what a stale image can delay short (a run cancelled or paused meanwhile is seen by the next
read), memory is kept for ``max_age`` seconds from the read or write it came from; a write to the run
itself, or a failed task write, forgets what it touched.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from statemachine.status import TASK_ENDED

from ..copies import run_copy, task_copy
from ..ports import Clock, LostRace, RunRecord, StateStore, TaskChange, TaskRecord, Written
from .keys import is_chunk

MAX_AGE = 1.0  # seconds an image is used for without reading it again


def _handed(task_id: str, record: TaskRecord) -> TaskRecord:
    """A copy of ``record`` for a caller (or for memory), but a for_each's chunk, which never changes."""
    return record if is_chunk(task_id) else task_copy(record)


def _maybe_copy(run: RunRecord | None) -> RunRecord | None:
    return None if run is None else run_copy(run)


@dataclass
class _Memory:
    run: RunRecord | None
    run_at: datetime
    tasks: dict[str, tuple[TaskRecord | None, datetime]] = field(default_factory=dict)  # None: no item


class RecallingStore:
    """A StateStore that, inside ``recalling()``, answers ``load`` from what the invocation saw."""

    def __init__(self, store: StateStore, clock: Clock, max_age: float = MAX_AGE):
        self.inner = store
        self.clock = clock
        self.max_age = max_age
        self._local = threading.local()

    @contextmanager
    def recalling(self, own: Iterable[tuple[str, str]] = ()) -> Iterator[None]:
        """One message's handling. Inside a ``batch``, it starts from what the batch read and wrote
        (``_from_batch``); ``own``: the (run, item) pairs its message names (its task's item and iteration)."""
        outer = getattr(self._local, "memory", None)
        self._local.memory = self._from_batch(set(own))
        try:
            yield
        finally:
            self._local.memory = outer

    def read_batch(self, reads: dict[str, list[str]]) -> dict[str, _Memory]:
        """The items each run's messages of one delivered batch will load (``reads``: run id -> item
        ids), read up front: one read per run instead of one per message."""
        images: dict[str, _Memory] = {}
        for run_id, task_ids in reads.items():
            run, records = self.inner.load(run_id, task_ids)
            now = self.clock.now()
            images[run_id] = _Memory(run, now, {t: (records.get(t), now) for t in task_ids})
        return images

    @contextmanager
    def batch(self, images: dict[str, _Memory]) -> Iterator[None]:
        """The messages of one delivered batch are handled inside: each starts from ``images``
        (``read_batch``), and what each writes updates them, so a later message of the batch starts from
        the items as written."""
        outer = getattr(self._local, "batch", None)
        self._local.batch = images
        try:
            yield
        finally:
            self._local.batch = outer

    def _from_batch(self, own: set[tuple[str, str]]) -> dict[str, _Memory]:
        """A message's memory from its batch's: the run, every ended item (an end is final: it cannot be
        stale but by a reset, which makes the task's own message stale too) and the message's own items.
        Not another item that had not ended: another process may have moved it on since, and what a task
        sees of its dependencies (its scope) is not guarded by a write's condition as its claim is."""
        images: dict[str, _Memory] | None = getattr(self._local, "batch", None)
        memories: dict[str, _Memory] = {}
        for run_id, image in (images or {}).items():
            if image.run is None or not self._fresh(image.run_at):
                continue
            memories[run_id] = _Memory(image.run, image.run_at, {
                t: entry for t, entry in image.tasks.items()
                if (run_id, t) in own or (entry[0] is not None and entry[0].status in TASK_ENDED)})
        return memories

    # ------------------------------------------------------------ what is remembered

    def _memory(self, run_id: str) -> _Memory | None:
        memories: dict[str, _Memory] | None = getattr(self._local, "memory", None)
        return None if memories is None else memories.get(run_id)

    def _fresh(self, at: datetime) -> bool:
        return (self.clock.now() - at).total_seconds() <= self.max_age

    def _remember_task(self, run_id: str, record: TaskRecord) -> None:
        # A refusal's current state of an item that does not exist is a bare record: no item, as load says.
        seen = None if record == TaskRecord(record.task_id) else task_copy(record)  # the caller's is its own
        memory = self._memory(run_id)
        if memory is not None:
            memory.tasks[record.task_id] = (seen, self.clock.now())
        image = self._batch_image(run_id)
        if image is not None:  # the item as written, for the batch's later messages
            image.tasks[record.task_id] = (seen, self.clock.now())

    def _batch_image(self, run_id: str) -> _Memory | None:
        images: dict[str, _Memory] | None = getattr(self._local, "batch", None)
        return None if images is None else images.get(run_id)

    def _exported(self, run_id: str, exports: dict[str, Any]) -> None:
        """The run's variables as the write that exported them left them (``SET vars.<name>`` each)."""
        for memory in (self._memory(run_id), self._batch_image(run_id)):
            if memory is not None and memory.run is not None:
                memory.run = replace(memory.run, variables={**memory.run.variables, **exports})

    def _forget(self, run_id: str, task_id: str | None = None) -> None:
        """Forget the run (and all of it when ``task_id`` is None) or one task item."""
        images: dict[str, _Memory] | None = getattr(self._local, "batch", None)
        if images is not None:  # the batch's image goes the same way (a presumption is never in it)
            if task_id is None:
                images.pop(run_id, None)
            elif run_id in images:
                images[run_id].tasks.pop(task_id, None)
        memories: dict[str, _Memory] | None = getattr(self._local, "memory", None)
        if memories is None:
            return
        if task_id is None:
            memories.pop(run_id, None)
        elif run_id in memories:
            memories[run_id].tasks.pop(task_id, None)

    def forget(self, run_id: str, task_id: str) -> None:
        """Forget one task item (a presumption that proved wrong): the next load reads it."""
        self._forget(run_id, task_id)

    def presume_unwritten(self, run_id: str, task_id: str) -> None:
        """Inside ``recalling()``: answer ``task_id`` as having no item, unless its item is remembered.
        Only for a task whose next write is conditional on having none (TaskChange.absent), so that a
        wrong presumption makes that write fail instead of doing harm."""
        memory = self._memory(run_id)
        if memory is not None and task_id not in memory.tasks:
            memory.tasks[task_id] = (None, self.clock.now())

    # ------------------------------------------------------------ reads

    def load(self, run_id: str, task_ids: list[str]) -> tuple[RunRecord | None, dict[str, TaskRecord]]:
        memories: dict[str, _Memory] | None = getattr(self._local, "memory", None)
        if memories is None:
            return self.inner.load(run_id, task_ids)
        memory = memories.get(run_id)
        if memory is not None and memory.run is not None and self._fresh(memory.run_at):
            known = [memory.tasks.get(task_id) for task_id in task_ids]
            if all(entry is not None and self._fresh(entry[1]) for entry in known):
                # copies: what a caller does with its records is not what was stored
                found = {task_id: _handed(task_id, entry[0]) for task_id, entry in zip(task_ids, known)
                         if entry is not None and entry[0] is not None}
                return run_copy(memory.run), found
        run, records = self.inner.load(run_id, task_ids)
        now = self.clock.now()
        if memory is None or not self._fresh(memory.run_at):
            memory = memories[run_id] = _Memory(_maybe_copy(run), now)
        else:
            memory.run, memory.run_at = _maybe_copy(run), now
        for task_id in task_ids:
            record = records.get(task_id)
            memory.tasks[task_id] = (None if record is None else _handed(task_id, record), now)
        return run, records

    def read_span(self, run_id: str, task_ids: list[str]) -> dict[str, TaskRecord]:
        """Always read (a join is counted on it: statemachine/joins.py); what it found, and did not, remembered."""
        found = self.inner.read_span(run_id, task_ids)
        for task_id in dict.fromkeys(task_ids):
            self._remember_task(run_id, found.get(task_id) or TaskRecord(task_id))
        return found

    def get_run(self, run_id: str) -> RunRecord | None:
        run = self.inner.get_run(run_id)
        memories: dict[str, _Memory] | None = getattr(self._local, "memory", None)
        if memories is not None:  # a strongly consistent read of the run: remembered as load's would be
            memory = memories.get(run_id)
            if memory is None or not self._fresh(memory.run_at):
                memories[run_id] = _Memory(_maybe_copy(run), self.clock.now())
            else:
                memory.run, memory.run_at = _maybe_copy(run), self.clock.now()
        return run

    # ------------------------------------------------------------ task writes: remember what they return

    def change_task(self, run_id: str, task_id: str, change: TaskChange, exports: dict[str, Any] | None = None,
                    consume: Any = None) -> TaskRecord:
        try:
            record = self.inner.change_task(run_id, task_id, change, exports, consume)
        except LostRace as lost:
            self._remember_task(run_id, lost.current) if lost.current.task_id == task_id else \
                self._forget(run_id, task_id)
            raise
        except Exception:
            self._forget(run_id, task_id)
            raise
        if consume is not None:
            self._forget(run_id)  # a vote may have counted on another item
        elif exports:
            self._exported(run_id, exports)
        self._remember_task(run_id, record)
        return record

    def resolve_edge(self, run_id: str, task_id: str, dep_id: str, outcome: str,
                     epoch: int | None = None) -> Written[TaskRecord]:
        written = self.inner.resolve_edge(run_id, task_id, dep_id, outcome, epoch)
        self._remember_task(run_id, written.record)
        return written

    def record_refusal(self, run_id: str, record_id: str, refusal: dict[str, Any], keep: int) -> TaskRecord:
        record = self.inner.record_refusal(run_id, record_id, refusal, keep)
        self._remember_task(run_id, record)
        return record

    def reset_task(self, run_id: str, task_id: str, epoch: int, keep: dict[str, Any] | None = None,
                   rewinding: bool = False) -> bool:
        self._forget(run_id)
        return self.inner.reset_task(run_id, task_id, epoch, keep, rewinding)

    # ------------------------------------------------------------ run writes: forget the run

    def finish_run(self, run_id: str, *args: Any, **kwargs: Any) -> bool:
        self._forget(run_id)
        return self.inner.finish_run(run_id, *args, **kwargs)

    def begin_end(self, run_id: str, *args: Any, **kwargs: Any) -> RunRecord:
        self._forget(run_id)
        return self.inner.begin_end(run_id, *args, **kwargs)

    def set_run_status(self, run_id: str, *args: Any, **kwargs: Any) -> bool:
        self._forget(run_id)
        return self.inner.set_run_status(run_id, *args, **kwargs)

    def halt_run(self, run_id: str, *args: Any, **kwargs: Any) -> RunRecord:
        self._forget(run_id)
        return self.inner.halt_run(run_id, *args, **kwargs)

    def record_sink_done(self, run_id: str, task_id: str, epoch: int | None = None) -> RunRecord:
        self._forget(run_id)
        return self.inner.record_sink_done(run_id, task_id, epoch)

    def record_failure(self, run_id: str, task_id: str, error: dict, epoch: int | None = None) -> None:
        self._forget(run_id)
        self.inner.record_failure(run_id, task_id, error, epoch)

    def migrate_task(self, run_id: str, *args: Any, **kwargs: Any) -> bool:
        self._forget(run_id)
        return self.inner.migrate_task(run_id, *args, **kwargs)

    def pause_to_migrate(self, run_id: str, *args: Any, **kwargs: Any) -> Written[RunRecord]:
        self._forget(run_id)
        return self.inner.pause_to_migrate(run_id, *args, **kwargs)

    def switch_plan(self, run_id: str, *args: Any, **kwargs: Any) -> Written[RunRecord]:
        self._forget(run_id)
        return self.inner.switch_plan(run_id, *args, **kwargs)

    def reopen_run(self, run_id: str, *args: Any, **kwargs: Any) -> Written[RunRecord]:
        self._forget(run_id)
        return self.inner.reopen_run(run_id, *args, **kwargs)

    def begin_rewind(self, run_id: str, *args: Any, **kwargs: Any) -> Written[RunRecord]:
        self._forget(run_id)
        return self.inner.begin_rewind(run_id, *args, **kwargs)

    def reopen_moving(self, run_id: str, *args: Any, **kwargs: Any) -> Written[RunRecord]:
        self._forget(run_id)
        return self.inner.reopen_moving(run_id, *args, **kwargs)

    def create_run(self, run: RunRecord) -> Written[RunRecord]:
        self._forget(run.run_id)
        written = self.inner.create_run(run)
        # Either way the answer is the run as stored (written, or the refusal's ALL_OLD): as good as a
        # read of it, so the start message's first task loads without one (as after get_run).
        memories: dict[str, _Memory] | None = getattr(self._local, "memory", None)
        if memories is not None:
            memories[run.run_id] = _Memory(_maybe_copy(written.record), self.clock.now())
        return written

    # ------------------------------------------------------------ the rest passes on unchanged

    def __getattr__(self, name: str) -> Any:
        # get_run, plans, the registry, tokens, listings...: read or written as they are.
        return getattr(self.inner, name)
