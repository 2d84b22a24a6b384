"""The AWS Lambda durable-execution SDK for Python, run by its local test runner, on W1-W3.

``DurableFunctionTestRunner`` (aws-durable-execution-sdk-python-testing) runs a durable handler
in process against an in-memory checkpoint service: each step is checkpointed before the next.
W1 is 10 ``context.step`` calls; W2 a step, ``context.parallel`` of 8 one-step branches, and a
step; W3 ``context.map`` over the items, one step each, at most 10 at a time (as loopline's
for_each here). A run counts when the runner reports SUCCEEDED. The runner is a test tool, not a
server: its figures say what the SDK's checkpointing costs in process, not what Lambda would do.
"""

from __future__ import annotations

import json
from typing import Any

import _workload

ENGINE = "durable-sdk-testrunner"


def main() -> None:
    args = _workload.parse()
    try:
        from aws_durable_execution_sdk_python.config import MapConfig
        from aws_durable_execution_sdk_python.context import DurableContext, durable_step
        from aws_durable_execution_sdk_python.execution import InvocationStatus, durable_execution
        from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner
    except ImportError as error:
        _workload.skip(ENGINE, args.workload, f"the durable-execution SDK or its test runner does not import: {error}")

    @durable_step
    def noop(_step_context: Any, value: int) -> dict[str, int]:
        return _workload.step(value)

    def branch(value: int):
        return lambda ctx: ctx.step(noop(value))

    @durable_execution
    def handler(event: Any, context: DurableContext) -> Any:
        if args.workload == "W1":
            out = {"n": 0}
            for _ in range(_workload.CHAIN):
                out = context.step(noop(out["n"] + 1))
            return out
        if args.workload == "W2":
            context.step(noop(0))
            context.parallel([branch(i) for i in range(_workload.FAN_OUT)])
            return context.step(noop(1))
        result = context.map(event["items"], lambda ctx, item, _i, _all: ctx.step(noop(item)),
                             config=MapConfig(max_concurrency=10))
        return len(result.get_results())

    def run(size: int) -> None:
        with DurableFunctionTestRunner(handler=handler) as runner:
            result = runner.run(input=json.dumps({"items": list(range(size))}), execution_timeout=900)
        if result.status is not InvocationStatus.SUCCEEDED:
            raise SystemExit(f"run ended {result.status}: {result.error}")
        if args.workload == "W3" and json.loads(result.result) != size:
            raise SystemExit(f"map gave {result.result}")

    _workload.measure(args, run, ENGINE, version=_workload.version("aws-durable-execution-sdk-python"))



if __name__ == "__main__":
    main()
