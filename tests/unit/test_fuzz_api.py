"""Hostile input for the HTTP API (issue #5 item 7): every bad request is a 4xx JSON, never a 5xx."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopline.embedded.runtime import LambdaContext
from loopline.memory.local_mode import LocalMode
from tests.conftest import api_event

JSONISH = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30)),
                       lambda inner: st.one_of(st.lists(inner, max_size=3),
                                               st.dictionaries(st.text(max_size=10), inner, max_size=3)),
                       max_leaves=15)
BODIES = st.one_of(st.text(max_size=200), JSONISH.map(json.dumps),
                   st.fixed_dictionaries({"workflow": st.one_of(st.text(max_size=80), JSONISH),
                                          "input": JSONISH}).map(json.dumps))


@pytest.fixture(scope="module")
def call():
    import os

    # what template.yaml and the local runtime give the function, set before its module is imported
    for name, value in {"POWERTOOLS_METRICS_NAMESPACE": "Loopline", "POWERTOOLS_SERVICE_NAME": "loopline",
                        "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "ERROR"}.items():
        os.environ.setdefault(name, value)
    from functions.api.app import lambda_handler

    LocalMode()  # the api handler now drives an in-memory engine

    def invoke(event):
        response = lambda_handler(event, LambdaContext(function_name="ApiFunction"))
        return response["statusCode"], response["body"]

    return invoke


def assert_clean_4xx(status, body):
    assert 400 <= status < 500, (status, body)
    if body.startswith("{"):
        assert "error" in json.loads(body) and "Traceback" not in body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(BODIES)
def test_post_runs_with_garbage(call, body):
    status, text = call(api_event("api_post_runs.json", body=body))
    if status >= 400:
        assert_clean_4xx(status, text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=120), BODIES, st.sampled_from(["application/json", "text/plain",
                                                       "application/x-www-form-urlencoded", ""]))
def test_links_with_garbage(call, token, body, content_type):
    token = token.replace("/", "_") or "x"
    for name in ("api_post_approval.json", "api_post_callback.json", "api_get_approval_html.json"):
        event = api_event(name, {"token": token}, body=body, headers={"Content-Type": content_type})
        status, text = call(event)
        assert_clean_4xx(status, text)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=80))
def test_unknown_runs(call, run_id):
    run_id = run_id.replace("/", "_") or "x"
    status, text = call(api_event("api_get_run.json", {"run_id": run_id}))
    assert_clean_4xx(status, text)


@pytest.mark.parametrize("csrf", ["%C3%A5%23V", "%F4%85%94%A3", "\u00e9t\u00e9", "%ED%A0%80"])
def test_a_form_post_with_a_non_ascii_csrf_value_is_refused_not_a_5xx(call, csrf):
    """Found by tests/e2e/test_openapi_fuzz.py: hmac.compare_digest raised TypeError on such a str."""
    body = f"decision=APPROVED&csrf={csrf}"
    event = api_event("api_post_approval.json", {"token": "x" * 40}, body=body,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    status, text = call(event)
    assert status == 403 and "did not come from the approval page" in text, (status, text)
