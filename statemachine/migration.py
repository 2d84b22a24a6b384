"""Planning the migration of a running run to another version of its workflow (docs/versions.md).

Pure: the two plans, the compatibility report's task map (old id -> new id, renames included) and the
state of the run's items in; a typed plan (what happens to each task) or a typed refusal (each task
that blocks it, and why) out. The engine (infra/engine/migration.py) applies a plan; the API's dry run
shows it as it is.

What a migration does with each task of the new version's flow (outside loop bodies):

* **keep**: it ended in the run (completed, skipped, failed, cancelled) and the new version has it, by
  id or by a declared rename. Its item is kept as it is (renamed to its new id).
* **keep waiting**: it waits (a timer, a callback, an approval) and the new version has it under the
  same id, of the same type and with the same approval gate. Its links go on deciding, its timers fire.
* **re-evaluate**: it has not started; it starts under the new plan when its dependencies allow.
* **add**: the new version adds it; it starts under the new plan when its dependencies allow.

and with each task the old version had and the new one does not: **drop** (it never ran, or its end is
kept only as history).

It refuses, naming each task, when it would lose or repeat an effect: a task mid-attempt (running, or
between retries: its attempt's effect would be lost or run twice); a task still waiting that the new
version removes or renames or changes the type or approval gate of (its answer would be lost); a
completed task the new version removes while it declares a compensation (it could no longer be
undone), or makes another type or a role/loop task (its output cannot be used); a kept task that the
new version makes wait for a task that has not ended here (it would have to run again); a loop, a
parallel block or a sub-workflow in progress (their iterations, members or child run follow the old
plan).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from statemachine.plan import Node, Plan
from statemachine.status import TASK_ENDED, TaskStatus

# An attempt is under way: a migration would lose its effect, or repeat it.
MID_ATTEMPT = frozenset({TaskStatus.RUNNING, TaskStatus.RETRYING, TaskStatus.READY})
# What a kept wait may be waiting for: the others (a loop's iterations, a child run) follow the old plan.
KEPT_WAITS = frozenset({"timer", "callback", "approval", None})


def migrated_to(target: str) -> str:
    """The reason in the note of an item written again by the migration to ``target`` (``id@version``); the
    note is also marked ``migrated`` (statemachine/state.py: LastChange), which is what the metrics read."""
    return f"migrated to {target}"


class Action(StrEnum):
    KEEP = "keep"
    KEEP_WAITING = "keep_waiting"
    RE_EVALUATE = "re_evaluate"
    ADD = "add"
    DROP = "drop"


@dataclass(frozen=True)
class TaskState:
    """What a migration reads of one item of the run (a missing item is PENDING)."""

    status: str = TaskStatus.PENDING
    waiting_for: str | None = None


@dataclass(frozen=True)
class TaskMove:
    task: str  # the new version's id (the old one's for a drop)
    action: Action
    status: str  # the item's status in the run now
    renamed_from: str | None = None  # keep of a renamed task: its id in the old version

    def line(self) -> str:
        renamed = f" (was '{self.renamed_from}')" if self.renamed_from else ""
        return f"{self.action.value.replace('_', ' ')}: '{self.task}'{renamed}, {self.status.lower()}"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"task": self.task, "action": self.action.value, "status": self.status}
        if self.renamed_from:
            body["renamed_from"] = self.renamed_from
        return body


@dataclass(frozen=True)
class Blocker:
    task: str  # the old version's id (the new one's for a dependency it gained)
    status: str
    reason: str

    def line(self) -> str:
        return f"'{self.task}' ({self.status.lower()}): {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class MigrationPlan:
    workflow_id: str
    from_version: str
    to_version: str
    moves: tuple[TaskMove, ...]  # the new version's flow tasks in its order, then the drops
    # The run's variables on the new version (with its defaults and its migration's state and set); None:
    # not computed (the planner alone does not evaluate expressions: the engine adds them).
    variables: dict[str, Any] | None = None
    before: dict[str, Any] | None = None  # the run's variables as they are, to show what changes
    inputs: dict[str, Any] | None = None  # the run's inputs with the new version's defaults (None: as they are)

    @property
    def allowed(self) -> bool:
        return True

    def changed_variables(self) -> dict[str, Any]:
        return {k: v for k, v in (self.variables or {}).items() if (self.before or {}).get(k, _UNSET) != v}

    def of(self, action: Action) -> tuple[TaskMove, ...]:
        return tuple(m for m in self.moves if m.action is action)

    @property
    def renames(self) -> dict[str, str]:
        """old id -> new id of every task that is renamed."""
        return {m.renamed_from: m.task for m in self.moves if m.renamed_from}

    @property
    def ended(self) -> frozenset[str]:
        """The new version's ids of the tasks kept as ended."""
        return frozenset(m.task for m in self.moves if m.action is Action.KEEP)

    def lines(self) -> list[str]:
        return [f"migrate {self.workflow_id} {self.from_version} -> {self.to_version}",
                *(f"  {m.line()}" for m in self.moves),
                *(f"  set variable '{k}' to {json.dumps(v, sort_keys=True)[:200]}"
                  for k, v in self.changed_variables().items())]

    def to_json(self) -> dict[str, Any]:
        return {"workflow_id": self.workflow_id, "from": self.from_version, "to": self.to_version,
                "allowed": True, "tasks": [m.to_json() for m in self.moves], "variables": self.changed_variables()}


@dataclass(frozen=True)
class MigrationRefused:
    workflow_id: str
    from_version: str
    to_version: str
    blockers: tuple[Blocker, ...]

    @property
    def allowed(self) -> bool:
        return False

    def lines(self) -> list[str]:
        return [f"cannot migrate {self.workflow_id} {self.from_version} -> {self.to_version}:",
                *(f"  {b.line()}" for b in self.blockers)]

    def to_json(self) -> dict[str, Any]:
        return {"workflow_id": self.workflow_id, "from": self.from_version, "to": self.to_version,
                "allowed": False, "blockers": [b.to_json() for b in self.blockers]}


Outcome = MigrationPlan | MigrationRefused
_UNSET = object()


def plan_migration(old: Plan, new: Plan, task_map: Mapping[str, str], states: Mapping[str, TaskState]) -> Outcome:
    """``task_map``: the compatibility report's (old id -> new id); ``states``: the run's items by key."""
    blockers: list[Blocker] = []
    if old.workflow_id != new.workflow_id:
        return MigrationRefused(old.workflow_id, old.version, new.version, (Blocker(
            "$run", "-", f"a run moves only between versions of its workflow '{old.workflow_id}'"),))
    for key, state in states.items():
        if key not in old.nodes and state.status in MID_ATTEMPT | {TaskStatus.WAITING}:
            # A loop's iteration, a body task's run, a handler's or compensation's instance.
            blockers.append(Blocker(key, state.status, "an instance in progress (a loop's iteration, a catch "
                                    "handler's or a compensation's run): it follows the old plan"))
    new_of = {o: n for o, n in task_map.items() if o in old.nodes and n in new.nodes}
    old_of = {n: o for o, n in new_of.items()}
    moves: list[TaskMove] = []
    blocked: set[str] = set()  # new ids of the tasks blocking it: what waits for them says nothing more
    for node in new.nodes.values():
        if not _in_flow(node):
            continue
        old_id = old_of.get(node.id)
        state = states.get(old_id, TaskState()) if old_id is not None else TaskState()
        move, why = _move(old.nodes[old_id] if old_id is not None else None, node, state, new.version)
        if why:
            blockers.append(Blocker(old_id or node.id, state.status, why))
            blocked.add(node.id)
        elif move is not None:
            moves.append(move)
    for old_id, node in old.nodes.items():
        state = states.get(old_id, TaskState())
        if old_id in new_of and _in_flow(new.nodes[new_of[old_id]]):
            continue
        why = _dropped(node, new.nodes.get(new_of.get(old_id, "")), state, new.version)
        if why:
            blockers.append(Blocker(old_id, state.status, why))
        elif _in_flow(node):
            moves.append(TaskMove(old_id, Action.DROP, state.status))
    blockers += _repeats(new, moves, blocked)
    if blockers:
        return MigrationRefused(old.workflow_id, old.version, new.version, tuple(blockers))
    return MigrationPlan(old.workflow_id, old.version, new.version, tuple(moves))


def _in_flow(node: Node) -> bool:
    return node.role == "flow" and node.loop_of is None


def _move(old: Node | None, new: Node, state: TaskState, version: str) -> tuple[TaskMove | None, str | None]:
    """What happens to the new version's flow task ``new`` (``old``: what it was, if anything): a move, or why not."""
    status = state.status
    if old is None:
        return TaskMove(new.id, Action.ADD, status), None
    renamed = old.id if old.id != new.id else None
    if status in MID_ATTEMPT:
        return None, "an attempt is under way: migrating would lose its effect or repeat it"
    if status == TaskStatus.PENDING:
        return TaskMove(new.id, Action.RE_EVALUATE, status, renamed), None
    if not _in_flow(old):
        return None, "it is not a task of the workflow's flow"
    if (old.kind, old.type) != (new.kind, new.type):
        return None, (f"it is {_what(old)} here and {_what(new)} in version {version}: "
                      + ("its output cannot be used there" if status in TASK_ENDED else "what it waits for is gone"))
    if status in TASK_ENDED:
        return TaskMove(new.id, Action.KEEP, status, renamed), None
    # WAITING
    if old.kind in ("loop", "parallel", "sub_workflow") or state.waiting_for not in KEPT_WAITS:
        return None, f"{_what(old)} in progress: what it runs follows the old plan"
    if renamed:
        return None, f"it is waiting, and version {version} renames it to '{new.id}': its links and timers name it"
    if (old.requires_approval is None) != (new.requires_approval is None):
        gate = "adds" if new.requires_approval else "removes"
        return None, f"it is waiting, and version {version} {gate} its approval gate"
    return TaskMove(new.id, Action.KEEP_WAITING, status), None


def _dropped(old: Node, new: Node | None, state: TaskState, version: str) -> str | None:
    """Why the old version's task ``old``, which is not in the new version's flow, blocks (None: it does not)."""
    status = state.status
    if status in MID_ATTEMPT:
        return "an attempt is under way: migrating would lose its effect or repeat it"
    gone = f"version {version} removes it" if new is None else f"version {version} makes it a {new.role} task" + (
        " of a loop body" if new.loop_of else "")
    if status == TaskStatus.WAITING and _in_flow(old):
        return f"it is waiting, and {gone}: its answer would be lost"
    if status == TaskStatus.COMPLETED and old.compensation is not None and _in_flow(old):
        return f"it completed and declares a compensation, and {gone}: it could no longer be undone"
    if status == TaskStatus.COMPLETED and new is not None and _in_flow(old):
        return f"it completed, and {gone}: its output cannot be used there"
    return None


def _repeats(new: Plan, moves: list[TaskMove], blocked: set[str]) -> list[Blocker]:
    """A kept task that the new version makes wait for one that has not ended here ran too early: keeping it
    would skip that order, running it again would repeat its effect."""
    ended = {m.task for m in moves if m.action is Action.KEEP} | blocked
    blockers = []
    for move in moves:
        if move.action not in (Action.KEEP, Action.KEEP_WAITING):
            continue
        missing = [d for d in new.nodes[move.task].deps if d not in ended and d not in new.nodes[move.task].order_deps]
        if missing:
            blockers.append(Blocker(move.renamed_from or move.task, move.status, (
                f"version {new.version} makes it wait for {', '.join(repr(d) for d in missing)}, which "
                f"{'has' if len(missing) == 1 else 'have'} not ended here: it would have to run again")))
    return blockers


def _what(node: Node) -> str:
    """``node``'s kind with its article: "an approval task", "a loop"."""
    what = f"{node.type} task" if node.kind == "task" else node.kind.replace("_", "-")
    return ("an " if what[0] in "aeiou" else "a ") + what
