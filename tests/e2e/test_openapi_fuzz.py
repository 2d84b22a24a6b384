"""The API fuzzed from its own OpenAPI document (issue #11 item 6): schemathesis against a real
`loopline dev` (the embedded default), with valid and invalid requests for every operation.

Every answer must be JSON of the documented shape and status (no 5xx), and a request that breaks
the document must be refused with a 4xx. Bounded: FUZZ_EXAMPLES requests per operation and mode
(about a minute on two cores); `LOOPLINE_FUZZ_EXAMPLES=500` digs deeper by hand.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from loopline.embedded.provision import routes_from_template
from tests.component.test_front_door import WORKFLOW

pytestmark = pytest.mark.slow

LOOPLINE = str(Path(sys.executable).with_name("loopline"))
ROOT = Path(__file__).resolve().parents[2]
FUZZ_EXAMPLES = int(os.environ.get("LOOPLINE_FUZZ_EXAMPLES", "15"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection]


@pytest.fixture(scope="module")
def dev_server():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # PYTHONPATH: this checkout's code, whichever checkout the console script was installed from
    proc = subprocess.Popen([LOOPLINE, "dev", "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/openapi.json", timeout=5) as reply:
                if reply.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(proc.stderr.read()) from None
            time.sleep(0.2)
    yield base
    proc.terminate()
    _, errors = proc.communicate(timeout=15)
    assert "Traceback" not in errors, errors  # what the fuzzing made the server log


@pytest.fixture(scope="module")
def api_schema(dev_server):
    schema = schemathesis.openapi.from_url(f"{dev_server}/openapi.json")
    # Random Authorization headers would test nothing here: the dev server signs nothing (AWS does).
    schema.config.generation.update(with_security_parameters=False)
    # A request the document refuses must get a 4xx the document names: a used link's 410 too (the
    # link is checked before its body), not only schemathesis' default list.
    schema.config.checks.negative_data_rejection.expected_statuses = ["400", "403", "404", "409", "410", "413", "415"]
    return schema


WAITING = WORKFLOW  # two approvers and a callback, each link waiting an hour
FAILING = """
workflow:
  metadata: {id: fuzzed_failing}
  tasks:
    - id: boom
      type: python
      config: {code: "raise ValueError('on purpose')"}
"""


def _call(method: str, url: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read())


@pytest.fixture(scope="module")
def known(dev_server) -> dict[str, list[str]]:
    """Real values for each path parameter, so requests reach runs, links and workflows that exist
    (a waiting run with two approvers and a callback, a FAILED run), not only their 404s."""
    version = _call("POST", f"{dev_server}/workflows", {"workflow": WAITING})["version"]
    waiting = _call("POST", f"{dev_server}/runs", {"workflow": f"front_door@{version}"})["run_id"]
    failed = _call("POST", f"{dev_server}/runs", {"workflow": FAILING})["run_id"]
    deadline = time.monotonic() + 60
    while True:
        links = _call("GET", f"{dev_server}/runs/{waiting}/links")
        ended = _call("GET", f"{dev_server}/runs/{failed}")["status"] == "FAILED"
        if (len(links["approvals"]) == 2 and links["callbacks"] and ended) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert ended and len(links["approvals"]) == 2 and links["callbacks"], links
    return {"run_id": [waiting, failed], "task_id": ["ask", "hook"],
            "workflow_id": ["front_door", f"front_door@{version}"], "name": ["front_door", f"front_door@{version}"],
            "/approvals/{token}": [a["url"].rsplit("/", 1)[1] for a in links["approvals"]],
            "/callbacks/{token}": [links["callbacks"][0]["url"].rsplit("/", 1)[1]]}


# Valid bodies random text never hits: a run of a registered workflow, a workflow to register.
KNOWN_BODIES = {("POST", "/runs"): [{"workflow": "front_door"}, {"workflow": FAILING, "input": {}}],
                ("POST", "/workflows"): [{"workflow": WAITING}]}


def _with_known_values(operation, method: str, path: str, mode: GenerationMode, known: dict[str, list[str]]):
    """Generated requests, and as many again with the path naming what exists (the rest generated)."""
    names = re.findall(r"\{(\w+)\}", path)
    choices = [known.get(path if name == "token" else name, []) for name in names]
    fixed = [dict(zip(names, values)) for values in itertools.product(*choices)] if names else []
    bodies = KNOWN_BODIES.get((method, path), []) if mode is GenerationMode.POSITIVE else []
    # Seed 000's link carries its token in the query: the approvers' real tokens, either decision.
    queries = [{"token": token, "decision": decision} for token in known["/approvals/{token}"]
               for decision in ("APPROVED", "DENIED")] if path == "/workflow/resume" else []
    return st.one_of(operation.as_strategy(generation_mode=mode),
                     *(operation.as_strategy(generation_mode=mode, path_parameters=values) for values in fixed),
                     *(operation.as_strategy(generation_mode=mode, body=body) for body in bodies),
                     *(operation.as_strategy(generation_mode=mode, query=query) for query in queries))


# The operations as template.yaml routes them (tests/unit/test_openapi.py holds the document to the
# same list); parametrized here rather than with schemathesis' pytest loader, which pytest 9 breaks.
OPERATIONS = sorted((route.path, route.method) for route in routes_from_template() if route.function == "ApiFunction")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_every_operation_answers_as_documented(api_schema, dev_server, known, path, method, mode):
    operation = api_schema[path][method]
    content = api_schema.raw_schema["paths"][path][method.lower()].get("requestBody", {}).get("content", {})
    if mode is GenerationMode.NEGATIVE and not any(media.get("schema") for media in content.values()):
        # Path segments and query values are any string, a callback takes any JSON: only a body with
        # a shape can break the document.
        pytest.skip("nothing in this request can break the document")

    # A POST without a body still says JSON (the document's 415 otherwise): so it reaches its route.
    headers = {"Content-Type": "application/json"} if method == "POST" and not content else None

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(_with_known_values(operation, method, path, mode, known))
    def fuzz(case):
        case.call_and_validate(base_url=dev_server, checks=CHECKS, timeout=30, headers=headers)

    fuzz()
