"""Parallel blocks: what each branch amounts to, and what the block's aggregation strategy concludes.

Pure: it takes the member tasks' finished states and returns data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class MemberState:
    status: str
    output: Any = None
    error: dict | None = None
    caught: bool = False
    ended_at: str = ""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    output: Any = None
    error_type: str = ""
    message: str = ""


def branch_view(members: list[str], last: list[str], states: Mapping[str, MemberState]) -> dict[str, Any]:
    """A branch's status and data (dsl.md): the output of its last task, or with several last
    tasks an object of their outputs by id. Any uncaught failure in the branch fails it."""
    states_of = {m: states.get(m, MemberState("PENDING")) for m in members}
    failed = [m for m in members if states_of[m].status == "FAILED" and not states_of[m].caught]
    if failed:
        return {"status": "FAILED", "error": {**(states_of[failed[0]].error or {}), "task_id": failed[0]}}
    finals = [states_of[m] for m in last]
    ok = [s for s in finals if s.status == "COMPLETED" or (s.status == "FAILED" and s.caught)]
    if len(last) == 1:
        data = finals[0].output if ok else None
    else:
        data = {m: states_of[m].output for m in last}
    if ok:
        return {"status": "COMPLETED", "data": data}
    if any(s.status == "CANCELLED" for s in finals):
        return {"status": "CANCELLED", "data": None}
    if all(s.status == "SKIPPED" for s in finals) and finals:
        return {"status": "SKIPPED", "data": None}
    if not finals:
        return {"status": "COMPLETED", "data": None}  # an empty branch
    return {"status": "PENDING", "data": None}


def first_winner(branches: Mapping[str, dict[str, Any]], finished_at: Mapping[str, str]) -> str | None:
    """The branch that succeeded first (earliest finish of its last tasks), if any has."""
    done = [name for name, view in branches.items() if view["status"] == "COMPLETED"]
    return min(done, key=lambda name: (finished_at.get(name, ""), name)) if done else None


NUMERIC = ("sum", "min", "max")  # need every branch, each a number


def aggregate(strategy: str, branches: Mapping[str, dict[str, Any]], winner: str | None = None) -> Outcome:
    """merge and count never fail; all, sum, min and max fail if any branch failed (a total missing
    a term would be wrong, not partial); first is the winner's data; custom is left to the block's
    output_mapping (the branches' views are its scope)."""
    if strategy == "all" or strategy in NUMERIC:
        failed = [name for name, view in branches.items() if view["status"] == "FAILED"]
        if failed:
            error = branches[failed[0]]["error"]
            return Outcome(False, error_type=error.get("type", "Error"),
                           message=f"branch '{failed[0]}' failed: {error.get('message', '')}")
        if strategy in NUMERIC:
            return _numeric(strategy, branches)
        return Outcome(True, [view.get("data") for view in branches.values()])
    if strategy == "count":
        return Outcome(True, sum(1 for view in branches.values() if view["status"] == "COMPLETED"))
    if strategy == "first":
        if winner is None:
            return Outcome(False, error_type="NoBranchSucceeded", message="no branch of the block succeeded")
        return Outcome(True, branches[winner].get("data"))
    if strategy == "merge":
        return Outcome(True, {name: _public(view) for name, view in branches.items()})
    return Outcome(True, None)


def _numeric(strategy: str, branches: Mapping[str, dict[str, Any]]) -> Outcome:
    """sum/min/max over the data of the branches that completed (a skipped or cancelled branch has
    no term). A term that is not a number fails the block naming its branch: summing text or
    booleans would hide a mistake (True counts as 1 in Python)."""
    terms = []
    for name, view in branches.items():
        if view["status"] != "COMPLETED":
            continue
        data = view.get("data")
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            return Outcome(False, error_type="TypeError",
                           message=f"branch '{name}' gave {_json_kind(data)} {json.dumps(data)[:80]}, "
                                   f"not a number: aggregation '{strategy}' adds numbers")
        terms.append(data)
    if strategy == "sum":
        return Outcome(True, sum(terms))
    if not terms:
        return Outcome(False, error_type="NoBranchSucceeded",
                       message=f"no branch gave a number: aggregation '{strategy}' has nothing to compare")
    return Outcome(True, min(terms) if strategy == "min" else max(terms))


def _json_kind(value: Any) -> str:
    return {bool: "a boolean", str: "a string", list: "a list", dict: "an object"}.get(type(value), "null")


def _public(view: dict[str, Any]) -> dict[str, Any]:
    if view["status"] == "FAILED":
        return {"status": "FAILED", "error": view["error"]}
    return {"status": view["status"], "data": view.get("data")}
