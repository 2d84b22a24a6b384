"""Workflow file -> Plan, or every problem as FILE:LINE:COL: message.

Checking runs in two layers so that one mistake does not hide the others:
the pydantic models (statemachine.dsl) check the shape, and the checks here
(ids, references, expressions, cycles, roles) read the raw data defensively,
so they still run when the shape is wrong somewhere else. A Plan is built only
from a file with no diagnostic at all.

Graph edges: a node depends on its ``depends_on``, on every task named in a
``${tasks.<id>...}`` in its expressions, and on the block that lists it.
Cycles are printed in running order: ``a -> b`` means b waits for a.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any, Iterator, Literal

from jsonschema import Draft202012Validator, SchemaError
from pydantic import ValidationError

from statemachine import dsl
from statemachine.admission import deployment_problems
from statemachine.data_deps import data_dependencies, file_parties
from statemachine.diagnostics import Diagnostic, WorkflowError, explain_errors
from statemachine.expressions import ExpressionError, member_references, parse_template, task_references
from statemachine.graph import block_members, cycle_through, task_roles, topological, wire_loops, wire_parallel_blocks
from statemachine.graph_form import CONTEXT as GRAPH_CONTEXT
from statemachine.graph_form import is_graph
from statemachine.graph_form import translate as translate_graph
from statemachine.json_values import non_finite_numbers
from statemachine.limits import DeploymentLimits
from statemachine.migration_decl import migration_problems
from statemachine.plan import CatchSpec, CompensationSpec, MigrationSpec, Node, OutputSpec, Plan, VariableSpec
from statemachine.raw_data import as_dict as _d
from statemachine.raw_data import as_list as _l
from statemachine.raw_data import ref_offset as _ref_offset
from statemachine.raw_data import strings_in as _strings
from statemachine.seed_mistakes import APPROVAL_FIELDS, unbound_parameters, unknown_approval_fields
from statemachine.task_types import TASK_TYPES, TaskCatalogue
from statemachine.tool_tasks import tool_dependencies, tool_problems, tool_references, tool_task_ids
from statemachine.variable_types import TYPES, type_error
from statemachine.yaml_source import SourceMap, load_yaml

Path = tuple[Any, ...]
_KIND_LABEL = {"task": "task", "condition": "condition", "loop": "loop",
               "parallel": "parallel block", "sub_workflow": "sub-workflow"}


@dataclass
class _Entry:
    """One id-carrying thing of the file (task, inline task, block)."""

    id: str | None
    kind: str
    path: Path
    raw: dict
    block: tuple[str, str] | None = None  # (block id, "then"/"else"/"tasks"/branch name)
    deps: dict[str, tuple] = field(default_factory=dict)  # dep id -> (path, text, offset)

    @property
    def label(self) -> str:
        return f"{_KIND_LABEL[self.kind]} '{self.id}'"


# Deny by default: without the deployment's word, no custom module is allowed.
SAFE_LIMITS = DeploymentLimits()


def validate_workflow(text: str, filename: str, limits: DeploymentLimits = SAFE_LIMITS,
                      task_types: TaskCatalogue = TASK_TYPES) -> list[Diagnostic]:
    """Every problem in the workflow ``text``, sorted by position (empty: valid)."""
    return _Compilation(text, filename, limits, task_types).run()[0]


def compile_workflow(text: str, filename: str, limits: DeploymentLimits = SAFE_LIMITS,
                     task_types: TaskCatalogue = TASK_TYPES) -> Plan:
    """The Plan of a workflow; raises WorkflowError listing every problem (``limits``: what the deployment
    allows; ``task_types``: the types it offers, statemachine/task_types.py's unless it adds its own)."""
    diagnostics, plan = _Compilation(text, filename, limits, task_types).run()
    if diagnostics or plan is None:
        raise WorkflowError(diagnostics)
    return plan


def load_and_compile(path: str | FsPath, limits: DeploymentLimits = SAFE_LIMITS,
                     task_types: TaskCatalogue = TASK_TYPES) -> Plan:
    path = FsPath(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowError([Diagnostic(str(path), 1, 1, f"cannot read file: {exc}")]) from None
    return compile_workflow(text, str(path), limits, task_types)


class _Compilation:
    def __init__(self, text: str, filename: str, limits: DeploymentLimits, task_types: TaskCatalogue):
        self.text, self.filename, self.limits, self.types = text, filename, limits, task_types
        self.diags: list[Diagnostic] = []
        self.smap = SourceMap(text)
        self.graph = False  # a graph document (docs/graph-form.md), translated before it is compiled
        self.entries: list[_Entry] = []
        self.listings: list[tuple[str, str, str, Path]] = []  # (block id, label, listed id, path)

    # --- reporting ------------------------------------------------------------------

    def at(self, path: Path, message: str, key: bool = False) -> None:
        loc = self.smap.find(path, prefer_key=key)
        self.diags.append(Diagnostic(self.filename, loc.line, loc.col, message))

    def at_text(self, path: Path, text: str | None, offset: int | None, message: str) -> None:
        if text is None or offset is None:
            return self.at(path, message)
        line, col = self.smap.at_offset(path, text, offset)
        self.diags.append(Diagnostic(self.filename, line, col, message))

    def pos(self, path: Path, key: bool = False) -> tuple[int, int]:
        loc = self.smap.find(path, prefer_key=key)
        return loc.line, loc.col

    # --- driver ---------------------------------------------------------------------

    def run(self) -> tuple[list[Diagnostic], Plan | None]:
        data, self.smap, self.diags = load_yaml(self.text, self.filename)
        if not self.diags and is_graph(data):  # the graph form: translated, then compiled as any workflow
            data, self.smap, self.diags = translate_graph(data, self.smap, self.filename)
            self.graph = True
        self.data = data
        plan = None
        if data is None and not self.diags:
            self.at((), "the file is empty: expected a mapping with a 'workflow' key")
        elif data is not None and (not isinstance(data, dict) or "workflow" not in data):
            self.at((), "top level must be a mapping with a 'workflow' key")
        elif data is not None:
            model = self.check_shape(data)
            wf = _d(data["workflow"])
            self.collect(wf)
            self.check_ids()
            self.check_renames()
            for path, message in migration_problems(wf, set(self.by_id), self.parse):
                self.at(path, message)
            self.check_expressions(wf)
            self.check_type_configs()
            self.check_deployment(data)
            self.check_listings()
            self.add_data_dependencies(wf)
            self.check_references(wf)
            self.check_schemas(wf)
            for i, var in enumerate(_l(wf.get("variables"))):  # a default that breaks its own type
                if isinstance(var, dict) and var.get("type") in TYPES and "default" in var and (
                        why := type_error(var["type"], var["default"])):
                    self.at(("workflow", "variables", i, "default"), f"variable '{var.get('name')}': {why}")
            self.check_branch_names(wf)
            self.check_cycles()
            if model is not None and not self.diags:
                try:
                    plan = self.build(model.workflow)
                except WorkflowError as exc:  # what only the wired graph shows
                    self.diags.extend(exc.diagnostics)
        unique = sorted(set(self.diags), key=Diagnostic.sort_key)
        return unique, plan

    def check_shape(self, data: dict) -> dsl.WorkflowFile | None:
        try:
            return dsl.WorkflowFile.model_validate(data, context={"task_types": self.types})
        except ValidationError as exc:
            for path, at_key, message in explain_errors(exc, data, dsl.WorkflowFile):
                self.at(path, message, key=at_key)
            return None

    # --- collecting ids -------------------------------------------------------------

    def add(self, raw: Any, kind: str, path: Path, block: tuple[str, str] | None = None) -> _Entry | None:
        if not isinstance(raw, dict):
            return None
        ident = raw.get("id")
        entry = _Entry(ident if isinstance(ident, str) else None, kind, path, raw, block)
        self.entries.append(entry)
        return entry

    def members(self, items: Any, path: Path, block: _Entry | None, label: str) -> None:
        for i, item in enumerate(_l(items)):
            if isinstance(item, str) and block is not None and block.id:
                self.listings.append((block.id, label, item, path + (i,)))
            else:
                owner = (block.id, label) if block is not None and block.id else None
                self.add(item, "task", path + (i,), owner)

    def collect(self, wf: dict) -> None:
        base = ("workflow",)
        for i, task in enumerate(_l(wf.get("tasks"))):
            self.add(task, "task", base + ("tasks", i))
        flow = _d(wf.get("control_flow"))
        cf = base + ("control_flow",)
        for i, raw in enumerate(_l(flow.get("conditions"))):
            entry = self.add(raw, "condition", cf + ("conditions", i))
            for label in ("then", "else"):
                self.members(_d(raw).get(label), cf + ("conditions", i, label), entry, label)
        for i, raw in enumerate(_l(flow.get("loops"))):
            entry = self.add(raw, "loop", cf + ("loops", i))
            self.members(_d(raw).get("tasks"), cf + ("loops", i, "tasks"), entry, "tasks")
        for i, raw in enumerate(_l(flow.get("parallel"))):
            entry = self.add(raw, "parallel", cf + ("parallel", i))
            for j, branch in enumerate(_l(_d(raw).get("branches"))):
                name = _d(branch).get("name")
                label = name if isinstance(name, str) else f"branch {j + 1}"
                self.members(_d(branch).get("tasks"), cf + ("parallel", i, "branches", j, "tasks"), entry, label)
        for i, raw in enumerate(_l(wf.get("sub_workflows"))):
            self.add(raw, "sub_workflow", base + ("sub_workflows", i))
        self.entries.sort(key=lambda e: self.pos(e.path + ("id",)))
        self.by_id: dict[str, _Entry] = {}
        for entry in self.entries:
            if entry.id is not None:
                self.by_id.setdefault(entry.id, entry)

    def check_ids(self) -> None:
        for entry in self.entries:
            first = self.by_id.get(entry.id) if entry.id is not None else None
            if first is not None and first is not entry:
                line, col = self.pos(first.path + ("id",))
                self.at(entry.path + ("id",), f"duplicate id '{entry.id}' (first defined at {line}:{col})")

    def check_renames(self) -> None:
        """A task's ``renamed_from`` names an id of the previous version: one this file no longer has,
        and no other task's."""
        claimed: dict[str, _Entry] = {}
        for entry in self.entries:
            old = entry.raw.get("renamed_from") if entry.kind == "task" else None
            if not isinstance(old, str):
                continue
            path = entry.path + ("renamed_from",)
            still = self.by_id.get(old)
            if still is not None:
                line, col = self.pos(still.path + ("id",))
                self.at(path, f"{entry.label} is renamed from '{old}', which this version still has "
                              f"(defined at {line}:{col}); a renamed task's old id is gone")
            elif old in claimed:
                line, col = self.pos(claimed[old].path + ("renamed_from",))
                self.at(path, f"{entry.label} is renamed from '{old}', as {claimed[old].label} is "
                              f"(at {line}:{col}); one task takes an old id")
            else:
                claimed[old] = entry

    # --- expressions and the references they make -------------------------------------

    def expression_strings(self, entry: _Entry) -> Iterator[tuple[Path, str]]:
        raw, path = entry.raw, entry.path
        if entry.kind == "task":
            # A python task's code is Python source: `${}` in it means nothing to us.
            spec = self.types.get(raw.get("type"))
            skip = {path + ("config", key) for key in spec.source_keys} if spec else set()
            for key in raw:
                if key not in ("id", "type", "depends_on"):
                    yield from _strings(raw[key], path + (key,), skip)
            return
        keys = {"condition": ("if",), "loop": ("items", "condition", "break_on"),
                "parallel": ("aggregation",), "sub_workflow": ("inputs",)}[entry.kind]
        for key in keys:
            if key in raw:
                yield from _strings(raw[key], path + (key,))
        if entry.kind == "sub_workflow" and "outputs" in raw:  # syntax only: names the child's tasks
            for p, text in _strings(raw["outputs"], path + ("outputs",)):
                self.parse(p, text)

    def parse(self, path: Path, text: str) -> bool:
        try:
            parse_template(text)
            return True
        except ExpressionError as exc:
            offset = exc.offset if exc.expression in (text, "") else text.find(exc.expression) + exc.offset
            self.at_text(path, text, offset, f"expression error: {exc.message}")
            return False

    def check_expressions(self, wf: dict) -> None:
        for entry in self.entries:
            for path, text in self.expression_strings(entry):
                for field_name in unknown_approval_fields(text) if self.parse(path, text) else ():
                    self.at_text(path, text, text.find(f"approval.{field_name}") + len("approval."),
                                 f"an approval's result has no field '{field_name}' (it has "
                                 f"{', '.join(APPROVAL_FIELDS)})")
                for ref in sorted(task_references(text)):
                    if ref != entry.id:
                        entry.deps.setdefault(ref, (path, text, _ref_offset(text, ref)))
            for i, dep in enumerate(_l(entry.raw.get("depends_on"))):
                if isinstance(dep, str):
                    entry.deps.setdefault(dep, (entry.path + ("depends_on", i), None, None))
        self.output_refs: list[tuple[str, str, Path, str]] = []
        mappings = _d(_d(wf.get("outputs")).get("mappings"))
        for path, text in _strings(mappings, ("workflow", "outputs", "mappings")):
            self.parse(path, text)
            for ref in sorted(task_references(text)):
                self.output_refs.append((str(path[3]), ref, path, text))

    def check_type_configs(self) -> None:
        for entry in self.entries:
            if entry.kind == "task" and entry.raw.get("type") == "database":  # seed_mistakes.py
                query = _d(entry.raw.get("config")).get("query")
                for offset, message in unbound_parameters(entry.raw.get("config")):
                    self.at_text(entry.path + ("config", "query"), query, offset, message)
            spec = self.types.get(entry.raw.get("type")) if entry.kind == "task" else None
            model = spec.config if spec else None
            config = entry.raw.get("config") or {}
            if model is None or not isinstance(config, dict):
                continue
            try:
                model.model_validate(config)
            except ValidationError as exc:
                base = entry.path + ("config",)
                doc = self.data if "config" in entry.raw else None
                for path, at_key, message in explain_errors(exc, config, model, base, doc):
                    self.at(path, message, key=at_key)

    def check_deployment(self, data: dict) -> None:
        """What this deployment will not run (statemachine/admission.py), and numbers JSON cannot hold."""
        tasks = [(e.id, e.path, e.raw) for e in self.entries if e.kind == "task"]
        for path, message in deployment_problems(tasks, self.limits, self.types):
            self.at(path, message)
        for path in non_finite_numbers(data):
            loc = self.smap.find(path)
            self.at(path, f"number {self.text[loc.start:loc.end] or 'NaN'} is not finite: workflow values are JSON, "
                          "which has no NaN or infinity")

    # --- cross references -----------------------------------------------------------

    def check_listings(self) -> None:
        for entry in self.entries:
            if entry.block is not None:
                entry.deps.setdefault(entry.block[0], (entry.path, None, None))
        for block_id, label, listed, path in self.listings:
            block = self.by_id[block_id]
            target = self.by_id.get(listed)
            if target is None:
                self.at(path, f"{block.label} lists unknown task '{listed}' in '{label}'")
            elif target is block:
                self.at(path, f"{block.label} lists itself in '{label}'")
            elif target.block is not None:
                other = self.by_id[target.block[0]]
                self.at(path, f"task '{listed}' is already listed in '{target.block[1]}' of {other.label}")
            else:
                target.block = (block_id, label)
                target.deps.setdefault(block_id, (path, None, None))
        for entry in self.entries:
            # A loop's break_on/condition reads its own body's tasks (that iteration's): no dependency.
            if entry.kind == "loop" and entry.id is not None:
                for member in [e.id for e in self.entries if e.block and e.block[0] == entry.id and e.id]:
                    entry.deps.pop(member, None)
        for entry in self.entries:
            owner = self.by_id.get(entry.block[0]) if entry.block else None
            explicit = _l(entry.raw.get("depends_on"))
            if owner is not None and owner.kind == "parallel" and owner.id in explicit:
                self.at(entry.path + ("depends_on", explicit.index(owner.id)),
                        f"{entry.label} is in {owner.label} and cannot depend on it")

    def add_data_dependencies(self, wf: dict) -> None:
        """A task reading a variable another task exports waits for it (statemachine/data_deps.py)."""
        handling = _d(wf.get("error_handling"))
        roles = {_d(e.raw.get("compensation")).get("task_id") for e in self.entries if e.kind == "task"}
        roles |= {_d(c).get("handler") for c in _l(handling.get("catch"))} | set(_l(handling.get("finally")))
        roles |= tool_task_ids(self.entries)
        entries = [e for e in self.entries if e.id is not None and self.by_id.get(e.id) is e]

        def code_keys(entry: _Entry) -> tuple[str, ...]:
            spec = self.types.get(entry.raw.get("type")) if entry.kind == "task" else None
            return spec.source_keys if spec else ()

        parties, members = file_parties(entries, self.by_id, self.expression_strings, code_keys, roles)
        for reader, added in data_dependencies(parties, members).items():
            for dep, _name in added:
                self.by_id[reader].deps.setdefault(dep, (self.by_id[reader].path, None, None))
        for llm, dep, where in tool_dependencies(self.entries, self.by_id):  # after the tools' own data deps
            llm.deps.setdefault(dep, where)

    def check_references(self, wf: dict) -> None:
        for entry in self.entries:
            if entry.id is None:
                continue
            for dep, (path, text, offset) in entry.deps.items():
                if dep not in self.by_id:
                    self.at_text(path, text, offset, f"{entry.label} depends on unknown task '{dep}'")
        for name, ref, path, text in self.output_refs:
            if ref not in self.by_id:
                self.at_text(path, text, _ref_offset(text, ref), f"output '{name}' refers to unknown task '{ref}'")
        roles: list[tuple[Path, Any, str]] = []
        for entry in self.entries:
            comp = entry.raw.get("compensation") if entry.kind == "task" else None
            if isinstance(comp, dict):
                roles.append((entry.path + ("compensation", "task_id"), comp.get("task_id"),
                              f"compensation of {entry.label}"))
        handling = _d(wf.get("error_handling"))
        for i, catch in enumerate(_l(handling.get("catch"))):
            roles.append((("workflow", "error_handling", "catch", i, "handler"), _d(catch).get("handler"),
                          "catch handler"))
        for i, name in enumerate(_l(handling.get("finally"))):
            roles.append((("workflow", "error_handling", "finally", i), name, "finally"))
        roles += [(path, name, f"tool of {llm.label}") for llm, path, name in tool_references(self.entries)]
        for path, message in tool_problems(self.entries, self.by_id):
            self.at(path, message)
        kinds: dict[str, str] = {}
        for path, name, role in roles:
            target = self.by_id.get(name) if isinstance(name, str) else None
            if isinstance(name, str) and target is None:
                self.at(path, f"{role} names unknown task '{name}'")
            elif target is not None and target.kind != "task":
                self.at(path, f"{role} must name a task, not {target.label}")
            elif target is not None:
                kind = {"catch": "a catch handler", "finally": "a finally task",
                        "tool": "a tool"}.get(role.split(" ")[0], "a compensation task")
                if kinds.setdefault(name, kind) != kind:
                    self.at(path, f"task '{name}' already runs as {kinds[name]}; a task has one role")
        # A role task never runs in the normal flow, so nothing in the flow may wait for it.
        for entry in self.entries:
            if entry.id is None or entry.id in kinds:
                continue
            for dep, (path, text, offset) in entry.deps.items():
                if dep in kinds:
                    self.at_text(path, text, offset,
                                 f"{entry.label} depends on '{dep}', which only runs as {kinds[dep]}")

    def check_branch_names(self, wf: dict) -> None:
        """An aggregation over a branch the block does not have is known before the run."""
        for i, raw in enumerate(_l(_d(wf.get("control_flow")).get("parallel"))):
            block = _d(raw)
            names = {_d(b).get("name") for b in _l(block.get("branches"))}
            mapping = _d(block.get("aggregation")).get("output_mapping")
            for key, text in (_d(mapping) or {}).items():
                for name in sorted(member_references(text, "branches") - names):
                    path = ("workflow", "control_flow", "parallel", i, "aggregation", "output_mapping", key)
                    self.at_text(path, text if isinstance(text, str) else None,
                                 text.find(name) if isinstance(text, str) else None,
                                 f"parallel block '{block.get('id')}' has no branch '{name}'")

    def check_schemas(self, wf: dict) -> None:
        for section in ("inputs", "outputs"):
            schema = _d(wf.get(section)).get("schema")
            if not isinstance(schema, dict):
                continue
            if section == "inputs":
                schema = dsl.merge_required(schema, _l(_d(wf.get("inputs")).get("required")))
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                path = ("workflow", section, "schema") + tuple(exc.path)
                self.at(path, f"invalid {section[:-1]} schema: {exc.message}")

    def check_cycles(self) -> None:
        graph = {e.id: tuple(d for d in e.deps if d in self.by_id) for e in self.entries
                 if e.id is not None and self.by_id[e.id] is e}
        done = set(topological(graph, list(graph)))
        stuck = [n for n in graph if n not in done]  # on a cycle, or waiting for one
        reported: set[str] = set()
        for start in stuck:
            cycle = None if start in reported else cycle_through(start, graph, set(stuck))
            if cycle:
                reported.update(cycle)
                self.at(self.by_id[start].path + ("id",), "dependency cycle: " + " -> ".join(reversed(cycle)))

    # --- building the plan ------------------------------------------------------------

    def condition_branch(self, entry: _Entry) -> tuple[str, Literal["then", "else"]] | None:
        if entry.block is not None and self.by_id[entry.block[0]].kind == "condition":
            return entry.block[0], "then" if entry.block[1] == "then" else "else"
        return None

    def build(self, wf: dsl.Workflow) -> Plan:
        nodes: dict[str, Node] = {}
        hitl = wf.config.human_in_the_loop
        default_timeout = hitl.default_timeout if hitl else None
        channels = (hitl.notification_channels or None) if hitl else None
        for entry in self.entries:
            # Built only from a file without errors: every entry has its id by now.
            assert entry.id is not None, entry.path
            model = wf.find(entry.path[1:])
            line, col = self.pos(entry.path + ("id",), key=True)
            deps = tuple(sorted(entry.deps))
            if entry.kind == "condition":
                nodes[entry.id] = Node(
                    id=entry.id, kind="condition", name=model.name, description=model.description,
                    deps=deps, condition=model.if_, then=_ids(model.then), else_=_ids(model.else_),
                    branch_of=self.condition_branch(entry), line=line, col=col)
                continue
            if entry.kind == "sub_workflow":
                nodes[entry.id] = Node(id=entry.id, kind="sub_workflow", name=model.name,
                                       description=model.description, deps=deps, timeout=model.timeout,
                                       config={"workflow_ref": model.workflow_ref, "inputs": model.inputs,
                                               "outputs": model.outputs or None},
                                       branch_of=self.condition_branch(entry), line=line, col=col)
                continue
            if entry.kind == "loop":
                nodes[entry.id] = Node(id=entry.id, kind="loop", name=model.name, description=model.description,
                                       deps=deps, config={
                                           "type": model.type, "items": model.items, "iterator": model.iterator,
                                           "condition": model.condition, "max_iterations": model.max_iterations,
                                           "break_on": model.break_on, "parallel": model.parallel,
                                           "max_concurrent": model.max_concurrent},
                                       branch_of=self.condition_branch(entry), line=line, col=col)
                continue
            if entry.kind == "parallel":
                nodes[entry.id] = Node(id=entry.id, kind="parallel", name=model.name,
                                       description=model.description, deps=deps, trigger_rule="all_done",
                                       config={"strategy": model.aggregation.strategy,
                                               "output_mapping": model.aggregation.output_mapping,
                                               "branch_timeout": wf.config.parallelism.branch_timeout
                                               if wf.config.parallelism else None},
                                       branch_of=self.condition_branch(entry), line=line, col=col)
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
                branch_of=self.condition_branch(entry), line=line, col=col, renamed_from=model.renamed_from)
        members = block_members([(e.id, e.block) for e in self.entries])
        nodes = wire_parallel_blocks(wf, nodes, members)
        nodes = wire_loops(wf, nodes, members, self.filename)
        roles = task_roles(wf, [_d(e.raw.get("compensation")).get("task_id") for e in self.entries
                                if e.kind == "task"], tool_task_ids(self.entries))
        nodes = {n: node.model_copy(update={"role": roles.get(n, "flow")}) for n, node in nodes.items()}
        order = topological({n: node.deps for n, node in nodes.items()}, [e.id for e in self.entries if e.id])
        if len(order) < len(nodes):  # a cycle through a parallel block, visible only once it is wired
            stuck = sorted(set(nodes) - set(order))
            raise WorkflowError([Diagnostic(self.filename, nodes[stuck[0]].line, nodes[stuck[0]].col,
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
            input_into=GRAPH_CONTEXT if self.graph else None,
            retention=wf.config.persistence.retention_policy if wf.config.persistence else None,
        ).with_hash()


def _ids(items: list) -> tuple[str, ...]:
    return tuple(item if isinstance(item, str) else item.id for item in items)
