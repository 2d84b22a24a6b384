"""`loopline validate` and `loopline run` with llm tools, offline: the local stand-in's script, the
function run in the sandbox, the deployment's allowlist at the CLI's edge. As a user runs it."""

from __future__ import annotations

import json

from tests.e2e.test_cli import write
from tests.e2e.test_cli_inputs import loopline

TOOLS = """
    workflow:
      metadata: {id: tools_cli}
      tasks:
        - id: ask
          type: llm
          config:
            prompt: "What is the mean of 3, 4 and 8?"
            tools:
              - name: mean
                function: "statistics:mean"
                parameters:
                  type: object
                  properties: {data: {type: array, items: {type: integer}, default: [3, 4, 8]}}
    """


def test_run_calls_the_tool_offline_and_records_it(tmp_path):
    path = write(tmp_path, "tools.yaml", TOOLS)
    refused = loopline("validate", path)
    assert refused.returncode == 2
    assert "tools.yaml:11:23: task 'ask': tool function module 'statistics' is not allowed" in refused.stdout
    done = loopline("run", path, "--json", env={"LOOPLINE_CUSTOM_MODULES": "statistics"})
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)["tasks"]["ask"]["output"]
    (call,) = output["tool_calls"]
    assert (call["round"], call["name"], call["arguments"], call["result"]) == (1, "mean", {"data": [3, 4, 8]}, 5)
    assert output["answer"].startswith("[local llm ")
