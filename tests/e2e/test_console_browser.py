"""The web console in a real browser: `loopline dev` (this checkout's code), headless Debian Chromium
driven over the DevTools protocol by the project's own driver (infra/tasks/browser/devtools.py), and
DOM checks only. An operator finds runs in the list and filters it, reads the graph of a run that
failed halfway and its failed task's page, opens the workflow registry, cancels a run with a reason
and finds it in the history, approves from the inbox, pauses and resumes, rewinds the failed run to
its first task, and sees a new run appear in the list without reloading.

Skipped only when Chromium is not installed (`make system-deps`).
"""

from __future__ import annotations

import json
import time

import pytest

from infra.tasks.browser.devtools import Chrome
from tests.e2e.test_browser_approval import Tab
from tests.e2e.test_browser_approval import chromium as chromium  # the fixture: skips without Chromium
from tests.e2e.test_cli_history import LOOPLINE, ROOT
from tests.e2e.test_dev_server import dev_server, get_json, request, wait_for

TEST_SECONDS = 90.0  # every browser wait ends by then (the test takes about 20 s here)

CHAIN = """
workflow:
  metadata: {id: chain3}
  tasks:
    - {id: first, type: python, config: {code: "result = 1"}}
    - {id: second, type: python, depends_on: [first], config: {code: "raise RuntimeError('second broke')"}}
    - {id: third, type: python, depends_on: [second], config: {code: "result = 3"}}
"""

ASK = """
workflow:
  metadata: {id: signoff}
  tasks:
    - id: ask
      type: approval
      config: {title: "Sign off?", approvers: [cfo@example.com, ceo@example.com], timeout: 2h}
    - {id: after, type: python, depends_on: [ask], config: {code: "result = 'signed'"}}
"""


@pytest.fixture(scope="module")
def server(chromium):
    yield from dev_server(LOOPLINE, cwd=ROOT)


def _start(server: str, workflow: str) -> str:
    status, _, text = request("POST", f"{server}/runs", {"workflow": workflow, "input": {}})
    assert status == 201, text
    return json.loads(text)["run_id"]


def _run(server: str, run_id: str) -> dict:
    return get_json(f"{server}/runs/{run_id}")[1]


def _selector(css: str) -> str:
    return f"document.querySelector({json.dumps(css)})"


def test_an_operator_in_the_console(server, chromium):
    end = time.monotonic() + TEST_SECONDS
    failed, to_cancel, to_approve, to_pause = (_start(server, CHAIN), _start(server, ASK), _start(server, ASK),
                                               _start(server, ASK))
    wait_for(lambda: _run(server, failed)["status"], lambda s: s == "FAILED")
    for run_id in (to_cancel, to_approve, to_pause):
        wait_for(lambda: _run(server, run_id)["tasks"]["ask"]["status"], lambda s: s == "WAITING")

    with Chrome(chromium, end) as chrome:
        tab = Tab(chrome)

        # `/` leads to the runs list, which shows every run with its status.
        tab.goto(f"{server}/")
        tab.wait_js("location.pathname === '/console' && !!document.querySelector('table.runs')")
        rows = tab.js("Object.fromEntries(Array.from(document.querySelectorAll('tr[data-run]'))"
                      ".map(r => [r.dataset.run, r.dataset.status]))")
        assert rows == {failed: "FAILED", to_cancel: "RUNNING", to_approve: "RUNNING", to_pause: "RUNNING"}, rows
        # The counts by status are loaded into place by the page's script, after the runs.
        tab.wait_js("document.querySelector('[data-count-status=FAILED] .count')?.textContent === '1'")
        assert tab.js("document.querySelector('#total').textContent") == "4"

        # Filter by status through the form.
        tab.js(f"{_selector('select[name=status]')}.value = 'FAILED'")
        tab.click("form.filters button[type=submit]")
        tab.wait_js("location.search.includes('status=FAILED') && document.readyState === 'complete'")
        # The counts arrive after the runs; their place is kept, so the table does not move when they do.
        top = tab.js("document.querySelector('table.runs').getBoundingClientRect().top")
        tab.wait_js("document.querySelector('[data-count-status=FAILED] .count')?.textContent === '1'")
        assert tab.js("document.querySelector('table.runs').getBoundingClientRect().top") == top
        shown = tab.js("Array.from(document.querySelectorAll('tr[data-run]')).map(r => r.dataset.run)")
        assert shown == [failed], shown

        # The run that failed halfway: its graph's nodes carry the statuses the engine recorded.
        tab.click(f"tr[data-run='{failed}'] a")
        tab.wait_js("!!document.querySelector('svg.run-graph')")
        nodes = tab.js("Object.fromEntries(Array.from(document.querySelectorAll('svg.run-graph g.node'))"
                       ".map(g => [g.dataset.task, g.dataset.status]))")
        assert nodes == {"first": "COMPLETED", "second": "FAILED", "third": "CANCELLED"}, nodes  # third never ran
        assert tab.js("!!document.querySelector('form[data-action=redrive]')")
        assert not tab.js("!!document.querySelector('form[data-action=cancel]')")
        assert "second broke" in tab.js("document.querySelector('#run-header').textContent")

        # The failed task's page: its error and its attempt.
        tab.click("#tasks tr[data-task=second] a")
        tab.wait_js("!!document.querySelector('[data-task-status]')")
        assert tab.js("document.querySelector('[data-task-status]').dataset.taskStatus") == "FAILED"
        assert "second broke" in tab.js("document.querySelector('#task-error').textContent")
        assert tab.js("document.querySelectorAll('table.attempts tr[data-attempt]').length") == 1

        # The registry: the workflow that ran, its plan drawn with every task PENDING.
        status, _, text = request("POST", f"{server}/workflows", {"workflow": CHAIN})
        assert status == 201, text
        tab.goto(f"{server}/console/workflows")
        tab.click("tr[data-workflow=chain3] a")
        tab.wait_js("!!document.querySelector('#plan svg.run-graph')")
        drawn = tab.js("Array.from(document.querySelectorAll('#plan svg.run-graph g.node')).map(g => g.dataset.status)")
        assert drawn == ["PENDING"] * 3, drawn

        # Cancel a run waiting on an approval, with a reason, through the page's form.
        tab.goto(f"{server}/console/runs/{to_cancel}")
        reason = "ordered twice — cancelling the copy"
        assert tab.type_into("form[data-action=cancel] input[name=reason]", reason) == reason
        tab.click("form[data-action=cancel] button")
        tab.wait_js("location.search.includes('flash=') && !!document.querySelector('.flash')")
        wait_for(lambda: _run(server, to_cancel)["status"], lambda s: s == "CANCELLED")
        # The history is written a moment after the change: the page's live refresh brings it in.
        tab.wait_js(f"document.querySelector('#history').textContent.includes({json.dumps(reason)})", 20)
        tab.wait_js("document.querySelector('[data-run-status]').dataset.runStatus === 'CANCELLED'", 10)

        # Approve from the inbox in one approver's name.
        tab.goto(f"{server}/console/approvals")
        item = f"li.approval[data-run='{to_approve}']"
        assert tab.js(f"Array.from(document.querySelectorAll(\"{item} select[name=approver] option\"))"
                      ".map(o => o.value)") == ["ceo@example.com", "cfo@example.com"]
        tab.js(f"document.querySelector(\"{item} select[name=approver]\").value = 'cfo@example.com'")
        tab.type_into(f"{item} textarea[name=comments]", "fine by me")
        tab.click(f"{item} button[value=APPROVED]")
        tab.wait_js("location.search.includes('flash=') && !!document.querySelector('.flash')")
        done = wait_for(lambda: _run(server, to_approve), lambda v: v["status"] == "COMPLETED")
        assert done["tasks"]["ask"]["output"]["comments"] == "fine by me"
        assert not tab.js(f"!!document.querySelector(\"{item}\")")

        # Pause, then resume.
        tab.goto(f"{server}/console/runs/{to_pause}")
        tab.click("form[data-action=pause] button")
        tab.wait_js("!!document.querySelector('.flash') && !!document.querySelector('form[data-action=resume]')")
        assert tab.js("document.querySelector('[data-run-status]').dataset.runStatus") == "PAUSED"
        assert _run(server, to_pause)["status"] == "PAUSED"
        tab.click("form[data-action=resume] button")
        tab.wait_js("!!document.querySelector('.flash') && !!document.querySelector('form[data-action=pause]')")
        assert _run(server, to_pause)["status"] == "RUNNING"

        # Rewind the run that failed to its first task through the page's form: it reopens, and fails again.
        tab.goto(f"{server}/console/runs/{failed}")
        to = "form[data-action=rewind] select[name=to]"
        assert tab.js(f"Array.from(document.querySelectorAll('{to} option')).map(o => o.value)") == ["first", "second"]
        tab.js(f"{_selector(to)}.value = 'first'")
        tab.type_into("form[data-action=rewind] input[name=reason]", "first read stale data")
        tab.click("form[data-action=rewind] button")
        tab.wait_js("location.search.includes('flash=') && !!document.querySelector('.flash')")
        assert tab.js("document.querySelector('.flash').textContent").startswith("Rewind to first: queued")
        wait_for(lambda: _run(server, failed), lambda v: v["redrives"] == 1 and v["status"] == "FAILED")
        tab.wait_js("document.querySelector('#history').textContent.includes("
                    "\"rewind 1 to 'first' by \")", 20)

        # The audit log: the cancel with its reason, the approval in the approver's name.
        tab.goto(f"{server}/console/audit")
        tab.wait_js("!!document.querySelector('table.audit')")
        actions = tab.js("Array.from(document.querySelectorAll('table.audit tr[data-action]'))"
                         ".map(r => r.dataset.action)")
        assert {"cancel", "decide", "pause", "resume", "rewind"} <= set(actions), actions
        assert reason in tab.js("document.querySelector('table.audit tr[data-action=cancel]').textContent")
        assert not tab.js("!!document.querySelector('#sign-out')")  # nothing to sign out of locally

        # The list refreshes itself: a run started now appears without a reload.
        tab.goto(f"{server}/console")
        assert tab.js("document.hidden") is False
        newcomer = _start(server, CHAIN)
        tab.wait_js(f"!!document.querySelector(\"tr[data-run='{newcomer}']\")", 15)
        assert int(tab.js("document.documentElement.dataset.refreshed")) >= 1
