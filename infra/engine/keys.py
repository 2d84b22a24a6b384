"""The keys of a run's items (statemachine/keys.py, where they are defined so the core can name them too)
and the names of timers."""

from __future__ import annotations

from statemachine.keys import (
    CHUNK,
    body_key,
    chunk_key,
    instance_key,
    is_chunk,
    iteration_key,
    iteration_of,
    node_of,
    refusal_key,
    vote_key,
)

from ..ports import TaskRecord

__all__ = ["CHUNK", "body_key", "chunk_key", "instance_key", "is_chunk", "is_stale", "iteration_key", "iteration_of",
           "node_of", "refusal_key", "timer_name", "vote_key"]


def timer_name(run_id: str, task_id: str, attempt: int, reason: str, epoch: int = 0) -> str:
    # Names are idempotency keys: after a redrive a task's timers get new ones, so a timer still
    # pending from before (which will be dropped as stale) does not stand in for the new one.
    return f"{reason}|{run_id}|{task_id}|{attempt}" + (f"|r{epoch}" if epoch else "")


def is_stale(epoch: int, rec: TaskRecord | None) -> bool:
    """A message of redrive ``epoch`` about ``rec``, sent before a redrive reset it: it must not start
    or advance it."""
    return epoch < (rec.redrive if rec is not None else 0)
