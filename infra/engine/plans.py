"""Plans by hash, and the registry of workflow versions (id + version -> plan; docs/versions.md).

A version is written once. Registering it again is idempotent with the same content and refused with
other content; a version that breaks the previous one (statemachine/compat.py) needs a higher major
number or an explicit override, which the version's record keeps. The store's conditional write makes
this race-safe: of two registrations of one id@version, one writes and the other is judged against it.
"""

from __future__ import annotations

from dataclasses import dataclass

from statemachine.compat import CompatibilityReport, compare, same_content
from statemachine.plan import Plan
from statemachine.versions import (
    BreakingChange,
    UnknownVersion,
    VersionTaken,
    WorkflowVersion,
    may_break,
    newest_usable,
    parse_ref,
    previous_of,
)

from ..ports import StateStore


@dataclass(frozen=True)
class Registration:
    entry: WorkflowVersion  # as stored: on an idempotent registration, the first one's record
    created: bool  # False: this content was registered before
    report: CompatibilityReport | None  # against the previous version by semver; None: there is none


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

    # ------------------------------------------------------------ the registry

    def register(self, plan: Plan, at: str, allow_breaking: bool = False) -> Registration:
        """For runs by id and for sub-workflows. Raises VersionTaken or BreakingChange."""
        stored = self.store.get_workflow(plan.workflow_id, plan.version)
        previous = previous_of(self.store.workflow_versions(plan.workflow_id), plan.version)
        report = compare(self.get(previous.plan_hash), plan) if previous is not None else None
        if stored is not None:
            return self._again(plan, stored, report)
        overridden: tuple[str, ...] = ()
        if report is not None and report.is_breaking and not may_break(report.from_version, plan.version):
            if not allow_breaking:
                raise BreakingChange(report)
            overridden = tuple(c.detail for c in report.breaking)  # kept: the override, recorded
        self.save(plan)  # before the version names it: a version never names a missing plan
        written = self.store.register_workflow(WorkflowVersion(
            plan.workflow_id, plan.version, plan.hash, registered_at=at, changelog=plan.changelog or "",
            compared_with=previous.version if previous is not None else None, breaking=overridden))
        if not written.applied:  # another registration of this version got there first
            return self._again(plan, written.record, report)
        return Registration(written.record, True, report)

    def _again(self, plan: Plan, stored: WorkflowVersion, report: CompatibilityReport | None) -> Registration:
        registered = self.get(stored.plan_hash)
        if not same_content(registered, plan):
            raise VersionTaken(stored, differences(registered, plan))
        return Registration(stored, False, report)

    def find(self, ref: str) -> Plan | None:
        """``id`` or ``id@latest`` (the newest version not deprecated) or ``id@version`` (deprecated or not)."""
        entry = self.version_of(ref)
        return self.get(entry.plan_hash) if entry else None

    def version_of(self, ref: str) -> WorkflowVersion | None:
        workflow_id, version = parse_ref(ref)
        if version is not None:
            return self.store.get_workflow(workflow_id, version)
        return newest_usable(self.store.workflow_versions(workflow_id))

    def deprecate(self, workflow_id: str, version: str, at: str, reason: str) -> WorkflowVersion:
        """Raises UnknownVersion."""
        entry = self.store.deprecate_workflow(workflow_id, version, at, reason)
        if entry is None:
            raise UnknownVersion(f"no workflow '{workflow_id}@{version}'")
        return entry

    def diff(self, workflow_id: str, before: str, after: str) -> CompatibilityReport:
        """The report between two registered versions (``latest`` allowed). Raises UnknownVersion."""
        plans = []
        for version in (before, after):
            entry = self.version_of(f"{workflow_id}@{version}")
            if entry is None:
                raise UnknownVersion(f"no workflow '{workflow_id}@{version}'")
            plans.append(self.get(entry.plan_hash))
        return compare(plans[0], plans[1])


def differences(registered: Plan, offered: Plan) -> list[str]:
    """How ``offered`` differs from what is registered under its id@version, one line each."""
    lines = [c.line() for c in compare(registered, offered).changes]
    if registered.version != offered.version:  # 1.0.0+a and 1.0.0+b: one version (semver section 10)
        lines.append(f"registered as version {registered.version}, offered as {offered.version}")
    if (registered.changelog or "") != (offered.changelog or ""):
        lines.append("its changelog differs")
    return lines or ["the compiled plans differ"]
