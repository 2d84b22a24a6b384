"""Task runner: runs one attempt of a workflow's code (python, shell, custom) and answers.

Invoked asynchronously by the worker; Lambda sends the answer (or this function's failure) to the
result queue. It holds nothing of the engine's: no table, queue, secret or bucket access, none of
its settings; a large request or reply moves by the presigned URLs in the job (infra/dispatch/runner.py).
"""

import os

from aws_lambda_powertools import Logger

from infra.dispatch.runner import run_job
from infra.sandbox.settings import SandboxSettings

logger = Logger(service="loopline-task-runner")


@logger.inject_lambda_context
def lambda_handler(event, context):
    # Read per invocation, not at import: the embedded runtime keeps one import for every runtime it starts.
    return run_job(event, SandboxSettings.from_env(os.environ))
