"""A checked workflow's entries -> its Plan (statemachine/plan.py).

The compiler (statemachine/compiler.py) calls this only for a file without a single diagnostic, so
every entry has its id and the models are whole. What only the wired graph shows (a cycle through a
parallel block) is still raised here, as a WorkflowError.
"""

from __future__ import annotations

from typing import Callable, Literal

from statemachine import dsl
from statemachine.compile_entry import Entry, Path
from statemachine.diagnostics import Diagnostic, WorkflowError
from statemachine.graph import block_members, task_roles, topological, wire_loops, wire_parallel_blocks
from statemachine.graph_form import CONTEXT as GRAPH_CONTEXT
from statemachine.plan import CatchSpec, CompensationSpec, MigrationSpec, Node, OutputSpec, Plan, VariableSpec
from statemachine.raw_data import as_dict as _d
from statemachine.tool_tasks import tool_task_ids


def build_plan(wf: dsl.Workflow, entries: list[Entry], by_id: dict[str, Entry], filename: str,
               pos: Callable[[Path, bool], tuple[int, int]], graph: bool = False) -> Plan:
    """The Plan of ``wf``: one Node per entry, the blocks wired, the roles and dependents set, the
    nodes in running order. ``pos``: the line and column of a path in the file (the key's, if asked);
    ``graph``: the file was a graph document, whose input is the graph's context."""
    nodes: dict[str, Node] = {}
    hitl = wf.config.human_in_the_loop
    default_timeout = hitl.default_timeout if hitl else None
    channels = (hitl.notification_channels or None) if hitl else None
    for entry in entries:
        # Built only from a file without errors: every entry has its id by now.
        assert entry.id is not None, entry.path
        model = wf.find(entry.path[1:])
        line, col = pos(entry.path + ("id",), True)
        deps = tuple(sorted(entry.deps))
        if entry.kind == "condition":
            nodes[entry.id] = Node(
                id=entry.id, kind="condition", name=model.name, description=model.description,
                deps=deps, condition=model.if_, then=_ids(model.then), else_=_ids(model.else_),
                branch_of=_branch_of(entry, by_id), line=line, col=col)
            continue
        if entry.kind == "sub_workflow":
            nodes[entry.id] = Node(id=entry.id, kind="sub_workflow", name=model.name,
                                   description=model.description, deps=deps, timeout=model.timeout,
                                   config={"workflow_ref": model.workflow_ref, "inputs": model.inputs,
                                           "outputs": model.outputs or None},
                                   branch_of=_branch_of(entry, by_id), line=line, col=col)
            continue
        if entry.kind == "loop":
            nodes[entry.id] = Node(id=entry.id, kind="loop", name=model.name, description=model.description,
                                   deps=deps, config={
                                       "type": model.type, "items": model.items, "iterator": model.iterator,
                                       "condition": model.condition, "max_iterations": model.max_iterations,
                                       "break_on": model.break_on, "parallel": model.parallel,
                                       "max_concurrent": model.max_concurrent},
                                   branch_of=_branch_of(entry, by_id), line=line, col=col)
            continue
        if entry.kind == "parallel":
            nodes[entry.id] = Node(id=entry.id, kind="parallel", name=model.name,
                                   description=model.description, deps=deps, trigger_rule="all_done",
                                   config={"strategy": model.aggregation.strategy,
                                           "output_mapping": model.aggregation.output_mapping,
                                           "branch_timeout": wf.config.parallelism.branch_timeout
                                           if wf.config.parallelism else None},
                                   branch_of=_branch_of(entry, by_id), line=line, col=col)
            continue
        config = model.config
        if model.type == "approval":
            spec = dsl.ApprovalConfig.model_validate(config).to_spec(default_timeout, channels)
            config = spec.model_dump(mode="json")
        approval = model.requires_approval
        nodes[entry.id] = Node(
            id=entry.id, type=model.type, name=model.name, description=model.description,
            config=config, deps=deps, when=model.when, skip_if=model.skip_if,
            trigger_rule=model.trigger_rule, retry=wf.config.retry_for(model.retry), timeout=model.timeout,
            outputs=None if model.outputs is None else tuple(
                OutputSpec(name=o.name, value=o.value, export=o.export) for o in model.outputs),
            requires_approval=approval.to_spec(default_timeout, channels) if approval and approval.enabled
            else None,
            compensation=CompensationSpec(**model.compensation.model_dump()) if model.compensation else None,
            branch_of=_branch_of(entry, by_id), line=line, col=col, renamed_from=model.renamed_from,
            circuit_breaker=model.circuit_breaker.to_spec(wf.metadata.id) if model.circuit_breaker else None)
    members = block_members([(e.id, e.block) for e in entries])
    nodes = wire_parallel_blocks(wf, nodes, members)
    nodes = wire_loops(wf, nodes, members, filename)
    roles = task_roles(wf, [_d(e.raw.get("compensation")).get("task_id") for e in entries
                            if e.kind == "task"], tool_task_ids(entries))
    nodes = {n: node.model_copy(update={"role": roles.get(n, "flow")}) for n, node in nodes.items()}
    order = topological({n: node.deps for n, node in nodes.items()}, [e.id for e in entries if e.id])
    if len(order) < len(nodes):  # a cycle through a parallel block, visible only once it is wired
        stuck = sorted(set(nodes) - set(order))
        raise WorkflowError([Diagnostic(filename, nodes[stuck[0]].line, nodes[stuck[0]].col,
                                        "dependency cycle through a parallel block: " + ", ".join(stuck))])
    dependents: dict[str, list[str]] = {n: [] for n in nodes}
    for node in nodes.values():
        if node.role != "flow":  # role tasks read their deps' results but are no part of the graph
            continue
        for dep in node.deps:
            # a loop body is its own graph, run once per iteration; outside of it only the loop counts
            if nodes[dep].loop_of == node.loop_of:
                dependents[dep].append(node.id)
    final = {n: nodes[n].model_copy(update={"dependents": tuple(sorted(dependents[n]))}) for n in order}
    flow = [n for n in order if final[n].role == "flow" and final[n].loop_of is None]
    inputs_schema = dsl.merge_required(wf.inputs.schema_ or {"type": "object"}, wf.inputs.required)
    return Plan(
        workflow_id=wf.metadata.id, name=wf.metadata.name, version=wf.metadata.version,
        description=wf.metadata.description, changelog=wf.metadata.changelog, input_schema=inputs_schema,
        input_defaults=wf.inputs.defaults,
        variables=tuple(VariableSpec(**v.model_dump()) for v in wf.variables),
        output_mappings=wf.outputs.mappings, output_schema=wf.outputs.schema_,
        timeout=wf.config.timeout,
        max_concurrent=wf.config.parallelism.max_concurrent if wf.config.parallelism else None,
        catch=tuple(CatchSpec(error_types=tuple(c.error_types), handler=c.handler, retry=c.retry)
                    for c in wf.error_handling.catch),
        finally_tasks=tuple(wf.error_handling.finally_),
        nodes=final,
        roots=tuple(n for n in flow if not final[n].deps),
        sinks=tuple(n for n in flow if not final[n].dependents),
        migrations=tuple(MigrationSpec(from_version=m.from_, rename=m.rename, state=m.state, set=m.set)
                         for m in wf.migrations) or None,
        input_into=GRAPH_CONTEXT if graph else None,
        retention=wf.config.persistence.retention_policy if wf.config.persistence else None,
    ).with_hash()


def _branch_of(entry: Entry, by_id: dict[str, Entry]) -> tuple[str, Literal["then", "else"]] | None:
    """The condition and its branch that list ``entry``, if a condition does."""
    if entry.block is not None and by_id[entry.block[0]].kind == "condition":
        return entry.block[0], "then" if entry.block[1] == "then" else "else"
    return None


def _ids(items: list) -> tuple[str, ...]:
    return tuple(item if isinstance(item, str) else item.id for item in items)
