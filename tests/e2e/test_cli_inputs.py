"""What `loopline` refuses or accepts at its edge (issue #9): sizes, options, deployment limits.
As a user runs it: a subprocess, its exit code, its output."""

from __future__ import annotations

import json

from tests.e2e.test_cli import loopline, write

DESCRIPTION = "d" * 420_000  # the plan is over DynamoDB's 400 KB item


def test_plans_over_a_dynamodb_item_run_with_a_sub_workflow(tmp_path):
    child = write(tmp_path, "child.yaml", f"""
        workflow:
          metadata: {{id: big_child, description: {DESCRIPTION}}}
          tasks:
            - {{id: hello, type: wait, config: {{duration: 0s}}}}
          outputs: {{mappings: {{done: "${{tasks.hello.status}}"}}}}
        """)
    parent = write(tmp_path, "parent.yaml", f"""
        workflow:
          metadata: {{id: big_parent, description: {DESCRIPTION}}}
          sub_workflows:
            - {{id: kid, workflow_ref: big_child}}
          outputs: {{mappings: {{child: "${{tasks.kid.output.done}}"}}}}
        """)
    done = loopline("run", parent, "--register", child, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"] == {"child": "COMPLETED"}
