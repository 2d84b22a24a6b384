"""A web page on another origin cannot drive `loopline dev` (issue #9, item 1), in a real browser.

A page served from another local port (another origin, as any site the user visits could be)
tries every way a browser sends a POST without asking the server first: ``fetch`` in no-cors
mode with text/plain and with no type, a form post (text/plain, urlencoded, multipart),
``navigator.sendBeacon``, and a CORS ``fetch`` with JSON (which needs a preflight). The workflow
it submits would create a marker file from a shell task and wait on an approval that names the
attacker. Chromium (headless, Debian's) is driven over the DevTools protocol as in
test_browser_approval.py; its Network domain shows each request reaching the dev server and
the answer it got, so "nothing was created" is checked after every attempt was refused.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from infra.tasks.browser.devtools import Chrome, chromium_path
from tests.e2e.test_browser_approval import Tab
from tests.e2e.test_dev_front_door import start_dev, stop_dev
from tests.e2e.test_dev_server import get_json, request, wait_for

TEST_SECONDS = 60.0
ATTACKER = "attacker@evil.example"


def attack_workflow(marker: str, workflow_id: str) -> str:
    return f"""
workflow:
  metadata: {{id: {workflow_id}}}
  tasks:
    - {{id: plant, type: shell, config: {{command: ["touch", "{marker}"]}}}}
    - {{id: wait, type: approval, config: {{title: "owned", approvers: ["{ATTACKER}"], timeout: 1h}}}}
"""


ATTACK_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>cute cats</title></head><body>
<iframe name="f1"></iframe><iframe name="f2"></iframe><iframe name="f3"></iframe><iframe name="f4"></iframe>
<script>
const target = TARGET, run = RUN_BODY, workflow = WORKFLOW_TEXT;
const sent = [];
function form(frame, enctype, path, fields) {
  return new Promise(resolve => {
    const f = document.createElement('form');
    f.method = 'POST'; f.action = target + path; f.enctype = enctype; f.target = frame;
    for (const [name, value] of fields) {
      const input = document.createElement('input');
      input.type = 'hidden'; input.name = name; input.value = value; f.appendChild(input);
    }
    document.querySelector(`iframe[name=${frame}]`).addEventListener('load', () => resolve(frame), {once: true});
    document.body.appendChild(f); f.submit();
  });
}
// A text/plain form body is "name=value": a name ending in a quote and a value closing the
// object make it JSON: {"workflow": ..., "input": {}, "pad": "="}.
const jsonName = run.slice(0, -1) + ', "pad": "', jsonValue = '"}';
window.attack = Promise.allSettled([
  fetch(target + '/runs', {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: run}),
  fetch(target + '/runs', {method: 'POST', mode: 'no-cors', body: new Blob([run])}),
  fetch(target + '/workflows', {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'},
                               body: JSON.stringify({workflow})}),
  fetch(target + '/runs', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: run}),
  form('f1', 'text/plain', '/runs', [[jsonName, jsonValue]]),
  form('f2', 'application/x-www-form-urlencoded', '/runs', [['workflow', workflow], ['input', '{}']]),
  form('f3', 'multipart/form-data', '/runs', [['workflow', workflow]]),
  form('f4', 'text/plain', '/workflows', [[JSON.stringify({workflow}).slice(0, -1) + ', "pad": "', '"}']]),
  Promise.resolve(navigator.sendBeacon(target + '/runs', run)),
  Promise.resolve(navigator.sendBeacon(target + '/runs', new Blob([run], {type: 'text/plain'}))),
]).then(results => results.map(r => r.status));
</script></body></html>"""
EXPECTED_POSTS = 9  # every attempt above but the CORS fetch, which stops at its preflight (an OPTIONS)


class RecordingChrome(Chrome):
    """The driver of test_browser_approval.py, keeping the Network events' details too."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.network: list[dict[str, Any]] = []

    def _receive(self, until: float, what: str):
        message = super()._receive(until, what)
        if message is not None and str(message.get("method", "")).startswith("Network."):
            self.network.append(message)
        return message

    def exchanges(self, origin: str) -> list[dict[str, Any]]:
        """Requests to ``origin`` and what became of each: {method, url, status or error}."""
        requests: dict[str, dict[str, Any]] = {}
        for message in self.network:
            params = message["params"]
            if message["method"] == "Network.requestWillBeSent" and params["request"]["url"].startswith(origin):
                requests[params["requestId"]] = {"method": params["request"]["method"],
                                                 "url": params["request"]["url"]}
            elif message["method"] == "Network.responseReceived" and params["requestId"] in requests:
                requests[params["requestId"]]["status"] = params["response"]["status"]
            elif message["method"] == "Network.loadingFailed" and params["requestId"] in requests:
                requests[params["requestId"]].setdefault("error", params.get("errorText"))
        return list(requests.values())


class AttackerSite:
    """Serves the attack page from its own port: another origin than the dev server's."""

    def __init__(self, page: str) -> None:
        body = page.encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cats.html"
        threading.Thread(target=self.server.serve_forever, args=(0.1,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def chromium():
    binary = chromium_path()
    if binary is None:
        pytest.skip("Chromium is not installed (/usr/bin/chromium or LOOPLINE_CHROMIUM); `make system-deps`")
    return binary


@pytest.fixture(scope="module")
def dev(chromium):
    proc, port = start_dev()
    yield f"http://127.0.0.1:{port}"
    stop_dev(proc)


def attacker_waits(server: str) -> list:
    return get_json(f"{server}/approvals?approver={ATTACKER}")[1]["approvals"]


def test_a_page_on_another_origin_cannot_start_a_run(dev, chromium, tmp_path):
    end = time.monotonic() + TEST_SECONDS
    marker = tmp_path / "pwned"
    workflow = attack_workflow(str(marker), "evil_wf")
    page = (ATTACK_PAGE.replace("TARGET", json.dumps(dev))
            .replace("RUN_BODY", json.dumps(json.dumps({"workflow": workflow, "input": {}})))
            .replace("WORKFLOW_TEXT", json.dumps(workflow)))
    site = AttackerSite(page)
    registry_before = get_json(f"{dev}/workflows")[1]
    try:
        with RecordingChrome(chromium, end) as chrome:
            tab = Tab(chrome)
            chrome.call("Network.enable")
            tab.goto(site.url)
            outcomes = tab.js("window.attack")  # every attempt settled (forms: their frames loaded)
            assert len(outcomes) == 10, outcomes
            # Each POST reached the dev server and was answered (beacons are sent after the page's
            # promises settle: wait for their answers too).
            answered = wait_for(
                lambda: [x for x in chrome_exchanges(chrome, dev) if x["method"] == "POST" and "status" in x],
                lambda xs: len(xs) >= EXPECTED_POSTS, timeout=max(1.0, end - time.monotonic()))
            exchanges = chrome_exchanges(chrome, dev)
    finally:
        site.close()
    assert len(answered) == EXPECTED_POSTS and all(x["status"] == 403 for x in answered), answered
    # The CORS fetch asked first (OPTIONS), was refused, and so never sent its POST.
    preflights = [x for x in exchanges if x["method"] == "OPTIONS"]
    unsent = [x for x in exchanges if x["method"] == "POST" and "status" not in x]
    assert [x.get("status") for x in preflights] == [403] and len(unsent) == 1 and unsent[0]["error"], exchanges
    # Nothing was created behind the dev server: no run, no file, no registered workflow.
    assert not marker.exists()
    assert attacker_waits(dev) == []
    assert get_json(f"{dev}/workflows")[1] == registry_before

    # The same workflow sent as JSON by a client that is not a browser page does run: the refusals
    # above are the front door's, not a broken workflow.
    status, _, text = request("POST", f"{dev}/runs", {"workflow": workflow, "input": {}})
    assert status == 201, text
    wait_for(lambda: attacker_waits(dev), bool, timeout=max(1.0, end - time.monotonic()))
    run_id = json.loads(text)["run_id"]
    view = wait_for(lambda: get_json(f"{dev}/runs/{run_id}")[1],
                    lambda v: v["tasks"]["plant"]["status"] in ("COMPLETED", "FAILED"),
                    timeout=max(1.0, end - time.monotonic()))
    if view["tasks"]["plant"]["status"] == "COMPLETED":  # unless a sandbox forbids `touch` there
        assert marker.exists()


def chrome_exchanges(chrome: RecordingChrome, origin: str) -> list[dict[str, Any]]:
    try:  # let pending events in (a short read: nothing is asked of the page)
        chrome.wait_event({"Never.happens"}, 0.05)
    except Exception:  # noqa: BLE001 - only draining; the assertions below judge
        pass
    return chrome.exchanges(origin)
