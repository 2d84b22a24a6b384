"""What the collaborators that call each other back expect of one another.

Most collaborators are built in order and receive what they use. Three calls go back up the
order, because the lifecycle is recursive: recording an outcome carries the run on
(propagation), which can finish a loop (recording the loop's outcome), and stopping a task
stops the sub-workflow run it waits for (which stops that run's tasks). Those are typed
here, and the Engine connects them once it has built everything.
"""

from __future__ import annotations

from typing import Protocol

from statemachine.plan import Node, Plan

from ..ports import TaskRecord


class Propagates(Protocol):
    def propagate(self, plan: Plan, run_id: str, node: Node, rec: TaskRecord) -> None:
        """A task's outcome is written: apply its out-edges, start what became ready, end the run."""
        ...


class FinishesIterations(Protocol):
    def iteration_done(self, plan: Plan, run_id: str, loop: Node, index: int) -> None:
        """Every last task of iteration ``index`` of ``loop`` has finished: go on with the loop."""
        ...


class HaltsChildren(Protocol):
    def halt_child(self, rec: TaskRecord, why: str) -> None:
        """Stop the sub-workflow run a stopped task was waiting for."""
        ...
