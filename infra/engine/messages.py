"""The work-queue messages, and item keys of role instances.

A task's item key is its id; a role task that can run more than once (a catch
handler, per caught failure; a compensation, per compensated task) runs as an
instance keyed ``<task id>@<other task id>``. Ids cannot contain "@".
"""

from __future__ import annotations

from typing import Any

# Bounds on one run's input and one task's result (JSON bytes). Values over 32 KB go to S3
# through the claim check (infra/aws/claims.py), so DynamoDB's 400 KB item and SQS's 256 KB
# message do not bind; these keep one value within a Lambda's memory and, for the input,
# under the 6 MB Lambda request that POST /runs arrives in on AWS.
MAX_INPUT = 5 * 1024 * 1024
MAX_OUTPUT = 10 * 1024 * 1024


def exec_message(run_id: str, plan_hash: str, task_id: str, attempt: int, key: str | None = None,
                 ctx: dict | None = None, epoch: int = 0) -> dict[str, Any]:
    message = {"k": "exec", "run": run_id, "plan": plan_hash, "task": task_id, "attempt": attempt}
    if key and key != task_id:
        message["key"] = key
    if ctx:
        message["ctx"] = ctx
    if epoch:  # the redrive epoch of the item it is about: an older message is stale (redrive.py)
        message["epoch"] = epoch
    return message


def timer_name(run_id: str, task_id: str, attempt: int, reason: str, epoch: int = 0) -> str:
    # Names are idempotency keys: after a redrive a task's timers get new ones, so a timer still
    # pending from before (which will be dropped as stale) does not stand in for the new one.
    return f"{reason}|{run_id}|{task_id}|{attempt}" + (f"|r{epoch}" if epoch else "")


def is_stale(message: dict[str, Any], rec) -> bool:
    """A message sent before a redrive reset the task it is about: it must not start or advance it."""
    return int(message.get("epoch") or 0) < (rec.redrive if rec is not None else 0)


def instance_key(task_id: str, for_task: str) -> str:
    return f"{task_id}@{for_task}"


def node_of(key: str) -> str:
    """The plan node an item key belongs to."""
    return key.split("@", 1)[0]
