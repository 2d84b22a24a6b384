"""The migration scenario of bench/crash_points.py and bench/interleavings.py (docs/versions.md): a run of
version 1.0.0 waits on an approval; version 2.0.0 renames the task before it and adds one after it; the run is
migrated (an API action, crashed around too), then the approval is decided through the link sent under 1.0.0,
and the run ends on 2.0.0."""

from __future__ import annotations

from typing import Any, Callable

from statemachine.compiler import compile_workflow

V1 = """
workflow:
  metadata: {id: migration, version: "1.0.0"}
  tasks:
    - {id: prep, type: python, config: {code: "result = 'prepared'"}}
    - {id: ask, type: approval, depends_on: [prep], config: {title: "ok?", approvers: [a@example.com]}}
    - {id: after, type: python, depends_on: [ask], config: {code: "result = tasks['ask']['output']['decision']"}}
"""
V2 = """
workflow:
  metadata: {id: migration, version: "2.0.0"}
  tasks:
    - {id: draft, renamed_from: prep, type: python, config: {code: "result = 'prepared'"}}
    - {id: ask, type: approval, depends_on: [draft], config: {title: "ok?", approvers: [a@example.com]}}
    - {id: told, type: python, depends_on: [ask], config: {code: "result = 'told ' + tasks['draft']['output']"}}
    - {id: after, type: python, depends_on: [told], config: {code: "result = tasks['ask']['output']['decision']"}}
  outputs: {mappings: {told: "${tasks.told.output}"}}
"""
TARGET = "migration@2.0.0"
TARGET_PLAN = compile_workflow(V2, "v2.yaml")


class MigrateFirst:
    """One run's migration step: once the run waits on its approval, ask for the migration (once, or again
    after a crash inside the request), and hold the decisions back until the run is on 2.0.0."""

    def __init__(self) -> None:
        self.asked = False

    def holds(self, engine: Any, run_id: str, view: dict | None, act: Callable[[Callable[[], Any]], Any]) -> bool:
        """True while the approval's decision must wait. ``act`` runs the API's work (crashable)."""
        run = engine.store.get_run(run_id)
        if run is None or run.plan_hash == TARGET_PLAN.hash or not (view or {}).get("approvals"):
            return False
        if not self.asked:
            engine.register_workflow(TARGET_PLAN)  # not the run's work: registered before it is migrated
            answer = act(lambda: engine.migrate_run(run_id, TARGET))
            if not answer["allowed"]:
                raise AssertionError(f"the migration was refused: {answer['lines']}")
            self.asked = True
        return True
