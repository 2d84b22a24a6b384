"""Workflow versions (docs/versions.md): their semver order, the registry's record of one version, which
version a reference means, and the registry's refusals. Pure: the stores keep the records, the engine's
Plans (infra/engine/plans.py) applies the rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from statemachine.compat import CompatibilityReport

LATEST = "latest"  # `id@latest` means what `id` alone means


def version_key(version: str) -> str:
    """A sortable key for a semver string: "1.10.0" after "1.9.0", "1.0.0-rc.1" before "1.0.0".

    It is also the registry's stored sort key (DynamoDB's ``sk``, SQLite's ``version_key``), so it must
    never change: versions registered by earlier releases are found by it."""
    public = version.split("+", 1)[0]  # build metadata does not order versions
    core, _, prerelease = public.partition("-")
    # isascii: "²" is a digit to str.isdigit, not to int() (a version in a request's path may be anything).
    parts = [int(p) if p.isascii() and p.isdigit() else 0 for p in core.split(".")][:3] + [0, 0, 0]
    # "!" sorts before "~": a pre-release comes before its release.
    return ".".join(f"{p:06d}" for p in parts[:3]) + ("!" + prerelease if prerelease else "~")


def major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isascii() and head.isdigit() else 0


def may_break(before: str, after: str) -> bool:
    """Whether going from ``before`` to ``after`` may carry a breaking change without an override: the
    major number went up, or ``before`` is a 0.y.z version, which semver lets change in any way."""
    return major(after) > major(before) or major(before) == 0


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``id``, ``id@latest`` -> (id, None): the newest version not deprecated; ``id@1.2.0`` -> (id, "1.2.0")."""
    workflow_id, _, version = ref.partition("@")
    return workflow_id, (None if version in ("", LATEST) else version)


@dataclass(frozen=True)
class WorkflowVersion:
    """One registered version: written once, then only deprecated (the store refuses a second write)."""

    workflow_id: str
    version: str
    plan_hash: str
    registered_at: str = ""  # empty: registered by a release before versions were immutable
    changelog: str = ""  # the workflow file's metadata.changelog, kept here for the listing
    compared_with: str | None = None  # the previous version (by semver) its compatibility report was against
    # The breaking changes it was registered with under `allow_breaking` (one line each): the override, kept.
    breaking: tuple[str, ...] = ()
    deprecated_at: str | None = None
    deprecation: str = ""  # the operator's reason

    @property
    def ref(self) -> str:
        return f"{self.workflow_id}@{self.version}"

    @property
    def deprecated(self) -> bool:
        return self.deprecated_at is not None

    def to_json(self) -> dict[str, Any]:
        """As the API lists it: the three keys earlier releases listed, then what versions added."""
        return {"workflow_id": self.workflow_id, "version": self.version, "hash": self.plan_hash,
                "registered_at": self.registered_at or None, "changelog": self.changelog,
                "compared_with": self.compared_with, "breaking_allowed": list(self.breaking),
                "deprecated": self.deprecated, "deprecated_at": self.deprecated_at,
                "deprecation": self.deprecation}

    def extra(self) -> dict[str, Any]:
        """What a store keeps besides id, version and hash (JSON-ready; absent fields at their default)."""
        values = {"registered_at": self.registered_at, "changelog": self.changelog,
                  "compared_with": self.compared_with, "breaking": list(self.breaking),
                  "deprecated_at": self.deprecated_at, "deprecation": self.deprecation}
        return {k: v for k, v in values.items() if v not in ("", None, [])}

    @classmethod
    def from_stored(cls, workflow_id: str, version: str, plan_hash: str,
                    extra: dict[str, Any] | None) -> WorkflowVersion:
        extra = extra or {}
        return cls(workflow_id, version, plan_hash, registered_at=extra.get("registered_at", ""),
                   changelog=extra.get("changelog", ""), compared_with=extra.get("compared_with"),
                   breaking=tuple(extra.get("breaking", ())), deprecated_at=extra.get("deprecated_at"),
                   deprecation=extra.get("deprecation", ""))

    def deprecate(self, at: str, reason: str) -> WorkflowVersion:
        """Deprecated at ``at``; the first deprecation stands (deprecating again changes nothing)."""
        if self.deprecated:
            return self
        return replace(self, deprecated_at=at, deprecation=reason)


def newest_usable(newest_first: Iterable[WorkflowVersion]) -> WorkflowVersion | None:
    """What ``id`` and ``id@latest`` mean: the highest version (semver, pre-releases included, as before
    versions could be deprecated) that is not deprecated."""
    return next((v for v in newest_first if not v.deprecated), None)


def previous_of(newest_first: Iterable[WorkflowVersion], version: str) -> WorkflowVersion | None:
    """The version a new ``version`` is compared with: the highest registered below it, deprecated or
    not (deprecating a version does not change what came before the next one)."""
    key = version_key(version)
    return next((v for v in newest_first if version_key(v.version) < key), None)


class VersionTaken(Exception):
    """The id@version is registered with other content: the differences, one line each."""

    def __init__(self, entry: WorkflowVersion, differences: list[str]):
        super().__init__(f"workflow '{entry.ref}' is already registered with other content; register it "
                         "under a new version")
        self.entry = entry
        self.differences = differences


class BreakingChange(Exception):
    """The version breaks the previous one without a higher major number, and no override was given."""

    def __init__(self, report: CompatibilityReport):
        super().__init__(f"workflow '{report.workflow_id}@{report.to_version}' makes breaking changes to "
                         f"{report.from_version}: give it a higher major version, or allow breaking changes")
        self.report = report


class UnknownVersion(LookupError):
    pass
