"""The worker's time budget: a task that runs inside the worker must fit in the time its Lambda has left.

The worker's Lambda timeout is 30 s; a task that runs in it (http, llm, browser, database, email,
sms, voice, file) may take up to its timeout (its own, or its type's default, both bounded by
MAX_WORKER_TASK_TIMEOUT). Started with less time left, it would be cut off by the Lambda timeout
and retried as a crash. So the worker looks at its remaining time first and, if the task does not
fit, hands the message back at once (a copy sent again, the original counted done) to a process
that has the time. Code tasks never run in the worker (code_tasks.py); waits and blocks take no time.
"""

from __future__ import annotations

from statemachine.limits import CODE_TASK_TYPES
from statemachine.messages import Exec
from statemachine.plan import Node

from ..ports import TaskRecord
from ..tasks.registry import worker_timeout

# Besides the task itself: loading, claiming, recording the result and propagating it.
OWN_WORK = 3.0
# A message handed back this often runs anyway: a worker whose timeout cannot fit the task at all
# (a misconfiguration) must not pass it around for ever; the Lambda timeout then returns it.
MAX_HAND_BACKS = 5
_NO_TIME = ("wait", "callback", "approval", *CODE_TASK_TYPES)


def needs_time(node: Node, rec: TaskRecord) -> float:
    """Seconds of the worker's time an attempt of ``node`` may take (0: it runs nothing in the worker)."""
    if node.kind != "task" or node.type in _NO_TIME:
        return 0.0
    if node.requires_approval is not None and not (rec.approval or {}).get("result"):
        return 0.0  # its approval gate: a wait
    return worker_timeout(node.timeout) + OWN_WORK


def fits_in_worker(node: Node, rec: TaskRecord, message: Exec, seconds_left: float) -> bool:
    needed = needs_time(node, rec)
    return needed == 0.0 or needed <= seconds_left or message.handed_back >= MAX_HAND_BACKS
