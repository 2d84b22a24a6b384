"""The web console's pages and actions (functions/console/), through its Lambda handler, on local mode's
engine: what each page shows, that every stored value is escaped, that a forged or cross-site form post
is refused (403) and changes nothing, what each action does, and the error pages."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qsl

import pytest

from functions.console.guard import console_actor
from infra.wiring import get_history
from statemachine.history import AuditAction
from tests.component.console_calls import FORGERIES, HOST, call, forged
from tests.conftest import compile_yaml

RUN = "/console/runs/{run_id}"
ACTION = "/console/runs/{run_id}/{action}"
HOSTILE = '<script>alert("x")</script>'

CHAIN = """
workflow:
  metadata: {id: chain}
  tasks:
    - id: a
      type: python
      config: {code: "print('<b>printed</b>'); result = {'html': '<img src=x onerror=alert(1)>'}"}
    - {id: b, type: python, depends_on: [a], config: {code: "raise ValueError('<script>boom</script>')"}}
    - {id: c, type: python, depends_on: [b], config: {code: "result = 3"}}
"""

ASK = """
workflow:
  metadata: {id: ask}
  tasks:
    - id: ask
      type: approval
      config:
        title: "<script>alert('title')</script>"
        approvers: ["cfo@example.com", "<i>cto</i>@example.com"]
        timeout: 2h
    - {id: after, type: python, depends_on: [ask], config: {code: "result = 'done'"}}
"""


def _start(local, source: str, run_id: str | None = None, inputs: dict | None = None) -> str:
    plan = compile_yaml(source)
    local.engine.register_workflow(plan)
    return local.engine.start_run(plan, inputs or {}, run_id=run_id)


def _settle(local, run_id: str, until) -> dict:
    assert local.run_until(lambda: until(local.engine.describe_run(run_id)), timeout=15)
    local.record_history()
    return local.engine.describe_run(run_id)


def _waiting(local, run_id: str | None = None) -> str:
    run_id = _start(local, ASK, run_id)
    _settle(local, run_id, lambda v: v["tasks"]["ask"]["status"] == "WAITING")
    return run_id


def _failed(local, run_id: str | None = None) -> str:
    run_id = _start(local, CHAIN, run_id, {"note": "<img src=y onerror=alert(2)>"})
    _settle(local, run_id, lambda v: v["status"] == "FAILED")
    return run_id


def test_the_runs_list_shows_runs_counts_and_filters(local):
    failed, waiting = _failed(local), _waiting(local)
    page = call("GET", "/console")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert f'data-run="{failed}" data-status="FAILED"' in page.body
    assert f'data-run="{waiting}" data-status="RUNNING"' in page.body
    assert 'data-count-status' not in page.body and 'data-from="./console?part=counts"' in page.body
    counts = call("GET", "/console", query={"part": "counts"})
    assert '<li data-count-status="FAILED">' in counts.body and 'id="total">2<' in counts.body
    of_one = call("GET", "/console", query={"part": "counts", "workflow": "ask"})
    assert 'id="total">1<' in of_one.body
    assert 'data-count-status="RUNNING"><a href="./console?status=RUNNING&amp;workflow=ask"' in of_one.body
    only_failed = call("GET", "/console", query={"status": "FAILED", "workflow": "", "since": "", "until": ""})
    assert f'data-run="{failed}"' in only_failed.body and f'data-run="{waiting}"' not in only_failed.body
    by_workflow = call("GET", "/console", query={"workflow": "ask"})
    assert f'data-run="{waiting}"' in by_workflow.body and f'data-run="{failed}"' not in by_workflow.body
    bad = call("GET", "/console", query={"status": "NOPE"})
    assert bad.status == 400 and "status" in bad.body


def test_a_page_holds_fifty_runs_and_an_older_link_follows_the_cursor(local):
    plan = compile_yaml(CHAIN)
    local.engine.register_workflow(plan)
    for i in range(55):
        local.engine.start_run(plan, {}, run_id=f"run-{i:03d}")
        local.clock.advance(1)
    first = call("GET", "/console")
    assert first.body.count("<tr data-run=") == 50 and 'data-run="run-054"' in first.body
    older = first.body.split('class="older" rel="next" href="')[1].split('"')[0]
    assert older.startswith("./console?cursor=")
    cursor = older.split("cursor=")[1]
    second = call("GET", "/console", query={"cursor": cursor})
    assert second.body.count("<tr data-run=") == 5 and 'data-run="run-000"' in second.body
    assert 'class="older"' not in second.body
    assert '<section id="listing">' in second.body  # an older page does not refresh itself
    assert '<section id="listing" data-live="' in first.body


def test_the_run_page_of_a_run_that_failed_halfway(local):
    run_id = _failed(local)
    page = call("GET", RUN, {"run_id": run_id})
    assert page.status == 200
    for task, status in (("a", "COMPLETED"), ("b", "FAILED"), ("c", "CANCELLED")):  # c never ran
        assert f'<tr data-task="{task}" data-status="{status}">' in page.body
    assert 'data-action="redrive"' in page.body and 'data-action="cancel"' not in page.body
    assert 'class="bar attempt failed" data-attempt="1"' in page.body  # b's attempt, on the timeline
    assert '<tr data-item="b" data-status="FAILED">' in page.body  # the history panel
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_every_stored_value_is_escaped(local):
    run_id = _failed(local, run_id=HOSTILE)
    waiting = _waiting(local)
    pages = [call("GET", "/console"), call("GET", RUN, {"run_id": run_id}),
             call("GET", "/console/runs/{run_id}/tasks/{task_id}", {"run_id": run_id, "task_id": "a"}),
             call("GET", "/console/runs/{run_id}/tasks/{task_id}", {"run_id": run_id, "task_id": "b"}),
             call("GET", "/console/approvals"), call("GET", RUN, {"run_id": waiting}),
             call("GET", RUN, {"run_id": "<svg onload=alert(1)>"}),
             call("GET", RUN, {"run_id": run_id}, query={"flash": HOSTILE}, user=HOSTILE)]
    for page in pages:
        assert page.status in (200, 404)
        for raw in ("<script>", "<img", "<b>printed", "<i>cto", "<svg onload"):
            assert raw not in page.body, (raw, page.body[:200])
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in pages[1].body
    assert "&lt;img src=y onerror=alert(2)&gt;" in pages[1].body  # the run's inputs
    assert "&lt;b&gt;printed&lt;/b&gt;" in pages[2].body  # what a's code printed
    assert "&lt;script&gt;boom&lt;/script&gt;" in pages[3].body
    assert "&lt;i&gt;cto&lt;/i&gt;@example.com" in pages[4].body
    assert "%3Cscript%3E" in pages[0].body  # the run's link: its id percent-encoded


def _state(local, run_id: str) -> tuple[str, str]:
    view = local.engine.describe_run(run_id)
    return view["status"], view["tasks"]["ask"]["status"]


@pytest.mark.parametrize("forge", FORGERIES)
def test_a_forged_or_cross_site_action_is_refused_and_changes_nothing(local, forge):
    run_id, other = _waiting(local), _waiting(local)
    token = call("GET", RUN, {"run_id": run_id}).csrf("action", "cancel")
    form, headers, user = forged(forge, token, {
        "other action": call("GET", RUN, {"run_id": run_id}).csrf("action", "pause"),
        "other target": call("GET", RUN, {"run_id": other}).csrf("action", "cancel")})
    form["reason"] = "forged"
    params = {"run_id": run_id, "action": "cancel"}
    answer = call("POST", ACTION, params, form=form, headers=headers, user=user)
    assert answer.status == (415 if forge == "not a form" else 403), answer.body
    assert answer.headers["Content-Type"].startswith("text/html")
    local.run_until(lambda: False, timeout=0.2)
    assert _state(local, run_id) == ("RUNNING", "WAITING")


def test_the_same_site_post_with_its_token_is_taken(local):
    run_id = _waiting(local)
    token = call("GET", RUN, {"run_id": run_id}).csrf("action", "pause")
    answer = call("POST", ACTION, {"run_id": run_id, "action": "pause"}, form={"csrf": token},
                  headers={"Origin": f"https://{HOST}", "Sec-Fetch-Site": "same-origin"})
    assert answer.status == 303 and local.engine.describe_run(run_id)["status"] == "PAUSED"


def test_cancel_with_a_reason_is_applied_audited_and_in_the_history(local):
    run_id = _waiting(local)
    token = call("GET", RUN, {"run_id": run_id}).csrf("action", "cancel")
    answer = call("POST", ACTION, {"run_id": run_id, "action": "cancel"},
                  form={"csrf": token, "reason": "duplicate order <b>#7</b>"})
    assert answer.status == 303
    assert answer.headers["Location"].startswith(f"../../../console/runs/{run_id}?flash=")
    view = _settle(local, run_id, lambda v: v["status"] == "CANCELLED")
    assert view["status"] == "CANCELLED"
    page = call("GET", RUN, {"run_id": run_id}, query={"flash": "Cancel: done"})
    assert '<p class="flash" role="status">Cancel: done</p>' in page.body
    assert "duplicate order &lt;b&gt;#7&lt;/b&gt;" in page.body.split('id="history"')[1]
    assert 'data-action="cancel"' not in page.body
    audit = get_history().actions(action=AuditAction.CANCEL).items
    assert [(e.actor, e.target, e.reason, e.outcome) for e in audit] == [
        ("ada", run_id, "duplicate order <b>#7</b>", 303)]


def test_the_audit_page_lists_actions_with_filters(local):
    run_id = _waiting(local)
    token = call("GET", RUN, {"run_id": run_id}).csrf("action", "cancel")
    call("POST", ACTION, {"run_id": run_id, "action": "cancel"}, form={"csrf": token, "reason": "<b>dup</b>"})
    page = call("GET", "/console/audit")
    assert page.status == 200 and '<tr data-action="cancel" data-outcome="303">' in page.body
    assert "&lt;b&gt;dup&lt;/b&gt;" in page.body and f'href="../console/runs/{run_id}"' in page.body
    assert 'data-action="cancel"' not in call("GET", "/console/audit", query={"action": "pause"}).body
    assert 'data-action="cancel"' not in call("GET", "/console/audit", query={"actor": "grace"}).body
    assert 'data-action="cancel"' not in call("GET", "/console/audit", query={"since": "2999-01-01"}).body
    for bad in ({"action": "explode"}, {"since": "yesterday"}, {"cursor": "garbage!"}, {"actor": "a\x01b"},
                {"action": "cancel,explode"}, {"until": "soon"}, {"workflow": "no-dashes"}, {"run": "a\x01b"},
                {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}):
        answer = call("GET", "/console/audit", query=bad)
        assert answer.status == 400 and 'data-status-code="400"' in answer.body, bad


def test_the_audit_page_filters_as_get_audit_does(local, monkeypatch):
    """Several actions (the form's multiple select, or a comma list), a workflow, a run, a window: the
    filters GET /audit takes, and a page's link to the next one keeps them."""
    first, second = _waiting(local), _waiting(local)
    for run_id, action in ((first, "pause"), (first, "resume"), (second, "cancel")):
        token = call("GET", RUN, {"run_id": run_id}).csrf("action", action)
        assert call("POST", ACTION, {"run_id": run_id, "action": action}, form={"csrf": token}).status == 303

    def shown(**query: str) -> list[tuple[str, str]]:  # (action, run) of each row; one time: sorted
        body = call("GET", "/console/audit", query=query).body
        return sorted(re.findall(r'<tr data-action="(\w+)"[^>]*>.*?href="\.\./console/runs/(\w+)"', body))

    assert shown() == sorted([("pause", first), ("resume", first), ("cancel", second)])
    assert shown(action="pause,cancel") == sorted([("pause", first), ("cancel", second)])
    chosen = call("GET", "/console/audit", repeated={"action": ["resume", "cancel"]}).body
    assert sorted(re.findall(r'<tr data-action="(\w+)"', chosen)) == ["cancel", "resume"]
    assert '<option value="resume" selected>' in chosen and '<option value="pause">' in chosen
    assert shown(run=first) == [("pause", first), ("resume", first)]
    assert shown(workflow="ask") == shown() and shown(workflow="chain") == []
    assert shown(until="2000-01-01T00:00:00Z", since="1999-01-01T00:00:00Z") == []
    # A page of one: its link to the next keeps every filter, and the next page is the other action.
    monkeypatch.setattr("functions.console.audit_page.PAGE", 1)
    page = call("GET", "/console/audit", query={"action": "pause,resume", "run": first}).body
    more = html.unescape(re.search(r'<a class="next" href="\.\./console/audit\?([^"]+)"', page).group(1))
    query = dict(parse_qsl(more))
    assert (query["action"], query["run"]) == ("pause,resume", first) and query["cursor"] and query["since"]
    after = call("GET", "/console/audit", query=query).body
    assert sorted(re.findall(r'<tr data-action="(\w+)"', page + after)) == ["pause", "resume"]


def test_a_sign_out_link_only_where_people_sign_in(local, monkeypatch):
    monkeypatch.delenv("LOOPLINE_CONSOLE_SIGN_IN", raising=False)
    assert '<a id="sign-out" href="./console/logout">sign out</a>' in call("GET", "/console").body
    monkeypatch.setenv("LOOPLINE_CONSOLE_SIGN_IN", "none")
    assert 'id="sign-out"' not in call("GET", "/console").body


def test_pause_resume_and_the_conflicts(local):
    run_id = _waiting(local)

    def act(action: str):
        # The token a page would carry (one that showed the form before the run's status changed).
        return call("POST", ACTION, {"run_id": run_id, "action": action}, form={"csrf": _token_for(run_id, action)})

    assert act("pause").status == 303 and local.engine.describe_run(run_id)["status"] == "PAUSED"
    page = call("GET", RUN, {"run_id": run_id})
    assert 'data-action="resume"' in page.body and 'data-action="pause"' not in page.body
    again = act("pause")  # a token made for it, but the run is paused already
    assert again.status == 409 and "cannot be paused" in again.body
    assert act("resume").status == 303 and local.engine.describe_run(run_id)["status"] == "RUNNING"
    assert act("redrive").status == 409  # a running run is not redriven
    outcomes = sorted((e.action.value, e.outcome) for e in get_history().actions().items)  # one time: any order
    assert outcomes == [("pause", 303), ("pause", 409), ("redrive", 409), ("resume", 303)]


def _token_for(run_id: str, action: str) -> str:
    from functions.console.guard import csrf_token
    from infra.wiring import get_engine

    return csrf_token(get_engine().signer, "ada", run_id, action)


def test_redrive_reopens_a_failed_run(local):
    run_id = _failed(local)
    token = call("GET", RUN, {"run_id": run_id}).csrf("action", "redrive")
    assert call("POST", ACTION, {"run_id": run_id, "action": "redrive"}, form={"csrf": token}).status == 303
    local.run_until(lambda: False, timeout=1)  # the worker reopens the run; b runs again, and fails again
    local.record_history()
    entries = get_history().of_run(run_id).items
    assert [e.status for e in entries if e.item == "b"].count("FAILED") == 2
    assert any(e.item == "" and e.status == "RUNNING" and e.previous == "FAILED" for e in entries)
    assert local.engine.describe_run(run_id)["redrives"] == 1


def test_approve_from_the_inbox_in_an_approvers_name(local):
    run_id = _waiting(local)
    inbox = call("GET", "/console/approvals")
    assert f'<li class="approval" data-run="{run_id}" data-task="ask">' in inbox.body
    assert '<option value="cfo@example.com">' in inbox.body
    token = inbox.csrf("decide")
    params = {"run_id": run_id, "task_id": "ask"}
    stranger = call("POST", "/console/approvals/{run_id}/{task_id}", params,
                    form={"csrf": token, "approver": "nobody@example.com", "decision": "APPROVED"})
    assert stranger.status == 404 and _state(local, run_id) == ("RUNNING", "WAITING")
    answer = call("POST", "/console/approvals/{run_id}/{task_id}", params,
                  form={"csrf": token, "approver": "cfo@example.com", "decision": "APPROVED",
                        "comments": "fine\r\nby me"})
    assert answer.status == 303 and answer.headers["Location"].startswith("../../../console/approvals?flash=")
    view = _settle(local, run_id, lambda v: v["status"] == "COMPLETED")
    assert view["tasks"]["ask"]["output"]["comments"] == "fine\nby me"
    assert f'data-run="{run_id}"' not in call("GET", "/console/approvals").body
    audit = get_history().actions(action=AuditAction.DECIDE).items
    assert sorted((e.actor, e.target, e.reason, e.outcome) for e in audit) == [
        ("ada", run_id, "APPROVED on ask for cfo@example.com", 303),
        ("ada", run_id, "APPROVED on ask for nobody@example.com", 404)]


def test_the_task_page_and_a_loops_iterations(local):
    run_id = _failed(local)
    task = call("GET", "/console/runs/{run_id}/tasks/{task_id}", {"run_id": run_id, "task_id": "b"})
    assert task.status == 200 and 'data-task-status="FAILED"' in task.body and 'data-attempt="1"' in task.body
    assert "ValueError" in task.body
    loop = compile_yaml("""
workflow:
  metadata: {id: looped}
  control_flow:
    loops:
      - id: each
        type: for_each
        items: [1, 2, 3, 4, 5]
        iterator: item
        tasks:
          - {id: step, type: python, config: {code: "result = loop['item'] * 2"}}
""")
    local.engine.register_workflow(loop)
    looped = local.engine.start_run(loop, {})
    _settle(local, looped, lambda v: v["status"] == "COMPLETED")
    first = call("GET", "/console/runs/{run_id}/tasks/{task_id}", {"run_id": looped, "task_id": "each"},
                 query={"limit": "2"})
    assert first.body.count("<tr data-index=") == 2 and 'class="next"' in first.body
    last = call("GET", "/console/runs/{run_id}/tasks/{task_id}", {"run_id": looped, "task_id": "each"},
                query={"cursor": "4", "limit": "2"})
    assert last.body.count("<tr data-index=") == 1 and 'class="next"' not in last.body


SECRET_USE = """
workflow:
  metadata: {id: secret_use}
  inputs: {schema: {type: object, properties: {who: {type: string, default: ada}}}}
  tasks:
    - id: call
      type: python
      config:
        code: "result = 1"
        headers: {Authorization: "Bearer ${env.API_TOKEN}", X-Who: "${inputs.who}"}
    - {id: plain, type: python, depends_on: [call], config: {code: "result = 2"}}
"""


def test_the_task_page_shows_the_evaluated_input_with_env_masked(monkeypatch, clock):
    from loopline.memory.local_mode import LocalMode

    monkeypatch.setenv("API_TOKEN", "s3cr3t-value")
    monkeypatch.setenv("LOOPLINE_EXPOSED_ENV", "API_TOKEN")
    mode = LocalMode(clock=clock, inline_code=True)  # reads the exposed env now, as a deployed worker does
    try:
        run_id = _start(mode, SECRET_USE, inputs={"who": "grace"})
        _settle(mode, run_id, lambda v: v["status"] == "COMPLETED")
        page = call("GET", "/console/runs/{run_id}/tasks/{task_id}", {"run_id": run_id, "task_id": "call"}).body
        assert 'id="task-input"' in page and "Bearer «env.API_TOKEN»" in page and "grace" in page
        plain = call("GET", "/console/runs/{run_id}/tasks/{task_id}", {"run_id": run_id, "task_id": "plain"}).body
        assert 'id="task-input"' not in plain and "As declared" in plain
        stored = mode.engine.store.load(run_id, ["call", "plain"])[1]
        assert "s3cr3t" not in repr(stored) and stored["plain"].shown_input is None
        assert "s3cr3t" not in repr(mode.engine.describe_run(run_id))
    finally:
        mode.close()


def test_the_workflow_registry_draws_each_version(local):
    _failed(local)
    listing = call("GET", "/console/workflows")
    assert '<tr data-workflow="chain">' in listing.body
    page = call("GET", "/console/workflows/{workflow_id}", {"workflow_id": "chain"})
    assert page.status == 200 and 'class="run-graph"' in page.body
    assert page.body.count('data-status="PENDING"') >= 3 and "&quot;workflow_id&quot;: &quot;chain&quot;" in page.body


@pytest.mark.parametrize("method,resource,params", [
    ("GET", RUN, {"run_id": "nope"}),
    ("GET", "/console/runs/{run_id}/tasks/{task_id}", {"run_id": "nope", "task_id": "a"}),
    ("GET", "/console/workflows/{workflow_id}", {"workflow_id": "nope"}),
    ("GET", "/console/static/{file}", {"file": "../app.py"}),
    ("GET", "/console/nothing", {}),
])
def test_what_does_not_exist_is_a_404_page(local, method, resource, params):
    answer = call(method, resource, params)
    assert answer.status == 404 and answer.headers["Content-Type"].startswith("text/html")
    assert 'data-status-code="404"' in answer.body and "Traceback" not in answer.body


def test_an_unknown_action_or_run_is_a_404_and_the_static_files_are_served(local):
    run_id = _waiting(local)
    assert call("POST", ACTION, {"run_id": run_id, "action": "explode"}, form={"csrf": "x"}).status == 404
    token = _token_for("nope", "cancel")
    assert call("POST", ACTION, {"run_id": "nope", "action": "cancel"}, form={"csrf": token}).status == 404
    script = call("GET", "/console/static/{file}", {"file": "console.js"})
    assert script.status == 200 and script.headers["Content-Type"].startswith("text/javascript")
    assert "data-live" in script.body
    home = call("GET", "/")
    assert home.status == 302 and home.headers["Location"] == "console"


def test_the_signed_in_user_is_the_authorizers_principal_else_the_local_user(local):
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

    from tests.conftest import api_event

    event = api_event("api_get_run.json")
    event["requestContext"]["identity"]["user"] = "local-dev"
    assert console_actor(APIGatewayProxyEvent(event)) == "local-dev"
    event["requestContext"]["authorizer"] = {"principalId": "grace@example.com"}
    assert console_actor(APIGatewayProxyEvent(event)) == "grace@example.com"
    page = call("GET", "/console", principal="grace@example.com")
    assert '<span id="actor">grace@example.com</span>' in page.body


def test_links_are_relative_to_the_page_asked_for():
    from functions.console.layout import root_of

    assert root_of("/console", "/console") == "./"
    assert root_of("/console", "/console/") == "../"  # the browser resolves from /console/
    assert root_of("/console/runs/{run_id}", "/console/runs/r1") == "../../"
    assert root_of("/console/runs/{run_id}/{action}", "/console/runs/r1/cancel") == "../../../"
    assert root_of("/", "/") == "./"


def test_an_unexpected_error_is_a_500_page_without_its_traceback(local):
    from infra.ports import RunRecord

    # A run whose plan is not stored (nothing the engine writes): reading it fails inside the engine.
    local.store.create_run(RunRecord(run_id="orphan", plan_hash="no-such-plan", workflow_id="w",
                                     created_at="2030-01-01T00:00:00.000Z"))
    answer = call("GET", RUN, {"run_id": "orphan"})
    assert answer.status == 500 and answer.headers["Content-Type"].startswith("text/html")
    assert 'data-status-code="500"' in answer.body
    assert "Traceback" not in answer.body and "no-such-plan" not in answer.body
