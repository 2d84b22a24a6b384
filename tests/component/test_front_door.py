"""The api handler as the front door (issue #9): JSON only, bodies it can parse, answers a browser
cannot misread, links served apart from run views, and reads that never write.

Called with API Gateway proxy events, as on AWS, under a fresh moto per test.
"""

from __future__ import annotations

import copy
import json

import pytest

from infra.wiring import get_engine
from tests.conftest import load_event

WORKFLOW = """
workflow:
  metadata: {id: front_door}
  tasks:
    - id: ask
      type: approval
      config: {title: "Ship it?", approvers: [ann@example.com, bob@example.com], required_approvals: 2, timeout: 1h}
    - id: hook
      type: callback
      config: {timeout: 1h}
"""
DEEP = "[" * 100_000 + "]" * 100_000  # far past any recursion limit


def strict_json(text: str):
    """JSON as the standard has it: NaN and Infinity are not numbers."""
    def refuse(name):
        raise ValueError(f"{name} in an answer")
    return json.loads(text, parse_constant=refuse)


def headers_of(response: dict) -> dict[str, str]:
    merged = {k.lower(): v[-1] for k, v in (response.get("multiValueHeaders") or {}).items()}
    merged.update({k.lower(): v for k, v in (response.get("headers") or {}).items()})
    return merged


def call(runtime, method: str, path: str, resource: str, body=None, content_type: str | None = "application/json",
         accept: str = "application/json", query: dict | None = None) -> tuple[int, dict, object]:
    """One request through the api handler; returns (status, headers, JSON body or text)."""
    response = runtime.invoke("ApiFunction", route_event(method, path, resource, body, content_type, accept, query))
    headers = headers_of(response)
    text = response.get("body") or ""
    return response["statusCode"], headers, strict_json(text) if "json" in headers.get("content-type", "") else text


def route_event(method: str, path: str, resource: str, body=None, content_type: str | None = "application/json",
                accept: str = "application/json", query: dict | None = None) -> dict:
    """API Gateway's proxy event of one request to ``path``, routed to ``resource``."""
    event = copy.deepcopy(load_event("api_post_runs.json"))
    names = [part[1:-1] for part in resource.split("/") if part.startswith("{")]
    values = [part for part, pattern in zip(path.split("/"), resource.split("/")) if pattern.startswith("{")]
    event.update(httpMethod=method, path=path, resource=resource, pathParameters=dict(zip(names, values)) or None,
                 body=body if body is None or isinstance(body, str) else json.dumps(body),
                 queryStringParameters=query, multiValueQueryStringParameters=(
                     {k: [v] for k, v in query.items()} if query else None))
    event["requestContext"].update(httpMethod=method, resourcePath=resource, path=f"/Prod{path}")
    for bag in ("headers", "multiValueHeaders"):
        event[bag].pop("Content-Type", None)
        event[bag]["Accept"] = accept if bag == "headers" else [accept]
        if content_type is not None:
            event[bag]["Content-Type"] = content_type if bag == "headers" else [content_type]
    return event


def start(runtime, workflow: str = WORKFLOW) -> str:
    status, _, body = call(runtime, "POST", "/runs", "/runs", {"workflow": workflow, "input": {}})
    assert status == 201, body
    return body["run_id"]


def settle(runtime, run_id: str, predicate):
    assert runtime.run_until(lambda: predicate(get_engine().describe_run(run_id)), 15)
    return get_engine().describe_run(run_id)


def links(runtime, run_id: str) -> dict[str, str]:
    """{approver or "hook": token} of a waiting run, from the engine (not through the API)."""
    view = settle(runtime, run_id, lambda v: len(v["approvals"]) == 2 and v["callbacks"])
    found = {a["approver"]: a["url"].rsplit("/", 1)[1] for a in view["approvals"]}
    found["hook"] = view["callbacks"][0]["url"].rsplit("/", 1)[1]
    return found


def test_a_workflow_sent_as_text_plain_starts_nothing(runtime):
    before = set(get_engine().store.unused_tokens("approval"))
    status, _, _ = call(runtime, "POST", "/runs", "/runs", {"workflow": WORKFLOW, "input": {}},
                        content_type="text/plain")
    assert status == 415
    runtime.run_until(lambda: False, 1.0)  # anything queued would have been started meanwhile
    assert set(get_engine().store.unused_tokens("approval")) == before


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON",
                                          "application/vnd.acme.shipment+json"])
def test_callbacks_take_any_json_body_under_any_json_type(runtime, content_type):
    token = links(runtime, start(runtime))["hook"]
    status, _, answer = call(runtime, "POST", f"/callbacks/{token}", "/callbacks/{token}", [1, "two", {"3": None}],
                             content_type=content_type)
    assert status == 200 and answer["status"] == "accepted"


def test_nesting_up_to_the_limit_is_taken(runtime):
    token = links(runtime, start(runtime))["hook"]
    nested = "[" * 100 + "]" * 100  # MAX_DEPTH (infra/json_http.py)
    status, _, answer = call(runtime, "POST", f"/callbacks/{token}", "/callbacks/{token}", nested)
    assert status == 200, answer


def test_a_stored_non_finite_number_is_answered_as_null(runtime):
    run_id = start(runtime)
    links(runtime, run_id)
    # The engine never writes NaN or an infinity now; an item an older release wrote may hold one
    # (its JSON text says Infinity). Put such text in the table as that release would have, then read.
    table = runtime.stack.physical["RunsTable"]
    db = runtime.aws.client("dynamodb")
    for task_id, text in (("hook", '{"big":Infinity,"small":-Infinity,"nan":NaN,"fine":1.5}'), ("ask", "[Infinity]")):
        db.update_item(TableName=table, Key={"pk": {"S": run_id}, "sk": {"S": f"T#{task_id}"}},
                       UpdateExpression="SET #o = :o", ExpressionAttributeNames={"#o": "output"},
                       ExpressionAttributeValues={":o": {"S": text}})
    status, _, view = call(runtime, "GET", f"/runs/{run_id}", "/runs/{run_id}")  # parsed strictly
    assert status == 200
    assert view["tasks"]["hook"]["output"] == {"big": None, "small": None, "nan": None, "fine": 1.5}
    assert view["tasks"]["ask"]["output"] == [None]


def test_every_answer_says_nosniff(runtime):
    run_id = start(runtime)
    token = links(runtime, run_id)["ann@example.com"]
    answers = [
        call(runtime, "GET", f"/runs/{run_id}", "/runs/{run_id}"),
        call(runtime, "GET", "/runs/nope", "/runs/{run_id}"),
        call(runtime, "GET", "/nowhere", "/nowhere"),
        call(runtime, "POST", "/runs", "/runs", "{bad"),
        call(runtime, "POST", "/runs", "/runs", "{}", content_type="text/plain"),
        call(runtime, "GET", f"/approvals/{token}", "/approvals/{token}", accept="text/html"),
        call(runtime, "GET", f"/approvals/{token}", "/approvals/{token}"),
        call(runtime, "POST", f"/approvals/{token}", "/approvals/{token}", "decision=APPROVED&csrf=x",
             content_type="application/x-www-form-urlencoded"),
        call(runtime, "GET", "/workflows", "/workflows"),
    ]
    assert [status for status, _, _ in answers] == [200, 404, 404, 400, 415, 200, 200, 403, 200]
    for status, headers, _ in answers:
        assert headers.get("x-content-type-options") == "nosniff", (status, headers)


def test_on_aws_reading_a_run_shows_no_live_link(runtime, monkeypatch):
    run_id = start(runtime)
    links(runtime, run_id)
    monkeypatch.setenv("LOOPLINE_LINKS_IN_VIEWS", "false")  # as template.yaml sets it
    _, _, view = call(runtime, "GET", f"/runs/{run_id}", "/runs/{run_id}")
    assert {a["approver"] for a in view["approvals"]} == {"ann@example.com", "bob@example.com"}
    assert all("url" not in a and a["title"] == "Ship it?" and a["deadline"] for a in view["approvals"])
    assert view["callbacks"] and all("url" not in c and c["task_id"] == "hook" for c in view["callbacks"])
    _, _, listed = call(runtime, "GET", "/approvals", "/approvals", query={"run": run_id})
    assert len(listed["approvals"]) == 2 and all("url" not in a for a in listed["approvals"])
    assert "/approvals/" not in json.dumps(view) + json.dumps(listed)
    # The links have their own route (IAM-authorized on AWS, like the rest of run control).
    status, _, served = call(runtime, "GET", f"/runs/{run_id}/links", "/runs/{run_id}/links")
    assert status == 200 and served["run_id"] == run_id
    assert {a["approver"] for a in served["approvals"]} == {"ann@example.com", "bob@example.com"}
    token = served["approvals"][0]["url"].rsplit("/", 1)[1]
    assert call(runtime, "GET", f"/approvals/{token}", "/approvals/{token}")[0] == 200  # a live link
    assert served["callbacks"][0]["url"].rsplit("/", 1)[1] == links(runtime, run_id)["hook"]
    assert call(runtime, "GET", "/runs/nope/links", "/runs/{run_id}/links")[0] == 404


def test_locally_the_run_view_keeps_its_links(runtime):
    run_id = start(runtime)
    links(runtime, run_id)  # LocalRuntime turns LOOPLINE_LINKS_IN_VIEWS on: the dev server's contract
    _, _, view = call(runtime, "GET", f"/runs/{run_id}", "/runs/{run_id}")
    assert all("/approvals/" in a["url"] for a in view["approvals"])
    assert "/callbacks/" in view["callbacks"][0]["url"]


def test_a_links_json_view_shows_its_approver_not_the_others_comments(runtime):
    run_id = start(runtime)
    tokens = links(runtime, run_id)
    status, _, _ = call(runtime, "POST", f"/approvals/{tokens['ann@example.com']}", "/approvals/{token}",
                        {"decision": "APPROVED", "comments": "ann's private remark"})
    assert status == 200
    status, _, info = call(runtime, "GET", f"/approvals/{tokens['bob@example.com']}", "/approvals/{token}")
    assert status == 200 and info["approver"] == "bob@example.com" and info["title"] == "Ship it?"
    assert info["decisions_so_far"] == 1 and info["status"] == "PENDING"
    assert "ann's private remark" not in json.dumps(info) and "votes" not in info
    status, _, page = call(runtime, "GET", f"/approvals/{tokens['bob@example.com']}", "/approvals/{token}",
                           accept="text/html")
    assert status == 200 and "1 decision(s) so far" in page and "private remark" not in page


def test_reading_a_link_never_writes(runtime, clock):
    run_id = start(runtime)
    tokens = links(runtime, run_id)
    ann, bob, hook = tokens["ann@example.com"], tokens["bob@example.com"], tokens["hook"]
    assert call(runtime, "POST", f"/approvals/{ann}", "/approvals/{token}", {"decision": "APPROVED"})[0] == 200
    assert call(runtime, "POST", f"/callbacks/{hook}", "/callbacks/{token}", {"ok": True})[0] == 200
    settle(runtime, run_id, lambda v: v["tasks"]["hook"]["status"] == "COMPLETED")
    store = get_engine().store
    before = store.list_tasks(run_id)
    for _ in range(3):  # a used link, read every way there is
        assert call(runtime, "GET", f"/approvals/{ann}", "/approvals/{token}", accept="text/html")[0] == 410
        assert call(runtime, "GET", f"/approvals/{ann}", "/approvals/{token}")[0] == 410
        assert call(runtime, "GET", f"/approvals/{ann}", "/approvals/{token}", accept="text/html",
                    query={"done": "1"})[0] == 200
        assert call(runtime, "GET", f"/callbacks/{hook}", "/callbacks/{token}")[0] == 410
    clock.advance(2 * 3600)  # and an expired one
    assert call(runtime, "GET", f"/approvals/{bob}", "/approvals/{token}", accept="text/html")[0] == 410
    assert call(runtime, "GET", f"/approvals/{bob}", "/approvals/{token}")[0] == 410
    assert store.list_tasks(run_id) == before


def test_refused_posts_are_counted_in_one_bounded_record(runtime):
    run_id = start(runtime)
    tokens = links(runtime, run_id)
    ann = tokens["ann@example.com"]
    assert call(runtime, "POST", f"/approvals/{ann}", "/approvals/{token}", {"decision": "APPROVED"})[0] == 200
    keys_before = set(get_engine().store.list_tasks(run_id))
    for _ in range(12):
        assert call(runtime, "POST", f"/approvals/{ann}", "/approvals/{token}", {"decision": "REJECTED"})[0] == 410
    keys = set(get_engine().store.list_tasks(run_id)) - keys_before
    assert keys == {"ask:refused"}  # one item, however many refusals
    _, _, view = call(runtime, "GET", f"/runs/{run_id}", "/runs/{run_id}")
    assert view["refused_count"] == 12 and len(view["refused_links"]) == 5
    assert all(r == {"reason": "a used or expired link", "approver": "ann@example.com", "at": r["at"]}
               for r in view["refused_links"])


def test_a_path_with_a_control_character_is_404_not_another_route(runtime):
    run_id = start(runtime)
    links(runtime, run_id)
    # "$" in the resolver's patterns also matches before a final newline: "/approvals/\n" would
    # reach GET /approvals (IAM-only on AWS) through the open link route /approvals/{token}.
    for path in ("/approvals/\n", "/approvals\n", "/runs/\n", f"/runs/{run_id}\n"):
        status, headers, answer = call(runtime, "GET", path, "/approvals/{token}")
        assert status == 404 and answer == {"error": "not found"}, (path, answer)
        assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("body, content_type, status, why", [
    ('{"seconds": 60}', "text/plain", 415, "application/json"),
    ('{"seconds": 60}', None, 415, "application/json"),
    (DEEP, "application/json", 400, "deep"),
    ('{"seconds": NaN}', "application/json", 400, "NaN"),
    ('{"seconds": 1e999}', "application/json", 400, "too large"),
    ('{"seconds": ' + "9" * 400 + "}", "application/json", 400, "seconds"),
    ('{"seconds": ', "application/json", 400, "not valid JSON"),
    ('{"seconds": 60}', "application/json; charset=utf-8", 200, None),
])
def test_the_dev_clock_route_takes_only_json_it_can_parse(runtime, body, content_type, status, why):
    event = {"httpMethod": "POST", "path": "/_dev/clock", "body": body,
             "headers": {"Content-Type": content_type} if content_type else {}}
    response = runtime.invoke("_dev_clock", event)
    answer = strict_json(response["body"])
    assert response["statusCode"] == status, answer
    assert why is None or why in answer["error"], answer


def test_an_empty_approvals_filter_filters_nothing(runtime):
    """Found by tests/e2e/test_openapi_fuzz.py: `?run=` asked DynamoDB for the key "" (a 5xx)."""
    run_id = start(runtime)
    links(runtime, run_id)
    for query in ({"run": ""}, {"approver": ""}, {"run": "", "approver": ""}):
        status, _, listed = call(runtime, "GET", "/approvals", "/approvals", query=query)
        assert status == 200, (query, listed)
        assert {a["approver"] for a in listed["approvals"]} == {"ann@example.com", "bob@example.com"}


def test_a_workflow_id_longer_than_a_key_can_hold_is_refused_not_a_5xx(runtime):
    """Registering a workflow writes its id as a DynamoDB key, which holds at most 2,048 bytes: a longer
    id answered 502 (ValidationException). The language bounds ids (statemachine/dsl.py MAX_ID)."""
    long_id = "w" * 3000
    workflow = WORKFLOW.replace("id: front_door", f"id: {long_id}")
    status, _, answer = call(runtime, "POST", "/workflows", "/workflows", {"workflow": workflow})
    assert status == 400 and "is longer than 128 characters" in answer["diagnostics"][0], answer
    assert call(runtime, "GET", "/workflows", "/workflows")[2] == {"workflows": []}
