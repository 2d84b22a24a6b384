"""A workflow's ``migrations`` section (docs/language.md, docs/versions.md): how runs of earlier versions move
to this one. Pure: the compiler checks the section with :func:`migration_problems`; a migration finds the entry
for the run's version with :func:`declared_for`, adds its renames to the compatibility report's task map and
computes the run's variables with :func:`migrated_variables`.

    migrations:
      - from: "1.x"                       # a version, or every version of a major
        rename: {prepare: draft}          # that version's task id -> this version's
        state: "${ {'total': variables.count * 2} }"   # an object: the variables it names are set
        set: {reviewed: true}             # then these (values or expressions)

The first entry whose ``from`` matches the run's version applies. Its expressions see the run as it was on
its version: its inputs, its variables and its tasks by their old ids.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from statemachine.expressions import EvalContext, Scope, evaluate, render
from statemachine.plan import MigrationSpec, Plan
from statemachine.raw_data import as_dict, as_list, strings_in
from statemachine.versions import major

FROM = re.compile(r"^(\d+)\.x$")

Path = tuple[Any, ...]


def migration_problems(wf: dict, ids: set[str], parse: Callable[[Path, str], bool]) -> Iterator[tuple[Path, str]]:
    """Each problem of the section as (path, message); ``parse`` checks (and reports) one expression."""
    for i, raw in enumerate(as_list(wf.get("migrations"))):
        entry, base = as_dict(raw), ("workflow", "migrations", i)
        source = entry.get("from")
        if isinstance(source, str) and not FROM.match(source) and not source[:1].isdigit():
            yield base + ("from",), f"'from' is a version (1.0.0) or every version of a major (1.x), not '{source}'"
        for old, new in as_dict(entry.get("rename")).items():
            if isinstance(new, str) and new not in ids:
                yield base + ("rename", old), f"renames '{old}' to '{new}', which this version does not have"
            if old in ids:
                yield base + ("rename", old), (f"renames '{old}', which this version still has; a renamed task's "
                                               "old id is gone")
        for key in ("state", "set"):
            for path, text in strings_in(entry.get(key), base + (key,)):
                parse(path, text)


def declared_for(plan: Plan, version: str) -> MigrationSpec | None:
    """The first of ``plan``'s migrations for runs of ``version`` (None: none is declared)."""
    for spec in plan.migrations or ():
        found = FROM.match(spec.from_version)
        if spec.from_version == version or (found and int(found.group(1)) == major(version)):
            return spec
    return None


def with_renames(task_map: Mapping[str, str], spec: MigrationSpec | None, old: Plan, new: Plan) -> dict[str, str]:
    """The compatibility report's task map (old id -> new id) with the migration's declared renames."""
    mapped = dict(task_map)
    for old_id, new_id in (spec.rename if spec else {}).items():
        if old_id in old.nodes and new_id in new.nodes:
            mapped = {o: n for o, n in mapped.items() if n != new_id}  # the new id is the renamed task's now
            mapped[old_id] = new_id
    return mapped


class StateError(Exception):
    """A migration's ``state`` did not give an object."""


def migrated_variables(spec: MigrationSpec | None, new: Plan, variables: Mapping[str, Any], scope: Scope,
                       ctx: EvalContext) -> dict[str, Any]:
    """The run's variables on the new version: the new version's defaults, the run's own, then what ``spec``'s
    ``state`` and ``set`` give. Raises ExpressionError or StateError."""
    out = {**{v.name: v.default for v in new.variables}, **variables}
    if spec is None:
        return out
    if spec.state is not None:
        shaped = evaluate(spec.state, scope, ctx)
        if not isinstance(shaped, dict):
            raise StateError(f"its state gave {type(shaped).__name__}, not an object of variables")
        out.update(shaped)
    for name, value in spec.set.items():
        out[name] = render(value, scope, ctx)
    return out
