"""A person approves in a real browser: `loopline dev`, the outbox page, the approval page, headless Chromium.

Chromium is driven over the Chrome DevTools Protocol on a pipe with the driver of
the ``browser`` task type (``infra/tasks/browser/``): no selenium, no playwright,
no browser download. The test skips only when Chromium is not installed
(``make unit`` installs Debian's ``chromium`` through the ``system-deps`` target).
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.tasks.base import TaskFailure
from infra.tasks.browser.devtools import Chrome, ScriptError, chromium_path
from tests.e2e.test_dev_server import get_json, request

LOOPLINE = str(Path(sys.executable).with_name("loopline"))
TITLE = "Approve the Q3 budget?"
COMMENT = "Looks right — ship it"
STARTUP_SECONDS = 15.0  # `loopline dev` answering (about 1.5 s here)
TEST_SECONDS = 35.0  # the whole test, browser included; every wait in it ends by then (it takes about 2 s)

WORKFLOW = f"""
workflow:
  metadata: {{id: budget, name: Q3 budget}}
  tasks:
    - id: ask
      type: approval
      config:
        title: "{TITLE}"
        description: The Q3 budget needs the CFO's approval.
        approvers: [cfo@example.com]
        timeout: 2h
    - id: after
      type: python
      depends_on: [ask]
      config: {{code: "result = 'the CFO said: ' + tasks['ask']['output']['comments']"}}
"""

# Stands in for the approval's own notification (issue 4, item 4) if it does not reach the outbox.
RELAY = f"""
workflow:
  metadata: {{id: relay, name: Relay}}
  inputs:
    schema: {{type: object, properties: {{link: {{type: string}}}}, required: [link]}}
  tasks:
    - id: mail
      type: email
      config:
        to: [cfo@example.com]
        subject: "Approval needed: {TITLE}"
        body: "Hello,\\n\\nplease decide on the Q3 budget here: ${{inputs.link}}.\\n\\nThanks"
"""


def wait_for(fetch, predicate, timeout, end=None):
    """Poll ``fetch()`` until ``predicate`` holds, for ``timeout`` seconds at most and never past ``end``."""
    deadline = min(time.monotonic() + timeout, end or float("inf"))
    value = None
    while time.monotonic() < deadline:
        value = fetch()
        if predicate(value):
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s; last: {value}")


@pytest.fixture(scope="module")
def chromium():
    binary = chromium_path()
    if binary is None:
        pytest.skip("Chromium is not installed (/usr/bin/chromium or LOOPLINE_CHROMIUM); `make system-deps`")
    return binary


@pytest.fixture(scope="module")
def server(chromium):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([LOOPLINE, "dev", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"loopline dev exited {proc.returncode}: {proc.stderr.read()}")
            try:
                if get_json(f"{base}/runs/nothing")[0] == 404:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"loopline dev did not answer within {STARTUP_SECONDS:g} s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class Tab:
    """One page of a fresh headless Chromium (its own profile directory), driven like a person would."""

    def __init__(self, chrome: Chrome):
        self.chrome = chrome
        chrome.open_page()
        chrome.call("Page.enable")

    def js(self, expression: str):
        return self.chrome.evaluate(expression)

    def goto(self, url: str) -> None:
        self.chrome.events.clear()
        reply = self.chrome.call("Page.navigate", {"url": url})
        assert not reply.get("errorText"), f"{url}: {reply['errorText']}"
        assert self.chrome.wait_event({"Page.loadEventFired"}, 10), f"{url} did not load in 10 s"

    def wait_js(self, expression: str, seconds: float = 10.0):
        """Poll ``expression`` until truthy; a navigation in between (context destroyed) is retried."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                value = self.js(expression)
                if value:
                    return value
            except (ScriptError, TaskFailure) as exc:
                if isinstance(exc, TaskFailure) and exc.error_type == "TaskTimeout":
                    raise
            if time.monotonic() > deadline:
                raise AssertionError(f"not true within {seconds}s: {expression}; page: {self.describe()}")
            time.sleep(0.05)

    def describe(self) -> dict:
        try:
            return self.js("({url: location.href, title: document.title,"
                           " text: document.body ? document.body.innerText.slice(0, 300) : ''})")
        except (ScriptError, TaskFailure) as exc:
            return {"error": str(exc)}

    def click(self, selector: str) -> str:
        """A real left click (mouse events at the centre of the element's first box: a link may wrap),
        after checking nothing covers that point."""
        box = self.js(f"""(() => {{
            const el = document.querySelector({json.dumps(selector)});
            if (!el) return null;
            el.scrollIntoView({{block: 'center'}});
            const r = el.getClientRects()[0], x = r.left + r.width / 2, y = r.top + r.height / 2;
            return {{x, y, text: el.textContent.trim(), onTop: el.contains(document.elementFromPoint(x, y))}};
        }})()""")
        assert box, f"no element matches {selector!r}; page: {self.describe()}"
        assert box["onTop"], f"{selector!r} is covered by another element"
        for kind in ("mousePressed", "mouseReleased"):
            self.chrome.call("Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"],
                                                          "button": "left", "buttons": 1, "clickCount": 1})
        return box["text"]

    def type_into(self, selector: str, text: str) -> str:
        """Focus the field and insert ``text`` as typed input (input events, maxlength honoured)."""
        assert self.js(f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
                       " if (!el) return false; el.focus(); return document.activeElement === el; })()")
        self.chrome.call("Input.insertText", {"text": text})
        return self.js(f"document.querySelector({json.dumps(selector)}).value")

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.chrome.call("Page.captureScreenshot", {"format": "png"})["data"])
        path.write_bytes(data)
        return data


def mailed(server: str, url: str) -> dict | None:
    """The newest outbox email (JSON, the default) whose body carries ``url``."""
    status, headers, text = request("GET", f"{server}/_dev/outbox?type=email")
    assert status == 200 and headers["Content-Type"].startswith("application/json"), (status, headers)
    return next((e for e in reversed(json.loads(text)["entries"]) if url in e["request"].get("body", "")), None)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_approve_in_a_real_browser_from_the_outbox(server, chromium, tmp_path):
    started = time.monotonic()
    end = started + TEST_SECONDS
    status, _, text = request("POST", f"{server}/runs", {"workflow": WORKFLOW, "input": {}})
    assert status == 201, text
    run_id = json.loads(text)["run_id"]
    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1], lambda v: v["approvals"], 10, end)
    approval = view["approvals"][0]
    assert approval["task_id"] == "ask" and approval["approver"] == "cfo@example.com"
    assert approval["title"] == TITLE
    url = approval["url"]

    # The approval mails its link (issue 4, item 4); should that not reach the outbox, a relay run mails it.
    try:
        mail = wait_for(lambda: mailed(server, url), bool, 3, end)
    except AssertionError:
        status, _, text = request("POST", f"{server}/runs", {"workflow": RELAY, "input": {"link": url}})
        assert status == 201, text
        mail = wait_for(lambda: mailed(server, url), bool, 10, end)
    assert "cfo@example.com" in mail["request"]["to"]
    # `mailed` read the outbox as JSON, still the default; a client asking for HTML gets the page.
    status, headers, text = request("GET", f"{server}/_dev/outbox?type=email", headers={"Accept": "text/html"})
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert f'<a href="{url}"' in text

    timings = {}
    with Chrome(chromium, end) as chrome:  # every browser wait ends by `end` too
        tab = Tab(chrome)
        timings["chromium ready"] = time.monotonic() - started

        # The outbox, as a person sees it: the "sent" mail with its link; click it.
        tab.goto(f"{server}/_dev/outbox")
        assert tab.js("document.title") == "Outbox"
        hrefs = tab.js("Array.from(document.querySelectorAll('main a[href]')).map(a => a.href)")
        assert url in hrefs, hrefs
        tab.click(f"a[href={json.dumps(url)}]")
        tab.wait_js(f"location.href === {json.dumps(url)} && document.readyState === 'complete'"
                    " && !!document.querySelector('textarea')")
        timings["approval page open"] = time.monotonic() - started

        page = tab.js("({title: document.title, h1: document.querySelector('h1').textContent,"
                      " buttons: Array.from(document.querySelectorAll('button')).map(b => [b.value, b.textContent]),"
                      " label: document.querySelector('label[for=comments]').textContent,"
                      " status: performance.getEntriesByType('navigation')[0].responseStatus})")
        assert TITLE in page["title"] and page["h1"] == TITLE, page
        assert ["APPROVED", "Approve"] in page["buttons"] and ["REJECTED", "Reject"] in page["buttons"], page
        assert page["label"].startswith("Comments") and page["status"] == 200, page

        # Opening the page (a GET, as a link preview or mail scanner would) decides nothing.
        view = get_json(f"{server}/runs/{run_id}")[1]
        assert view["status"] == "RUNNING" and view["tasks"]["ask"]["status"] == "WAITING", view
        assert [a["task_id"] for a in view["approvals"]] == ["ask"]

        assert tab.type_into("#comments", COMMENT) == COMMENT
        shot = tab.screenshot(tmp_path / "approval.png")
        width, height = png_size(shot)
        assert len(shot) > 1000 and width > 0 and height > 0

        assert tab.click("button[value=APPROVED]") == "Approve"
        tab.wait_js("document.title === 'Thank you' && document.readyState === 'complete'")
        thanks = tab.js("({url: location.href, h1: document.querySelector('h1').textContent,"
                        " text: document.body.innerText})")
        assert thanks["url"] == url + "?done=1" and thanks["h1"] == "Thank you", thanks
        assert "Your decision has been recorded." in thanks["text"]
        timings["thank-you page"] = time.monotonic() - started

        # The same link, opened again, is spent: a clear page, not an error.
        tab.goto(url)
        spent = tab.js("({h1: (document.querySelector('h1') || {}).textContent, forms: document.forms.length,"
                       " status: performance.getEntriesByType('navigation')[0].responseStatus})")
        assert spent["status"] == 410 and spent["h1"] and spent["forms"] == 0, spent

    view = wait_for(lambda: get_json(f"{server}/runs/{run_id}")[1],
                    lambda v: v["status"] in ("COMPLETED", "FAILED", "CANCELLED"), 10, end)
    timings["run completed"] = time.monotonic() - started
    assert view["status"] == "COMPLETED", view
    decided = view["tasks"]["ask"]["output"]
    assert decided["decision"] == "APPROVED" and decided["approved"] is True
    assert decided["comments"] == COMMENT and decided["approver"] == "cfo@example.com"
    assert view["tasks"]["after"]["output"] == f"the CFO said: {COMMENT}"
    assert view["approvals"] == []
    print("timings (s since the run was submitted):", {k: round(v, 2) for k, v in timings.items()})
