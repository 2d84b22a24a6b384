"""Step Functions on moto, executing the ASL, on W1-W3, under the peers' venv.

moto runs a state machine's definition only when asked to
(``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})``; otherwise an execution
is static data). Steps are ``Pass`` states with a small ``Result``: a Task state would need
moto's Lambda, which runs functions in Docker. W2 is a ``Parallel`` state of 8 branches between
two Pass states; W3 a ``Map`` state over the input's items with ``MaxConcurrency`` 10 (as
loopline's for_each here). A run is done when DescribeExecution says SUCCEEDED (polled every 1 ms).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import _workload

ENGINE = "stepfunctions-moto"
ROLE = "arn:aws:iam::123456789012:role/peers"


def _pass(value: int, following: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Pass", "Result": _workload.step(value)}
    state.update({"Next": following} if following else {"End": True})
    return state


def definition(workload: str) -> dict[str, Any]:
    if workload == "W1":
        names = [f"t{i}" for i in range(_workload.CHAIN)]
        return {"StartAt": names[0],
                "States": {n: _pass(i, names[i + 1] if i + 1 < len(names) else None) for i, n in enumerate(names)}}
    if workload == "W2":
        branches = [{"StartAt": "b", "States": {"b": _pass(i, None)}} for i in range(_workload.FAN_OUT)]
        return {"StartAt": "split", "States": {
            "split": _pass(0, "fan"),
            "fan": {"Type": "Parallel", "Branches": branches, "Next": "join"},
            "join": _pass(1, None)}}
    return {"StartAt": "each", "States": {"each": {
        "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 10,
        "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "tick", "States": {"tick": _pass(0, None)}},
        "End": True}}}


def main() -> None:
    args = _workload.parse()
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    try:
        import boto3
        from moto import mock_aws
    except ImportError as error:
        _workload.skip(ENGINE, args.workload, f"moto does not import: {error}")

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(name=f"peers-{args.workload}", roleArn=ROLE,
                                       definition=json.dumps(definition(args.workload)))["stateMachineArn"]

        def run(size: int) -> None:
            execution = sfn.start_execution(stateMachineArn=arn, name=str(uuid.uuid4()),
                                            input=json.dumps({"items": list(range(size))}))["executionArn"]
            while True:
                described = sfn.describe_execution(executionArn=execution)
                if described["status"] != "RUNNING":
                    break
                time.sleep(0.001)
            if described["status"] != "SUCCEEDED":
                raise SystemExit(f"execution ended {described['status']}: {described.get('cause')}")
            if args.workload == "W3" and len(json.loads(described["output"])) != size:
                raise SystemExit("map lost items")

        _workload.measure(args, run, ENGINE, version="moto " + _workload.version("moto"))



if __name__ == "__main__":
    main()
