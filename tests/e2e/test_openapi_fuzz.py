"""The API fuzzed from its own OpenAPI document (issue #11 item 6): schemathesis against a real
`loopline dev` (the embedded default), with valid and invalid requests for every operation.

Every answer must be JSON of the documented shape and status (no 5xx), and a request that breaks
the document must be refused with a 4xx. Bounded: FUZZ_EXAMPLES requests per operation and mode
(about a minute on two cores); `LOOPLINE_FUZZ_EXAMPLES=500` digs deeper by hand.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from loopline.embedded.provision import routes_from_template

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
    return schema


# The operations as template.yaml routes them (tests/unit/test_openapi.py holds the document to the
# same list); parametrized here rather than with schemathesis' pytest loader, which pytest 9 breaks.
OPERATIONS = sorted((route.path, route.method) for route in routes_from_template() if route.function == "ApiFunction")


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_every_operation_answers_as_documented(api_schema, dev_server, path, method, mode):
    operation = api_schema[path][method]
    content = api_schema.raw_schema["paths"][path][method.lower()].get("requestBody", {}).get("content", {})
    if mode is GenerationMode.NEGATIVE and not any(media.get("schema") for media in content.values()):
        # Path segments and query values are any string, a callback takes any JSON: only a body with
        # a shape can break the document.
        pytest.skip("nothing in this request can break the document")

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(operation.as_strategy(generation_mode=mode))
    def fuzz(case):
        case.call_and_validate(base_url=dev_server, checks=CHECKS, timeout=30)

    fuzz()
