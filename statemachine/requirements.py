"""A python task's ``requirements`` (seed 003: ``requirements: [string]``) against what the deployment provides.

Honoured where the target can: python tasks run with the standard library only, unless the deployment gives
them a directory of installed distributions (``LOOPLINE_PYTHON_PACKAGES``: ``pip install --target DIR ...``
on one machine, a Lambda layer's ``/opt/python`` on AWS). Nothing is installed at run time: a task's code runs
without network access to a package index and must start the same on every attempt. So each requirement is
checked when the workflow is validated, against the distributions that directory holds (their names and
versions, read by the edge: ``DeploymentLimits.python_packages``), and a requirement the deployment cannot meet
is a validation error naming it. A task that declares requirements imports from that directory; one that
declares none does not see it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version


def requirement_problems(requirements: Any, provided: Iterable[str] | None) -> list[tuple[int | None, str]]:
    """``(index or None, message)`` for each requirement the deployment cannot meet. ``provided``:
    ``name==version`` of every distribution the deployment's package directory holds (None: no directory)."""
    if requirements is None:
        return []
    if not isinstance(requirements, list) or not all(isinstance(r, str) for r in requirements):
        return [(None, "requirements must be a list of requirement strings such as 'requests>=2.31'")]
    versions: dict[str, Version] = {}
    for entry in provided or ():
        name, _, version = entry.partition("==")
        try:
            versions[canonicalize_name(name)] = Version(version)
        except InvalidVersion:
            continue  # a distribution with a version PEP 440 cannot read satisfies no specifier
    problems: list[tuple[int | None, str]] = []
    for i, text in enumerate(requirements):
        try:
            requirement = Requirement(text)
        except InvalidRequirement as exc:
            problems.append((i, f"requirement {text!r} cannot be read: {exc}"))
            continue
        if requirement.url:
            problems.append((i, f"requirement {text!r} names a URL: only distributions the deployment provides "
                                "can be required"))
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue  # not for this Python: nothing to provide
        have = versions.get(canonicalize_name(requirement.name))
        if provided is None:
            problems.append((i, f"requirement {text!r}: this deployment gives python tasks no packages (set "
                                "LOOPLINE_PYTHON_PACKAGES to a directory of installed distributions)"))
        elif have is None:
            problems.append((i, f"requirement {text!r}: this deployment's packages have no "
                                f"'{requirement.name}'"))
        elif not requirement.specifier.contains(have, prereleases=True):
            problems.append((i, f"requirement {text!r}: this deployment provides {requirement.name} {have}"))
    return problems
