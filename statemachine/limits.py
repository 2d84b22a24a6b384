"""What a deployment allows a workflow to do, checked when a workflow is validated or submitted.

These are facts about the targets (how long each kind of task can run there)
and the deployment's own choices (which modules a ``custom`` task may import).
The core never reads them from the environment: the edges build a
:class:`DeploymentLimits` (``infra`` from ``LOOPLINE_CUSTOM_MODULES``, the CLI
from its flags) and pass it in.
"""

from __future__ import annotations

from dataclasses import dataclass

from statemachine.task_types import TASK_TYPES

# The longest a code-running task (python, shell, custom) may run, on every target: on AWS
# it runs in the task-runner function, whose Lambda timeout (900 s) must also cover starting
# the code and answering.
MAX_CODE_TIMEOUT = 840.0
# The longest a task that runs inside the worker may take (http, llm, browser, database,
# email, sms, voice, file): the worker's Lambda timeout is 30 s, shared with its other work.
MAX_WORKER_TASK_TIMEOUT = 25.0
# Read from the one list of task types (statemachine/task_types.py); named here for the engine.
CODE_TASK_TYPES = TASK_TYPES.code_types
# Bounds on one run's input and one task's result (JSON bytes). Values over 32 KB go to S3
# through the claim check (infra/aws/claims.py), so DynamoDB's 400 KB item and SQS's 256 KB
# message do not bind; these keep one value within a Lambda's memory and, for the input,
# under the 6 MB Lambda request that POST /runs arrives in on AWS.
MAX_INPUT = 5 * 1024 * 1024
MAX_OUTPUT = 10 * 1024 * 1024


def module_allowed(module: str, prefixes: tuple[str, ...]) -> bool:
    """Deny by default: ``module`` is allowed only if it is, or is inside, one of ``prefixes``."""
    return any(module == p or module.startswith(p.rstrip(".") + ".") for p in prefixes if p)


@dataclass(frozen=True)
class DeploymentLimits:
    """``custom_modules``: module prefixes a ``custom`` task may name (empty: none at all).
    ``python_packages``: ``name==version`` of each distribution python tasks' ``requirements`` may name
    (statemachine/requirements.py); None: the deployment gives python tasks no packages."""

    custom_modules: tuple[str, ...] = ()
    python_packages: tuple[str, ...] | None = None

    @classmethod
    def from_setting(cls, value: str | None) -> DeploymentLimits:
        """From the comma-separated form of LOOPLINE_CUSTOM_MODULES / the CustomModules parameter."""
        return cls(tuple(p.strip() for p in (value or "").split(",") if p.strip()))
