"""What validation knows of provider task configs before a run (statemachine/task_configs.py)."""

from __future__ import annotations

import pytest

from statemachine.compiler import validate_workflow

HEAD = "workflow:\n  metadata: {id: t}\n  tasks:\n    - id: x\n"


@pytest.mark.parametrize("task, message", [
    ("      type: database\n"
     "      config: {connection: main, query: \"SELECT * FROM t WHERE id = ${inputs.id}\"}",
     "t.yaml:6:15: SQL must not be built from data: write :name in the query and pass the value in 'parameters'"),
    ("      type: database\n      config: {query: \"SELECT 1\"}",
     "t.yaml:6:15: a database task needs 'config.connection'"),
    ("      type: file\n      config: {action: read, path: ../../etc/passwd}",
     "t.yaml:6:15: path '../../etc/passwd' leaves the file root (no absolute paths, no '..')"),
    ("      type: file\n      config: {action: copy, path: a.txt, destination: /tmp/b}",
     "t.yaml:6:15: path '/tmp/b' leaves the file root (no absolute paths, no '..')"),
    ("      type: file\n      config: {action: shred, path: a.txt}",
     "t.yaml:6:15: unknown file action 'shred' (expected one of: read, write, copy, move, delete, list, exists)"),
    ("      type: http\n      config: {url: ftp://files}",
     "t.yaml:6:15: an http task's url must start with http:// or https://"),
    ("      type: http\n      config: {url: https://x, method: FETCH}", "t.yaml:6:15: unknown HTTP method 'FETCH'"),
    ("      type: shell\n      config: {command: \"echo 'unclosed\"}",
     "t.yaml:6:15: cannot split the command: No closing quotation"),
    ("      type: llm\n      config: {prompt: hi, response_format: {type: nothing}}",
     "t.yaml:6:15: response_format is not a JSON Schema"),
    ("      type: sms\n      config: {to: '+15550100'}", "t.yaml:6:15: a sms task needs 'config.body'"),
])
def test_bad_configs_are_reported_before_the_run(task, message):
    found = [str(d) for d in validate_workflow(HEAD + task + "\n", "t.yaml")]
    assert any(line.startswith(message) for line in found), found


@pytest.mark.parametrize("task", [
    "      type: database\n"
    "      config: {connection: main, query: \"SELECT * FROM t WHERE id = :id\", parameters: {id: 1}}",
    "      type: file\n      config: {action: read, path: \"${inputs.path}\"}",  # checked by the provider at run time
    "      type: file\n      config: {action: write, path: reports/q3.txt, content: hi}",
    "      type: http\n      config: {url: \"${inputs.base}/x\", method: post}",
])
def test_good_configs_pass(task):
    assert validate_workflow(HEAD + task + "\n", "t.yaml") == []
