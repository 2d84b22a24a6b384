"""The compatibility report between two versions of a workflow (docs/versions.md). Pure: two plans in,
a typed report out, so the registry, the CLI and a migration (which reuses its task matching and
renames) all read the same answer.

Every difference between the plans is a change, classified breaking or compatible. Breaking means a
caller of the old version, or a run of it, could be hurt: the interface narrows (an input removed,
newly required or changed, an output removed), or a run's progress may find no place in the new
version (a task removed or of another type, a dependency added to a task, an approval gate added to
or taken from a task). What a run does not depend on (a config value, a retry, a wait's duration, a
description) is compatible.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from statemachine.plan import Node, Plan

WAIT_TYPES = frozenset({"wait", "callback"})  # the engine's durable waits other than an approval


class Impact(StrEnum):
    BREAKING = "breaking"
    COMPATIBLE = "compatible"


class ChangeKind(StrEnum):
    INPUT_ADDED = "input_added"
    INPUT_REMOVED = "input_removed"
    INPUT_NEWLY_REQUIRED = "input_newly_required"
    INPUT_CHANGED = "input_changed"
    OUTPUT_ADDED = "output_added"
    OUTPUT_REMOVED = "output_removed"
    OUTPUT_CHANGED = "output_changed"
    TASK_ADDED = "task_added"
    TASK_REMOVED = "task_removed"
    TASK_RENAMED = "task_renamed"
    TASK_TYPE_CHANGED = "task_type_changed"
    TASK_CONFIG_CHANGED = "task_config_changed"
    TASK_CHANGED = "task_changed"  # any other setting of a task: when, retry, timeout, outputs, ...
    DEPENDENCIES_CHANGED = "dependencies_changed"
    WAIT_CHANGED = "wait_changed"
    APPROVAL_CHANGED = "approval_changed"
    SETTING_CHANGED = "setting_changed"  # a workflow-level setting: timeout, variables, catch, ...


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    impact: Impact
    subject: str  # the input, output, setting or task (a renamed task's new id) it is about
    detail: str  # one sentence, for people
    fields: tuple[str, ...] = ()  # the settings or config keys that differ, where that says more
    renamed_from: str | None = None  # TASK_RENAMED: the old id

    @property
    def breaking(self) -> bool:
        return self.impact is Impact.BREAKING

    def line(self) -> str:
        return f"{self.impact.value}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind.value, "impact": self.impact.value, "subject": self.subject,
                                "detail": self.detail}
        if self.fields:
            body["fields"] = list(self.fields)
        if self.renamed_from is not None:
            body["renamed_from"] = self.renamed_from
        return body


@dataclass(frozen=True)
class CompatibilityReport:
    workflow_id: str
    from_version: str
    to_version: str
    changes: tuple[Change, ...]
    # Old task id -> new task id, for every task both versions have (renamed or not): what a migration
    # maps a run's tasks by.
    task_map: tuple[tuple[str, str], ...] = ()

    @property
    def breaking(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.breaking)

    @property
    def is_breaking(self) -> bool:
        return any(c.breaking for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        return {"workflow_id": self.workflow_id, "from": self.from_version, "to": self.to_version,
                "breaking": self.is_breaking, "changes": [c.to_json() for c in self.changes]}


def compare(before: Plan, after: Plan) -> CompatibilityReport:
    """What changed from ``before`` to ``after`` (two versions of one workflow, or any two plans)."""
    task_map, renames = _match_tasks(before, after)
    changes = [*_inputs(before, after), *_input_schema(before, after), *_outputs(before, after),
               *_tasks(before, after, task_map, renames), *_settings(before, after, renames)]
    return CompatibilityReport(before.workflow_id, before.version, after.version, tuple(changes),
                               tuple(sorted(task_map.items())))


def same_content(a: Plan, b: Plan) -> bool:
    """Whether two plans of one id@version are the same workflow: equal but for where its tasks are
    written in the file (a comment added above them moves them, and changes nothing)."""
    return a.hash == b.hash or _unplaced(a) == _unplaced(b)


def _unplaced(plan: Plan) -> str:
    nodes = {n: node.model_copy(update={"line": 0, "col": 0}) for n, node in plan.nodes.items()}
    return plan.model_copy(update={"nodes": nodes, "hash": ""}).canonical_json()


# --- inputs and outputs ------------------------------------------------------------------


def _properties(plan: Plan) -> dict[str, Any]:
    props = plan.input_schema.get("properties")
    return props if isinstance(props, dict) else {}


def _required(plan: Plan) -> set[str]:
    """Inputs a caller must give: required by the schema and given no default."""
    listed = plan.input_schema.get("required")
    names = {n for n in listed if isinstance(n, str)} if isinstance(listed, list) else set()
    props = _properties(plan)
    return {n for n in names if n not in plan.input_defaults
            and not (isinstance(props.get(n), dict) and "default" in props[n])}


_ANNOTATIONS = frozenset({"description", "title", "examples", "default", "$comment"})


def _shape(schema: Any) -> Any:
    # What an input accepts, without what only documents it (a default is judged by _required).
    return {k: v for k, v in schema.items() if k not in _ANNOTATIONS} if isinstance(schema, dict) else schema


def _inputs(before: Plan, after: Plan) -> Iterator[Change]:
    old, new = _properties(before), _properties(after)
    old_names, new_names = set(old) | _required(before), set(new) | _required(after)
    old_required, new_required = _required(before), _required(after)
    for name in sorted(old_names - new_names):
        yield Change(ChangeKind.INPUT_REMOVED, Impact.BREAKING, name, f"input '{name}' removed")
    for name in sorted(new_required - old_required):
        what = "newly required" if name in old_names else "added, required"
        yield Change(ChangeKind.INPUT_NEWLY_REQUIRED, Impact.BREAKING, name, f"input '{name}' {what}")
    for name in sorted(new_names - old_names - new_required):
        yield Change(ChangeKind.INPUT_ADDED, Impact.COMPATIBLE, name, f"input '{name}' added (optional)")
    for name in sorted((old_names & new_names) - (new_required - old_required)):
        if _shape(old.get(name)) != _shape(new.get(name)):
            yield Change(ChangeKind.INPUT_CHANGED, Impact.BREAKING, name,
                         f"input '{name}' accepts other values (its schema changed)")
        elif before.input_defaults.get(name) != after.input_defaults.get(name) or (
                (old.get(name) or {}).get("default") != (new.get(name) or {}).get("default")):
            yield Change(ChangeKind.INPUT_CHANGED, Impact.COMPATIBLE, name, f"input '{name}' has another default")


def _input_schema(before: Plan, after: Plan) -> Iterator[Change]:
    """additionalProperties, a oneOf, ...: what the inputs accept as a whole."""
    old_schema = {k: v for k, v in before.input_schema.items() if k not in ("properties", "required")}
    new_schema = {k: v for k, v in after.input_schema.items() if k not in ("properties", "required")}
    if old_schema != new_schema:
        yield Change(ChangeKind.INPUT_CHANGED, Impact.BREAKING, "inputs",
                     "the input schema changed beyond its properties", fields=tuple(_differing(old_schema, new_schema)))


def _outputs(before: Plan, after: Plan) -> Iterator[Change]:
    old, new = before.output_mappings, after.output_mappings
    for name in sorted(set(old) - set(new)):
        yield Change(ChangeKind.OUTPUT_REMOVED, Impact.BREAKING, name, f"output '{name}' removed")
    for name in sorted(set(new) - set(old)):
        yield Change(ChangeKind.OUTPUT_ADDED, Impact.COMPATIBLE, name, f"output '{name}' added")
    for name in sorted(set(old) & set(new)):
        if old[name] != new[name]:
            yield Change(ChangeKind.OUTPUT_CHANGED, Impact.COMPATIBLE, name, f"output '{name}' is computed otherwise")


# --- tasks -----------------------------------------------------------------------------------


def _match_tasks(before: Plan, after: Plan) -> tuple[dict[str, str], dict[str, str]]:
    """(old id -> new id for every task both have, old id -> new id for the declared renames)."""
    renames = {node.renamed_from: n for n, node in after.nodes.items()
               if node.renamed_from in before.nodes and node.renamed_from not in after.nodes}
    same = {n: n for n in before.nodes if n in after.nodes}
    return {**same, **renames}, renames


# A node's fields the task comparison reads itself, or that follow from others (dependents, position).
_TASK_OWN = frozenset({"id", "kind", "type", "config", "deps", "requires_approval", "dependents", "line", "col",
                       "renamed_from"})


def _tasks(before: Plan, after: Plan, task_map: dict[str, str], renames: dict[str, str]) -> Iterator[Change]:
    """Removed tasks first, then the new version's tasks in its order: each added, or renamed and changed."""
    old_of = {new_id: old_id for old_id, new_id in task_map.items()}
    for gone in before.nodes:
        if gone not in task_map:
            what = _what(before.nodes[gone])
            yield Change(ChangeKind.TASK_REMOVED, Impact.BREAKING, gone, f"{what} '{gone}' removed")
    for new_id, node in after.nodes.items():
        old_id = old_of.get(new_id)
        if old_id is None:
            note = (f" (renamed from '{node.renamed_from}', which version {before.version} does not have)"
                    if node.renamed_from else "")
            yield Change(ChangeKind.TASK_ADDED, Impact.COMPATIBLE, new_id, f"{_what(node)} '{new_id}' added{note}")
            continue
        if old_id != new_id:
            yield Change(ChangeKind.TASK_RENAMED, Impact.COMPATIBLE, new_id, f"task '{old_id}' renamed to '{new_id}'",
                         renamed_from=old_id)
        yield from _task(before.nodes[old_id], node, renames, {renames.get(a, a) for a in _ancestors(before, old_id)})


def _ancestors(plan: Plan, node_id: str) -> set[str]:
    """Every node ``node_id`` waits for, directly or through others."""
    seen: set[str] = set()
    pending = list(plan.nodes[node_id].deps)
    while pending:
        dep = pending.pop()
        if dep not in seen and dep in plan.nodes:
            seen.add(dep)
            pending.extend(plan.nodes[dep].deps)
    return seen


def _what(node: Node) -> str:
    return "task" if node.kind == "task" else node.kind.replace("_", "-")


def _as_renamed(node: Node, renames: dict[str, str]) -> Node:
    """The old version's ``node`` with the ids of renamed tasks written as their new ones, wherever a
    node names another (so a rename alone is no change of the tasks around it)."""
    if not renames:
        return node

    def new(ids: Any) -> Any:
        return [renames.get(i, i) for i in ids] if isinstance(ids, list) else ids

    config = node.config
    if node.kind == "loop":
        config = {**config, **{k: new(config.get(k)) for k in ("body", "roots", "last") if k in config}}
    elif node.kind == "parallel":
        config = {**config, **{k: {b: new(ids) for b, ids in (config.get(k) or {}).items()}
                               for k in ("branches", "last") if k in config}}
    one = renames.get
    return node.model_copy(update={
        "config": config, "deps": tuple(sorted(one(d, d) for d in node.deps)),
        "then": tuple(one(i, i) for i in node.then), "else_": tuple(one(i, i) for i in node.else_),
        "order_deps": tuple(one(i, i) for i in node.order_deps),
        "parallel_of": one(node.parallel_of, node.parallel_of) if node.parallel_of else None,
        "loop_of": one(node.loop_of, node.loop_of) if node.loop_of else None,
        "branch_of": (one(node.branch_of[0], node.branch_of[0]), node.branch_of[1]) if node.branch_of else None,
        "compensation": node.compensation.model_copy(update={"task_id": one(node.compensation.task_id,
                                                                            node.compensation.task_id)})
        if node.compensation else None})


def _task(old: Node, new: Node, renames: dict[str, str], waited: set[str]) -> Iterator[Change]:
    """``waited``: what ``old`` waited for in its version, directly or not (as the new version's ids)."""
    name, old = new.id, _as_renamed(old, renames)
    if (old.kind, old.type) != (new.kind, new.type):
        yield Change(ChangeKind.TASK_TYPE_CHANGED, Impact.BREAKING, name,
                     f"task '{name}' changed type from {old.type or old.kind} to {new.type or new.kind}")
    old_deps, new_deps = set(old.deps), set(new.deps)
    if old_deps != new_deps:
        added, removed = sorted(new_deps - old_deps), sorted(old_deps - new_deps)
        parts = ([f"now waits for {', '.join(added)}"] if added else []) + (
            [f"no longer waits for {', '.join(removed)}"] if removed else [])
        # A run of the old version may have run the task before a dependency it never waited for, even
        # through others: breaking. Waiting for less, or directly for what it waited for anyway, is not.
        unseen = [d for d in added if d not in waited]
        yield Change(ChangeKind.DEPENDENCIES_CHANGED, Impact.BREAKING if unseen else Impact.COMPATIBLE, name,
                     f"task '{name}' {' and '.join(parts)}", fields=tuple(added + removed))
    if (old.requires_approval is None) != (new.requires_approval is None):
        gate = "gains" if new.requires_approval else "loses"
        yield Change(ChangeKind.APPROVAL_CHANGED, Impact.BREAKING, name, f"task '{name}' {gate} its approval gate")
    elif old.requires_approval is not None and new.requires_approval is not None and \
            old.requires_approval != new.requires_approval:
        gate_keys = _differing(old.requires_approval.model_dump(), new.requires_approval.model_dump())
        yield Change(ChangeKind.APPROVAL_CHANGED, Impact.COMPATIBLE, name,
                     f"task '{name}': approval gate changed ({', '.join(gate_keys)})", fields=gate_keys)
    if old.config != new.config and old.type == new.type:
        keys = _differing(old.config, new.config)
        kind, what = ((ChangeKind.APPROVAL_CHANGED, "approval") if new.type == "approval" else
                      (ChangeKind.WAIT_CHANGED, "wait") if new.type in WAIT_TYPES else
                      (ChangeKind.TASK_CONFIG_CHANGED, "config"))
        yield Change(kind, Impact.COMPATIBLE, name, f"task '{name}': {what} changed ({', '.join(keys)})", fields=keys)
    others = tuple(f for f in Node.model_fields if f not in _TASK_OWN and getattr(old, f) != getattr(new, f))
    if others:
        shown = ", ".join(f.rstrip("_") for f in others)
        yield Change(ChangeKind.TASK_CHANGED, Impact.COMPATIBLE, name, f"task '{name}': {shown} changed",
                     fields=tuple(f.rstrip("_") for f in others))


def _differing(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)))


# --- the workflow's own settings ----------------------------------------------------------------

# Compared by the sections above, derived from the nodes, or what every new version changes.
_PLAN_OWN = frozenset({"workflow_id", "version", "changelog", "hash", "input_schema", "input_defaults",
                       "output_mappings", "nodes", "roots", "sinks", "migrations"})


def _settings(before: Plan, after: Plan, renames: dict[str, str]) -> Iterator[Change]:
    for field in Plan.model_fields:
        if field in _PLAN_OWN:
            continue
        old, new = getattr(before, field), getattr(after, field)
        if field == "catch":
            old = tuple(c.model_copy(update={"handler": renames.get(c.handler, c.handler)}) for c in old)
        elif field == "finally_tasks":
            old = tuple(renames.get(t, t) for t in old)
        if old != new:
            yield Change(ChangeKind.SETTING_CHANGED, Impact.COMPATIBLE, field, f"workflow setting '{field}' changed")
