"""Data dependencies: a task that reads a variable another task exports waits for that task.

Seed 003's data pipeline writes its flow this way: ``load_data`` exports ``records`` and
``validate_records``' code reads the bare name ``records``. Without the wait the reader could run first
and see the variable's default. Here the compiler adds the dependency, as it does for a ``${tasks.X}``
reference.

What counts as reading ``X``: ``${variables.X}`` or a bare ``${X}`` in any expression of the task (a bare
name that is the iterator of a loop around it is the item, not a variable; in ``outputs`` only
``variables.X`` counts, since a bare name there is the task's own result's first); in a python task's code,
``variables['X']`` or ``X`` used and never assigned in that code. A name the code assigns is taken for
its own: to read a variable and export it again (an accumulator), write ``variables['X']``.

What is not added, so that a wait never changes what a run does beyond its order:
- a dependency on the reader itself, or one that would close a cycle: the reader then runs before that
  exporter, as written, and reads the value it finds (a loop's body reading what a later task exports);
- a dependency on an exporter that may be skipped (a ``when``/``skip_if``, a condition's branch): a skipped
  dependency skips its dependents, which a plain read should not do. Write ``depends_on`` with the
  ``trigger_rule`` you mean there;
- anything for a role task (a compensation, a catch handler, a ``finally`` task), which is no part of the flow.

Where the exporter is inside a loop or a parallel block the reader is not in, the reader waits for the
loop or the block (nothing outside a loop may depend on its body).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from statemachine.expressions import member_references, root_names


@dataclass(frozen=True)
class Party:
    """One entry of the file as data dependencies see it."""

    id: str
    deps: frozenset[str]
    containers: tuple[str, ...] = ()  # enclosing loops/blocks/conditions, outermost first
    reads: frozenset[str] = frozenset()
    exports: tuple[str, ...] = ()
    may_skip: bool = False  # a when/skip_if, or a member of a condition's branch
    role: bool = False


def file_parties(entries: list[Any], by_id: Mapping[str, Any],
                 strings: Callable[[Any], Iterable[tuple[tuple, str]]], code_keys: Callable[[Any], Iterable[str]],
                 roles: set) -> tuple[list[Party], dict[str, list[str]]]:
    """The compiler's entries (``id``, ``kind``, ``raw``, ``block``, ``deps``, ``path``) as parties, and each
    container's direct members. ``strings``: an entry's expression strings by path; ``code_keys``: its
    config keys holding Python source."""
    parties: list[Party] = []
    members: dict[str, list[str]] = {}
    for entry in entries:
        chain: list[Any] = []
        holder = entry
        while holder.block is not None and holder.block[0] in by_id and len(chain) < len(entries):
            holder = by_id[holder.block[0]]
            chain.insert(0, holder)
        if chain:
            members.setdefault(chain[-1].id, []).append(entry.id)
        raw = entry.raw
        iterators = {(c.raw.get("iterator") or "item") for c in [*chain, entry] if c.kind == "loop"}
        where = [(path[len(entry.path)], text) for path, text in strings(entry)]
        reads = expression_reads([text for key, text in where if key != "outputs"], iterators)
        reads |= expression_reads([text for key, text in where if key == "outputs"], bare=False)
        config = raw.get("config") if isinstance(raw.get("config"), dict) else {}
        for key in code_keys(entry):
            reads |= code_reads(config.get(key))
        outputs = raw.get("outputs") if isinstance(raw.get("outputs"), list) else []
        exports = tuple(o["name"] for o in outputs
                        if isinstance(o, dict) and o.get("export") is True and isinstance(o.get("name"), str))
        parties.append(Party(entry.id, frozenset(d for d in entry.deps if isinstance(d, str)),
                             tuple(c.id for c in chain if c.id), frozenset(reads), exports,
                             may_skip="when" in raw or "skip_if" in raw or any(c.kind == "condition" for c in chain),
                             role=entry.id in roles))
    return parties, members


def expression_reads(values: Iterable[object], iterators: Iterable[str] = (), bare: bool = True) -> set[str]:
    """Variable names read by the expressions in ``values``: as ``variables.X``, and as a bare ``X`` unless
    ``bare`` is false (in a task's ``outputs``, where a bare name is the task's own result's first)."""
    names: set[str] = set()
    for value in values:
        names |= member_references(value, "variables")
        if bare:
            names |= root_names(value) - set(iterators)
    return names


def code_reads(code: object) -> set[str]:
    """Names a python task's code reads from outside: ``variables['X']``, and names it uses but never
    binds. Code that does not parse reads nothing (the task fails with the syntax error when it runs)."""
    if not isinstance(code, str):
        return set()
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set()
    used: set[str] = set()
    bound: set[str] = set()
    explicit: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.Subscript) and _is_name(node.value, "variables"):
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                explicit.add(key.value)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and _is_name(node.func.value, "variables") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            explicit.add(node.args[0].value)
    return (used - bound) | explicit


def _is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def data_dependencies(parties: list[Party], members: Mapping[str, Iterable[str]]) -> dict[str, list[tuple[str, str]]]:
    """For each reader: the (dependency, variable) pairs to add, in file order. ``members``: a container's
    direct members (a loop's body, a block's tasks): a container ends after them, which the cycle check
    must see."""
    by_id = {p.id: p for p in parties}
    # A member waits for what its containers wait for (not for their end), and a container ends after
    # its members: with a member -> container edge, two branches of one block would seem to wait for
    # each other.
    graph: dict[str, set[str]] = {}
    for party in parties:
        outer = [by_id[c] for c in party.containers if c in by_id]
        graph[party.id] = {d for holder in (party, *outer) for d in holder.deps
                           if d not in party.containers and d != party.id}
    for container, ids in members.items():
        graph.setdefault(container, set()).update(ids)
    exporters: dict[str, list[Party]] = {}
    for party in parties:
        if not party.role and not party.may_skip:
            for name in party.exports:
                exporters.setdefault(name, []).append(party)
    added: dict[str, list[tuple[str, str]]] = {}
    for reader in parties:
        if reader.role:
            continue
        for name in sorted(reader.reads):
            for exporter in exporters.get(name, ()):
                target = _lifted(exporter, reader)
                if target == reader.id or target in reader.containers or target in graph[reader.id]:
                    continue
                if _reaches(graph, target, reader.id):
                    continue  # the exporter comes after the reader: waiting for it would be a cycle
                graph[reader.id].add(target)
                added.setdefault(reader.id, []).append((target, name))
    return added


def _lifted(exporter: Party, reader: Party) -> str:
    """What the reader waits for: the exporter, or its outermost loop/block that does not hold the reader."""
    for container in exporter.containers:
        if container not in reader.containers:
            return container
    return exporter.id


def _reaches(graph: Mapping[str, set[str]], start: str, goal: str) -> bool:
    """Does ``start`` wait (transitively) for ``goal``?"""
    goals = {goal}
    seen: set[str] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        if node in goals:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(graph.get(node, ()))
    return False
