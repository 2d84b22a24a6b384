"""Code tasks in the task-runner function, on the embedded default (issue #9 items 3, 8, 9).

The worker claims a code task and invokes the runner asynchronously (the local runtime stands in
for Lambda: the runner's own handler on a pool of threads, its destination record sent to the
result queue); the worker takes the result from there. These tests drive it as a user would,
through the runtime's pumps and its HTTP gateway.
"""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from dataclasses import replace

import pytest

from infra.dispatch.jobs import AttemptRef, CodeJob, RunnerAnswer, destination_record, new_token
from infra.sandbox.request import CodeReply, CodeRequest
from tests.conftest import compile_yaml
from tests.e2e.test_invariants import finish, start, view

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def test_a_task_longer_than_the_workers_timeout_completes(aws, clock):
    """Item 8: the worker's timeout (made 2 s here, 30 s on AWS) no longer bounds a code task: the worker
    only dispatches it. Run in the worker, a 4 s task would be stopped every time and end as a poison message."""
    from loopline.embedded.runtime import LocalRuntime

    aws.stack.functions["WorkerFunction"] = replace(aws.stack.functions["WorkerFunction"], timeout=2)
    logged: list[str] = []
    runtime = LocalRuntime(aws, clock=clock, log=logged.append)
    try:
        run_id = start(runtime, """
            workflow:
              metadata: {id: slow}
              tasks:
                - {id: slow, type: python, timeout: 30, config: {code: "import time; time.sleep(4); result = 'slept'"}}
                - {id: after, type: python, depends_on: [slow], config: {code: "result = tasks['slow']['output']"}}
            """)
        done = finish(runtime, run_id, timeout=60)
    finally:
        runtime.stop()
    assert done["status"] == "COMPLETED", done
    assert done["tasks"]["slow"] == {"status": "COMPLETED", "output": "slept", "attempts": 1, "error": None}
    assert done["tasks"]["after"]["output"] == "slept"
    # No worker invocation ran past its 2 s (the local runtime cannot stop a handler, so it notes an overrun
    # and treats the batch as failed, as Lambda would; on AWS the write after the timeout would not happen).
    assert not [line for line in logged if "ran longer than" in line], logged


def test_the_server_answers_while_code_runs(aws, clock):
    """Item 9: a GET while a python task sleeps is answered at once: it sees the task RUNNING (while the
    worker ran code under the runtime's lock, the GET waited, and saw it finished)."""
    from loopline.embedded.runtime import LocalRuntime

    runtime = LocalRuntime(aws, clock=clock).start(http_port=0)
    try:
        body = json.dumps({"workflow": """
workflow:
  metadata: {id: sleepy}
  tasks:
    - {id: nap, type: python, config: {code: "import time; time.sleep(3); result = 'rested'"}}
"""}).encode()
        posted = urllib.request.Request(runtime.gateway.url + "/runs", data=body, method="POST",
                                        headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(posted, timeout=30) as reply:
            run_id = json.loads(reply.read())["run_id"]
        seen = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{runtime.gateway.url}/runs/{run_id}", timeout=30) as reply:
                status = json.loads(reply.read())["tasks"]["nap"]["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            if status == "COMPLETED":
                break
            time.sleep(0.05)
    finally:
        runtime.stop()
    assert seen[-1] == "COMPLETED" and "RUNNING" in seen, seen


def test_forged_results_and_engine_messages_on_the_result_queue_change_nothing(runtime, actions):
    """Whatever lands on the result queue is taken as a result, and a result only for the attempt whose
    token it carries: forged ones (a random token; another task's coordinates; an engine message) are
    dropped, and the run ends as it would have."""
    text = """
        workflow:
          metadata: {id: forged}
          tasks:
            - {id: a, type: python, config: {code: "import time; time.sleep(1.5); result = 'genuine'"}}
            - {id: b, type: python, depends_on: [a], config: {code: "result = tasks['a']['output'] + '!'"}}
          outputs: {mappings: {b: "${tasks.b.output}"}}
        """
    plan = compile_yaml(text)
    run_id = start(runtime, text)
    assert runtime.run_until(lambda: view(runtime, run_id)["tasks"]["a"]["status"] == "RUNNING", 20)
    sqs, queue = runtime.aws.client("sqs"), runtime.stack.physical["TaskResultQueue"]
    request = CodeRequest(kind="python", task_id="a", run_id=run_id, config={"code": "result = 1"}, timeout=5)

    def record(task_id: str, output) -> str:
        job = CodeJob(AttemptRef(run_id, plan.hash, task_id, task_id, 1), new_token(), request)
        answer = RunnerAnswer(reply=CodeReply(output=output, names={"result": output})).to_dict()
        return json.dumps(destination_record(job.to_payload(), "arn:aws:lambda:us-east-1:123456789012:function:x",
                                             str(uuid.uuid4()), runtime.clock.now(), answer))

    for body in (record("a", "forged"), record("b", "forged too"),
                 json.dumps({"k": "exec", "run": run_id, "plan": plan.hash, "task": "b", "attempt": 1}),
                 json.dumps({"k": "redrive", "run": run_id, "epoch": 1})):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    done = finish(runtime, run_id)
    assert done["status"] == "COMPLETED" and done["outputs"] == {"b": "genuine!"}
    assert done["tasks"]["a"]["output"] == "genuine" and done["redrives"] == 0
    assert sorted(actions) == ["a", "b"]
    counts = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == counts["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_large_requests_and_replies_travel_by_presigned_url(runtime):
    """A request or reply over the inline limit goes through the payload bucket: the worker puts the request
    and signs a GET for it and a PUT for the reply; the runner, which has no bucket access, uses only those."""
    run_id = start(runtime, """
        workflow:
          metadata: {id: big}
          tasks:
            - {id: make, type: python, config: {code: "result = 'x' * 300000"}}
            - {id: measure, type: python, depends_on: [make], config: {code: "result = len(tasks['make']['output'])"}}
        """)
    done = finish(runtime, run_id)
    assert done["status"] == "COMPLETED" and done["tasks"]["measure"]["output"] == 300000
    s3 = runtime.aws.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=runtime.stack.physical["PayloadBucket"],
                                                  Prefix="runner/").get("Contents", [])]
    assert any(k.endswith("/reply") for k in keys) and any(k.endswith("/request") for k in keys)
