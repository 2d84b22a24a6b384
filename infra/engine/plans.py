"""Plans by hash, and the registry of workflow definitions (id + version -> plan)."""

from __future__ import annotations

from statemachine.plan import Plan

from ..ports import StateStore


class Plans:
    def __init__(self, store: StateStore):
        self.store = store
        self._cache: dict[str, Plan] = {}

    def get(self, plan_hash: str) -> Plan:
        # Plans are content-addressed, so a cached plan can never be stale.
        cached = self._cache.get(plan_hash)
        if cached is None:
            text = self.store.get_plan(plan_hash)
            if text is None:
                raise LookupError(f"unknown plan {plan_hash}")
            cached = self._cache[plan_hash] = Plan.from_json(text)
        return cached

    def save(self, plan: Plan) -> None:
        if plan.hash not in self._cache:
            self.store.put_plan(plan.hash, plan.to_json())
            self._cache[plan.hash] = plan

    def register(self, plan: Plan) -> None:
        """For runs by id and for sub-workflows."""
        self.save(plan)
        self.store.put_workflow(plan.workflow_id, plan.version, plan.hash)

    def find(self, ref: str) -> Plan | None:
        """``id`` (the latest version) or ``id@version``."""
        workflow_id, _, version = ref.partition("@")
        plan_hash = self.store.get_workflow(workflow_id, version or None)
        return self.get(plan_hash) if plan_hash else None
