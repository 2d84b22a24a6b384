"""What an expression can see: the run's inputs, variables, finished tasks, exposed env."""

from __future__ import annotations

from typing import Any, Mapping

from .expressions import Scope


def task_view(status: str, output: Any, error: dict | None, attempts: int) -> dict[str, Any]:
    # A SKIPPED (or never-run) task's output reads as null, as dsl.md says.
    return {
        "status": status,
        "output": output if status == "COMPLETED" or status == "FAILED" else None,
        "error": error,
        "attempts": attempts,
    }


def build_scope(
    inputs: Mapping[str, Any],
    variables: Mapping[str, Any],
    tasks: Mapping[str, dict[str, Any]],
    env: Mapping[str, str],
    own: Mapping[str, Any] | None = None,
    extra_roots: Mapping[str, Any] | None = None,
    iterator: Mapping[str, Any] | None = None,
) -> Scope:
    """Bare names resolve: the task's own result names, the loop iterator, variables, inputs."""
    roots: dict[str, Any] = {
        "inputs": dict(inputs),
        "variables": dict(variables),
        "tasks": dict(tasks),
        "env": dict(env),
    }
    if extra_roots:
        roots.update(extra_roots)
    layers = [layer for layer in (own, iterator, variables, inputs) if layer]
    return Scope(roots=roots, bare=layers)
