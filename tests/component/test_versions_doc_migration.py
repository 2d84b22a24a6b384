"""docs/versions.md's migration example runs as written: two runs of expense@1.0.0 wait for their manager,
each ```console block of the page that runs `loopline migrate` is run against the api handler on local mode's
engine (as against a `loopline dev`), its output as the page shows it (the runs' ids read as RUN-1, RUN-2 in
the order they are first printed) and its exit status 0 (2 for the refusal); then both are approved through
the links sent under 1.0.0 and end on 1.1.0."""

from __future__ import annotations

import re
import shlex

from tests.component.test_migrate_cli import cli  # noqa: F401 - the fixture
from tests.component.test_workflow_versions import api, register
from tests.unit.test_engine_semantics import drive, settle
from tests.unit.test_versions_doc import PAGE

SESSIONS = [text for text in PAGE.sessions if text.startswith("$ loopline migrate")]
RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")


def named(text: str, names: dict[str, str]) -> str:
    """``text`` with each run id replaced by RUN-n, n in the order the ids first appear (over every session)."""
    return RUN_ID.sub(lambda m: names.setdefault(m.group(0), f"RUN-{len(names) + 1}"), text)


def test_the_waiting_runs_are_migrated_dry_run_first_and_finish_on_the_new_version(cli, local, clock):  # noqa: F811
    assert len(SESSIONS) == 3
    v1, v2 = PAGE.files["expense-v1.yaml"], PAGE.files["expense-v2.yaml"]
    renamed = v2.replace('version: "1.1.0"', 'version: "2.0.0"').replace("    - id: review\n", (
        "    - id: approve\n      renamed_from: review\n")).replace("depends_on: [review]", "depends_on: [approve]")
    assert all(register(text)[0] == 201 for text in (v1, v2, renamed))
    runs = {}
    for employee, amount in (("ann", 120), ("bob", 80)):
        status, body = api("POST", "/runs", "/runs", {"workflow": "expense@1.0.0",
                                                      "input": {"amount": amount, "employee": employee}})
        assert status == 201, body
        runs[body["run_id"]] = settle(local, body["run_id"])["approvals"][0]["url"].rsplit("/", 1)[1]
    names: dict[str, str] = {}
    for session in SESSIONS:
        command, *expected = session.rstrip("\n").splitlines()
        code, out, _ = cli(*shlex.split(command)[2:])
        assert named(out, names).rstrip("\n").splitlines() == expected
        assert code == (2 if "cannot migrate" in session else 0)
        for run_id in runs:
            settle(local, run_id)
    for run_id, token in runs.items():
        local.engine.decide(token, "APPROVED")
        view = drive(local, run_id, clock)
        assert view["status"] == "COMPLETED" and view["tasks"]["audit"]["output"] == "logged"
        assert view["outputs"]["paid"]["currency"] == "EUR"
    assert sorted(view["outputs"]["paid"]["paid"] for view in (local.engine.describe_run(r) for r in runs)) == [
        80, 120]
