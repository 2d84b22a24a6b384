"""Large values through a run on the embedded default: the S3 claim check at work.

    .venv/bin/python bench/large_payloads.py [--sizes 100000,1000000,5000000]
    .venv/bin/python bench/large_payloads.py --plans [--chains 900,2000]

For each size N, starts bench/workflows/big_payload.yaml through the API handler
with an N-byte input; its first task returns an N-byte output, the next reads it,
the workflow outputs echo it. Prints the run's status and wall time, the largest
DynamoDB item and SQS body the run left or sent (the task runner's destination records
included; DynamoDB allows 400 KB, SQS 256 KB-1 MiB), the largest payload the worker
sent to the task runner (an asynchronous invoke allows 1 MB), and what went to the
payload bucket (the task runner's large requests and replies too). One fresh embedded
stack per size.

With ``--plans``: workflows whose compiled plan is larger than a DynamoDB item (a
420 KB description; chains of 900 and 2,000 ``wait: 0s`` tasks, 0.5 and 1.1 MB of
plan). Each is registered with POST /workflows, then run twice with POST /runs: by
its registered id and as YAML text. Prints the answers, the runs' status and wall
time, the plan's size and the largest item of the definitions table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORKFLOW = (ROOT / "bench" / "workflows" / "big_payload.yaml").read_text()


def measure(size: int) -> dict:
    import boto3

    from infra.wiring import get_engine
    from loopline.embedded.runtime import EmbeddedAws, LocalRuntime

    aws = EmbeddedAws()
    runtime = LocalRuntime(aws)
    bodies: list[int] = []

    invokes: list[int] = []

    def record(params, **_):
        bodies.append(len(params.get("MessageBody", "").encode()))

    def record_invoke(params, **_):
        invokes.append(len(params.get("Payload", b"")))

    boto3.setup_default_session()  # the handlers' clients come from the default session
    boto3.DEFAULT_SESSION.events.register("provide-client-params.sqs.SendMessage", record)
    boto3.DEFAULT_SESSION.events.register("provide-client-params.lambda.Invoke", record_invoke)
    # The task runner's destination records, sent by the (emulated) Lambda service with its own client.
    aws.session.events.register("provide-client-params.sqs.SendMessage", record)
    try:
        event = json.loads((ROOT / "events" / "api_post_runs.json").read_text())
        event["body"] = json.dumps({"workflow": WORKFLOW, "input": {"blob": "x" * size, "size": size}})
        started = time.perf_counter()
        reply = runtime.invoke("ApiFunction", event)
        run_id = json.loads(reply["body"])["run_id"]

        def ended() -> bool:
            with runtime.lock:
                return get_engine().store.get_run(run_id).status in ("COMPLETED", "FAILED")

        runtime.run_until(ended, timeout=600)
        seconds = time.perf_counter() - started
        with runtime.lock:
            view = get_engine().describe_run(run_id)
        items = aws.client("dynamodb").scan(TableName=aws.stack.physical["RunsTable"])["Items"]
        objects = aws.client("s3").list_objects_v2(Bucket=aws.stack.physical["PayloadBucket"]).get("Contents", [])
        return {"size": size, "status": view["status"], "seconds": round(seconds, 2),
                "correct": view.get("outputs", {}).get("total") == 2 * size,
                "max_item": max(len(json.dumps(i)) for i in items), "items": len(items),
                "max_body": max(bodies), "messages": len(bodies), "max_invoke": max(invokes, default=0),
                "objects": len(objects), "object_bytes": sum(o["Size"] for o in objects)}
    finally:
        runtime.stop()
        aws.stop()


def chain(n: int) -> str:
    return "workflow:\n  metadata: {id: chain_%d}\n  tasks:\n" % n + "".join(
        f"    - {{id: t{i}, type: wait, config: {{duration: 0s}}, depends_on: [t{i - 1}]}}\n" if i else
        "    - {id: t0, type: wait, config: {duration: 0s}}\n" for i in range(n))


def measure_plan(name: str, text: str) -> dict:
    from infra.wiring import get_engine
    from loopline.embedded.runtime import EmbeddedAws, LocalRuntime
    from statemachine.compiler import compile_workflow

    aws = EmbeddedAws()
    runtime = LocalRuntime(aws)
    try:
        def post(path: str, body: dict) -> tuple[int, dict]:
            event = json.loads((ROOT / "events" / "api_post_runs.json").read_text())
            event["resource"] = event["path"] = event["requestContext"]["resourcePath"] = path
            event["requestContext"]["path"] = "/Prod" + path
            event["body"] = json.dumps(body)
            reply = runtime.invoke("ApiFunction", event)
            return reply["statusCode"], json.loads(reply["body"])

        registered, answer = post("/workflows", {"workflow": text})
        assert registered == 201, answer
        result = {"case": name, "plan_bytes": len(compile_workflow(text, "w.yaml").to_json()),
                  "POST /workflows": registered, "runs": []}
        for workflow in (answer["workflow_id"], text):
            started = time.perf_counter()
            status, body = post("/runs", {"workflow": workflow, "input": {}})
            assert status == 201, body

            def ended(run_id=body["run_id"]) -> bool:
                with runtime.lock:
                    return get_engine().store.get_run(run_id).status in ("COMPLETED", "FAILED")

            runtime.run_until(ended, timeout=3600)
            with runtime.lock:
                run_status = get_engine().store.get_run(body["run_id"]).status
            result["runs"].append((status, run_status, round(time.perf_counter() - started, 1)))
        items = aws.client("dynamodb").scan(TableName=aws.stack.physical["DefinitionsTable"])["Items"]
        result["max_item"] = max(len(json.dumps(i)) for i in items)
        return result
    finally:
        runtime.stop()
        aws.stop()


def plans(chains: list[int]) -> None:
    print(f"$ .venv/bin/python bench/large_payloads.py --plans --chains {','.join(map(str, chains))}")
    print(f"{'workflow':<26} {'plan bytes':>10}  {'POST /workflows':>15}  {'POST /runs by id':>24}  "
          f"{'POST /runs with YAML':>24}  {'largest definitions item':>24}")
    cases = [("420 KB description", "workflow:\n  metadata: {id: described, description: " + "d" * 420_000
              + "}\n  tasks:\n    - {id: only, type: wait, config: {duration: 0s}}\n")]
    cases += [(f"chain of {n} tasks", chain(n)) for n in chains]
    for name, text in cases:
        m = measure_plan(name, text)
        runs = ["{} {} {:>6}s".format(*run) for run in m["runs"]]
        print(f"{m['case']:<26} {m['plan_bytes']:>10}  {m['POST /workflows']:>15}  {runs[0]:>24}  {runs[1]:>24}  "
              f"{m['max_item']:>24}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,5000000")
    parser.add_argument("--plans", action="store_true", help="large plans instead of large values")
    parser.add_argument("--chains", default="900,2000", help="with --plans: chain lengths")
    args = parser.parse_args()
    if args.plans:
        plans([int(n) for n in args.chains.split(",")])
        return 0
    print(f"$ .venv/bin/python bench/large_payloads.py --sizes {args.sizes}")
    print(f"{'size (bytes)':>12}  {'status':<9} {'correct':<7} {'wall s':>6}  {'largest item':>12}  "
          f"{'largest SQS body':>16}  {'largest invoke':>14}  {'S3 objects':>10}  {'S3 bytes':>10}")
    for size in (int(s) for s in args.sizes.split(",")):
        m = measure(size)
        print(f"{m['size']:>12}  {m['status']:<9} {str(m['correct']):<7} {m['seconds']:>6}  {m['max_item']:>12}  "
              f"{m['max_body']:>16}  {m['max_invoke']:>14}  {m['objects']:>10}  {m['object_bytes']:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
