"""Workflows written in Python: a builder that produces loopline's YAML (docs/python-builder.md).

    from loopline import Workflow

    wf = Workflow("greet", version="1.0.0")
    wf.input("name", type="string", default="ada")
    wf.python("hello", 'result = {"greeting": "hello " + inputs["name"]}')
    wf.output("greeting", "${tasks.hello.output.greeting}")
    print(wf.to_yaml())

The builder holds the workflow as the YAML document's own data, so what it emits is exactly the
language of docs/reference.md and compiles like a hand-written file; ``Workflow.from_yaml`` reads
any valid file back into a builder. Pure: the only I/O is the explicit ``save``, ``register`` and
``start`` (the last two through loopline/client.py). Mistakes Python can see (an id used twice, a
dependency on nothing, a cycle) raise BuilderError naming the author's line; everything else is the
compiler's, as FILE:LINE:COL on the emitted YAML (``validate``/``compile``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Self, Unpack

from .builder_values import (
    ApprovalOptions,
    BuilderError,
    Compensation,
    Duration,
    Retry,
    TaskOptions,
    call_site,
    ids,
    plain,
    task_fields,
)

__all__ = ["BuilderError", "Compensation", "Retry", "Steps", "Workflow"]

Body = Callable[["Steps"], Any] | Iterable[str] | str  # tasks built by a function, or ids of tasks and blocks
_SECTIONS = ("conditions", "loops", "parallel")
_DOC_ORDER = ("metadata", "config", "inputs", "variables", "tasks", "control_flow", "sub_workflows",
              "error_handling", "outputs", "migrations")
_CONFIG_KEYS = ("timeout", "max_retries", "retry_policy", "parallelism", "persistence", "human_in_the_loop")
_UNSET: Any = object()
_KIND = {"conditions": "condition", "loops": "loop", "parallel": "parallel block", "sub_workflows": "sub-workflow"}


def _set(out: dict[str, Any], where: str, **values: Any) -> dict[str, Any]:
    """``out`` with each value that is not None, as plain data."""
    out.update({key: plain(value, where) for key, value in values.items() if value is not None})
    return out


def _written_order(data: dict[str, Any], known: tuple[str, ...]) -> tuple[str, ...]:
    return (*(key for key in data if key in known), *(key for key in known if key not in data))


class _Adds:
    """Task and block methods, shared by a Workflow (its top level) and Steps (a block's list)."""

    def _add_task(self, fields: dict[str, Any], site: str) -> None:
        raise NotImplementedError

    def _add_block(self, section: str, fields: dict[str, Any], site: str) -> None:
        raise NotImplementedError

    def _workflow(self) -> Workflow:
        raise NotImplementedError

    # --- tasks ---------------------------------------------------------------------------

    def task(self, task_id: str, task_type: str, config: Mapping[str, Any] | None = None,
             **options: Unpack[TaskOptions]) -> Self:
        """A task of any type: ``config`` is its type's settings (docs/task-types.md)."""
        self._add_task(task_fields(task_id, task_type, config, options), call_site())
        return self

    def python(self, task_id: str, code: str, **options: Unpack[TaskOptions]) -> Self:
        """Python source run apart from the engine; it sets ``result`` (docs/language.md, "Tasks"). The source
        is dedented and its leading blank lines dropped, so a triple-quoted block can sit where the call is."""
        return self.task(task_id, "python", {"code": textwrap.dedent(code).lstrip("\n")}, **options)

    def http(self, task_id: str, url: str, method: str | None = None, *, headers: Mapping[str, Any] | None = None,
             query: Mapping[str, Any] | None = None, body: Any = None, **options: Unpack[TaskOptions]) -> Self:
        config = _set({"url": url}, task_id, method=method, headers=headers, query=query, body=body)
        return self.task(task_id, "http", config, **options)

    def shell(self, task_id: str, command: str | list[str], *, working_dir: str | None = None,
              environment: Mapping[str, str] | None = None, **options: Unpack[TaskOptions]) -> Self:
        config = _set({"command": command}, task_id, working_dir=working_dir, environment=environment)
        return self.task(task_id, "shell", config, **options)

    def wait(self, task_id: str, duration: Duration | None = None, *, until: Any = None,
             **options: Unpack[TaskOptions]) -> Self:
        """A durable timer: ``duration`` ("2h", a timedelta) or ``until`` (an ISO time or a datetime)."""
        return self.task(task_id, "wait", _set({}, task_id, duration=duration, until=until), **options)

    def callback(self, task_id: str, *, deadline: Duration | None = None, **options: Unpack[TaskOptions]) -> Self:
        """Waits for a POST to its link; ``deadline`` is its ``config.timeout``."""
        return self.task(task_id, "callback", _set({}, task_id, timeout=deadline), **options)

    def approval(self, task_id: str, approvers: Iterable[str] | str, *, title: Any = None, description: Any = None,
                 details: Any = None, deadline: Duration | None = None, reminder: Duration | None = None,
                 required_approvals: int | None = None, required_rejections: int | None = None,
                 channels: Iterable[str] | None = None, escalation: Mapping[str, Any] | None = None,
                 **options: Unpack[ApprovalOptions]) -> Self:
        """Asks people; ``deadline`` is its ``config.timeout``, ``escalation`` its ``escalation_policy``."""
        config = _set({}, task_id, title=title, description=description, details=details,
                      approvers=ids(approvers, f"task '{task_id}'"), required_approvals=required_approvals,
                      required_rejections=required_rejections, timeout=deadline, reminder=reminder,
                      channels=None if channels is None else list(channels), escalation_policy=escalation)
        return self.task(task_id, "approval", config, **options)

    def email(self, task_id: str, to: Iterable[str] | str, subject: Any = None, body: Any = None,
              **options: Unpack[TaskOptions]) -> Self:
        to_list = [to] if isinstance(to, str) else list(to)
        return self.task(task_id, "email", _set({"to": to_list}, task_id, subject=subject, body=body), **options)

    def sms(self, task_id: str, to: Iterable[str] | str, body: Any, **options: Unpack[TaskOptions]) -> Self:
        to_list = [to] if isinstance(to, str) else list(to)
        return self.task(task_id, "sms", _set({"to": to_list}, task_id, body=body), **options)

    # --- blocks (always at the workflow's top level; inside a block's steps they are listed by id) ---------

    def condition(self, block_id: str, if_: Any, then: Body = (), else_: Body = (), *,
                  after: Iterable[str] | str = (), name: str | None = None, description: str | None = None) -> Self:
        """``then`` runs when ``if_`` is true, ``else_`` otherwise; the others are SKIPPED."""
        site = call_site()
        fields = self._block_head(block_id, after, name, description)
        fields["if"] = plain(if_, block_id)
        fields["then"] = self._body(then, block_id)
        fields["else"] = self._body(else_, block_id)
        self._add_block("conditions", fields, site)
        return self

    def for_each(self, block_id: str, items: Any, body: Body, *, iterator: str | None = None,
                 max_iterations: int | None = None, break_on: Any = None, parallel: bool | None = None,
                 max_concurrent: int | None = None, after: Iterable[str] | str = (), name: str | None = None,
                 description: str | None = None) -> Self:
        """``body`` runs once per item of ``items`` (a list or "${...}"), the item named ``iterator``."""
        site = call_site()
        fields = self._block_head(block_id, after, name, description)
        fields["type"] = "for_each"
        _set(fields, block_id, items=items, iterator=iterator)
        fields["tasks"] = self._body(body, block_id)
        _set(fields, block_id, max_iterations=max_iterations, break_on=break_on, parallel=parallel,
             max_concurrent=max_concurrent)
        self._add_block("loops", fields, site)
        return self

    def while_loop(self, block_id: str, condition: Any, body: Body, *, do_while: bool = False,
                   max_iterations: int | None = None, break_on: Any = None, after: Iterable[str] | str = (),
                   name: str | None = None, description: str | None = None) -> Self:
        """``body`` runs while ``condition`` is true (checked before each iteration, or after with ``do_while``)."""
        site = call_site()
        fields = self._block_head(block_id, after, name, description)
        fields["type"] = "do_while" if do_while else "while"
        fields["condition"] = plain(condition, block_id)
        fields["tasks"] = self._body(body, block_id)
        _set(fields, block_id, max_iterations=max_iterations, break_on=break_on)
        self._add_block("loops", fields, site)
        return self

    def parallel(self, block_id: str, branches: Mapping[str, Body], *,
                 strategy: Literal["merge", "first", "all", "custom"] | None = None,
                 output_mapping: Mapping[str, Any] | None = None, max_concurrent: int | None = None,
                 after: Iterable[str] | str = (), name: str | None = None, description: str | None = None) -> Self:
        """Each branch (name -> its tasks) runs at the same time; ``strategy`` decides the block's outcome."""
        site = call_site()
        fields = self._block_head(block_id, after, name, description)
        fields["branches"] = [{"name": branch, "tasks": self._body(body, block_id)}
                              for branch, body in branches.items()]
        aggregation = _set({}, block_id, strategy=strategy, output_mapping=output_mapping)
        if aggregation:
            fields["aggregation"] = aggregation
        _set(fields, block_id, max_concurrent=max_concurrent)
        self._add_block("parallel", fields, site)
        return self

    def sub_workflow(self, block_id: str, workflow_ref: str, *, inputs: Mapping[str, Any] | None = None,
                     outputs: Mapping[str, Any] | None = None, timeout: Duration | None = None,
                     after: Iterable[str] | str = (), name: str | None = None,
                     description: str | None = None) -> Self:
        """Runs a registered workflow (``id``, ``id@latest`` or ``id@1.2.0``) as a child run."""
        site = call_site()
        fields = self._block_head(block_id, after, name, description)
        fields["workflow_ref"] = workflow_ref
        _set(fields, block_id, inputs=inputs, outputs=outputs, timeout=timeout)
        self._add_block("sub_workflows", fields, site)
        return self

    def _block_head(self, block_id: str, after: Iterable[str] | str, name: str | None,
                    description: str | None) -> dict[str, Any]:
        fields: dict[str, Any] = {"id": block_id}
        _set(fields, block_id, name=name, description=description)
        if after:
            fields["depends_on"] = ids(after if isinstance(after, str) else tuple(after), block_id)
        return fields

    def _body(self, body: Body, block_id: str) -> list[Any]:
        if callable(body):
            steps = Steps(self._workflow())
            body(steps)
            return steps.items
        return ids(body if isinstance(body, str) else tuple(body), block_id)


class Steps(_Adds):
    """The tasks of a condition's branch, a loop's body or a parallel branch, as a body function builds
    them (``then=lambda b: b.email(...).sms(...)``): tasks are written inline in the block, blocks are
    added to the workflow and listed here by id, and ``use`` lists tasks or blocks defined elsewhere."""

    def __init__(self, workflow: Workflow) -> None:
        self._owner = workflow
        self.items: list[Any] = []

    def use(self, *task_ids: str) -> Self:
        self.items.extend(ids(task_ids, "use"))
        return self

    def _workflow(self) -> Workflow:
        return self._owner

    def _add_task(self, fields: dict[str, Any], site: str) -> None:
        self._owner._claim(fields["id"], "task", site)
        self.items.append(fields)

    def _add_block(self, section: str, fields: dict[str, Any], site: str) -> None:
        self._owner._add_block(section, fields, site)
        self.items.append(fields["id"])


class Workflow(_Adds):
    """A workflow built in Python; ``to_yaml()`` is its file (see the module's docstring)."""

    def __init__(self, workflow_id: str, *, version: str | None = None, name: str | None = None,
                 description: str | None = None, changelog: str | None = None, author: str | None = None,
                 tags: Iterable[str] | None = None) -> None:
        self._metadata = _set({"id": workflow_id}, "metadata", name=name, version=version, description=description,
                              changelog=changelog, author=author, tags=None if tags is None else list(tags))
        self._config: dict[str, Any] = {}
        self._inputs: dict[str, Any] = {}
        self._variables: list[dict[str, Any]] = []
        self._tasks: list[dict[str, Any]] = []
        self._blocks: dict[str, list[dict[str, Any]]] = {section: [] for section in (*_SECTIONS, "sub_workflows")}
        self._error_handling: dict[str, list[Any]] = {"catch": [], "finally": []}
        self._outputs: dict[str, Any] = {}
        self._migrations: list[dict[str, Any]] = []
        self._sites: dict[str, tuple[str, str]] = {}  # id -> (what, where it was added)
        self._ref_sites: dict[tuple[str, str], str] = {}  # (role, id) -> where it was named
        # Sections in the order they are written: among tasks ready at once, the plan runs first the one
        # written first, so a file read back keeps its order (a built one uses reference.md's).
        self._order: tuple[tuple[str, ...], tuple[str, ...]] = (_DOC_ORDER, _SECTIONS)

    @property
    def id(self) -> str:
        return str(self._metadata["id"])

    # --- workflow-level sections ---------------------------------------------------------------

    def input(self, name: str, type: str | None = None, *, required: bool = False, default: Any = _UNSET,
              description: str | None = None, schema: Mapping[str, Any] | None = None) -> Self:
        """A property of the input's JSON Schema (``schema`` for more keywords); ``default`` goes to
        ``inputs.defaults``, applied when a run's input leaves it out."""
        where = f"input '{name}'"
        full = self._inputs.setdefault("schema", {"type": "object"})
        prop = {**_set({}, where, type=type, description=description), **plain(schema or {}, where)}
        full.setdefault("properties", {})[name] = prop
        if required:
            full.setdefault("required", []).append(name)
        if default is not _UNSET:  # None is a default too (null)
            self._inputs.setdefault("defaults", {})[name] = plain(default, where)
        return self

    def inputs_schema(self, schema: Mapping[str, Any], *, required: Iterable[str] = (),
                      defaults: Mapping[str, Any] | None = None) -> Self:
        """The whole ``inputs`` section at once (a JSON Schema 2020-12 of the run's input)."""
        self._inputs = {"schema": plain(schema, "inputs")}
        if required:
            self._inputs["required"] = list(required)
        if defaults:
            self._inputs["defaults"] = plain(defaults, "inputs")
        return self

    def variable(self, name: str, default: Any = None, *, type: str | None = None,
                 description: str | None = None) -> Self:
        """A workflow variable: tasks read it as ``${variables.<name>}`` and set it with ``export``."""
        self._variables.append(_set({"name": name}, f"variable '{name}'", type=type, default=default,
                                    description=description))
        return self

    def configure(self, **config: Any) -> Self:
        """The ``config`` section: timeout, max_retries, retry_policy (a Retry), parallelism, persistence,
        human_in_the_loop."""
        for key, value in config.items():
            if key not in _CONFIG_KEYS:
                raise BuilderError(f"{call_site()}: unknown config '{key}' "
                                   f"(expected one of: {', '.join(_CONFIG_KEYS)})")
            self._config[key] = value.to_dict() if isinstance(value, Retry) else plain(value, f"config.{key}")
        return self

    def output(self, name: str, value: Any) -> Self:
        """One of the run's outputs: an expression evaluated when the run ends."""
        self._outputs.setdefault("mappings", {})[name] = plain(value, f"output '{name}'")
        return self

    def outputs_schema(self, schema: Mapping[str, Any]) -> Self:
        self._outputs["schema"] = plain(schema, "outputs")
        return self

    def migration(self, from_: str, *, rename: Mapping[str, str] | None = None, state: str | None = None,
                  set: Mapping[str, Any] | None = None) -> Self:  # noqa: A002 (the language's own word)
        """How runs of an earlier version (``from_``: a version, or ``"1.x"``) move to this one
        (docs/versions.md, "Migrating running runs")."""
        entry: dict[str, Any] = {"from": from_}
        if rename:
            entry["rename"] = dict(rename)
        if state is not None:
            entry["state"] = state
        if set:
            entry["set"] = plain(set, "migration set")
        self._migrations.append(entry)
        return self

    def catch(self, handler: str, error_types: Iterable[str] | None = None, *, retry: bool = False) -> Self:
        """After a task's retries: the first catch whose ``error_types`` match runs ``handler``."""
        clause: dict[str, Any] = {"error_types": list(error_types)} if error_types else {}
        clause["handler"] = handler
        if retry:
            clause["retry"] = True
        self._error_handling["catch"].append(clause)
        self._ref_sites.setdefault(("catch handler", handler), call_site())
        return self

    def finally_(self, *task_ids: str) -> Self:
        """Tasks run at the very end, whatever happened, one at a time in this order."""
        site = call_site()
        for task_id in ids(task_ids, "finally"):
            self._error_handling["finally"].append(task_id)
            self._ref_sites.setdefault(("finally task", task_id), site)
        return self

    # --- the document -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The file's data, ``{"workflow": {...}}``; raises BuilderError for what Python can see is wrong."""
        from .builder_checks import check

        document = self._document()
        check(document["workflow"], self._sites, self._ref_sites)
        return document

    def to_yaml(self) -> str:
        from .builder_yaml import dump

        return dump(self.to_dict())

    def save(self, path: str | Path) -> Path:
        """Writes ``to_yaml()`` to ``path`` (the only file the builder writes) and returns it."""
        path = Path(path)
        path.write_text(self.to_yaml(), encoding="utf-8")
        return path

    def validate(self, limits: Any = None) -> list[Any]:
        """Every diagnostic of the emitted YAML (FILE:LINE:COL on ``to_yaml()``'s text); empty: valid."""
        from statemachine.compiler import SAFE_LIMITS, validate_workflow

        return validate_workflow(self.to_yaml(), f"{self.id}.yaml", limits or SAFE_LIMITS)

    def compile(self, limits: Any = None) -> Any:
        """The execution plan, as ``loopline compile`` makes it; raises WorkflowError with the diagnostics."""
        from statemachine.compiler import SAFE_LIMITS, compile_workflow

        return compile_workflow(self.to_yaml(), f"{self.id}.yaml", limits or SAFE_LIMITS)

    def register(self, url: str = "http://127.0.0.1:8080", allow_breaking: bool = False) -> tuple[int, Any]:
        """``POST /workflows`` to a running ``loopline dev`` (or a deployment): (HTTP status, answer)."""
        from .client import api_call

        body: dict[str, Any] = {"workflow": self.to_yaml(), **({"allow_breaking": True} if allow_breaking else {})}
        return api_call("POST", f"{url.rstrip('/')}/workflows", body)

    def start(self, url: str = "http://127.0.0.1:8080", input: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        """``POST /runs`` with this workflow and ``input``: (HTTP status, answer with the run's id)."""
        from .client import api_call

        body = {"workflow": self.to_yaml(), "input": plain(dict(input or {}), "input")}
        return api_call("POST", f"{url.rstrip('/')}/runs", body)

    @classmethod
    def from_yaml(cls, text: str, filename: str = "<yaml>", limits: Any = None) -> Workflow:
        """A builder holding a workflow file; raises WorkflowError (FILE:LINE:COL) if it is not valid
        (``limits``: what the deployment allows, as for ``compile``)."""
        from statemachine.compiler import SAFE_LIMITS, compile_workflow
        from statemachine.yaml_source import load_yaml

        compile_workflow(text, filename, limits or SAFE_LIMITS)  # what is not valid has no builder
        data, _, _ = load_yaml(text, filename)
        return cls._from_document(data["workflow"], filename)

    @classmethod
    def _from_document(cls, doc: dict[str, Any], filename: str) -> Workflow:
        wf = cls(doc["metadata"]["id"])
        wf._metadata = dict(doc["metadata"])
        wf._config = dict(doc.get("config") or {})
        wf._inputs = dict(doc.get("inputs") or {})
        wf._variables = list(doc.get("variables") or [])
        wf._tasks = list(doc.get("tasks") or [])
        for section in _SECTIONS:
            wf._blocks[section] = list((doc.get("control_flow") or {}).get(section) or [])
        wf._blocks["sub_workflows"] = list(doc.get("sub_workflows") or [])
        handling = doc.get("error_handling") or {}
        wf._error_handling = {key: list(handling.get(key) or []) for key in ("catch", "finally")}
        wf._outputs = dict(doc.get("outputs") or {})
        wf._migrations = list(doc.get("migrations") or [])
        wf._order = (_written_order(doc, _DOC_ORDER), _written_order(doc.get("control_flow") or {}, _SECTIONS))
        for item_id, what, _ in wf._items():
            wf._sites[item_id] = (what, filename)
        return wf

    def _document(self) -> dict[str, Any]:
        sections: dict[str, Any] = {
            "metadata": self._metadata, "config": self._config, "inputs": self._inputs,
            "variables": self._variables, "tasks": self._tasks,
            "control_flow": {section: self._blocks[section] for section in self._order[1] if self._blocks[section]},
            "sub_workflows": self._blocks["sub_workflows"],
            "error_handling": {key: value for key, value in self._error_handling.items() if value},
            "outputs": self._outputs,
            "migrations": self._migrations,
        }
        return {"workflow": {key: sections[key] for key in self._order[0] if sections[key] or key == "metadata"}}

    def _items(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(id, what, fields) of every task (inline ones too) and block."""
        from .builder_checks import items

        return items(self._document()["workflow"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workflow) and self._document() == other._document()

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"Workflow({self.id!r}, {len(self._sites)} tasks and blocks)"

    # --- how _Adds reaches the workflow ------------------------------------------------------------

    def _workflow(self) -> Workflow:
        return self

    def _claim(self, item_id: str, what: str, site: str) -> None:
        if not isinstance(item_id, str):
            raise BuilderError(f"{site}: a {what} id must be a string, not {item_id!r}")
        if item_id in self._sites:
            other, other_site = self._sites[item_id]
            raise BuilderError(f"{site}: {what} id '{item_id}' is already used by the {other} added at {other_site}")
        self._sites[item_id] = (what, site)

    def _add_task(self, fields: dict[str, Any], site: str) -> None:
        self._claim(fields["id"], "task", site)
        self._tasks.append(fields)

    def _add_block(self, section: str, fields: dict[str, Any], site: str) -> None:
        self._claim(fields["id"], _KIND[section], site)
        self._blocks[section].append(fields)
