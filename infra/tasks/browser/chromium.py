"""The ``chromium`` browser provider: the actions on a real page, in headless Chromium (devtools.py).

Chromium resolves and connects by itself, so it is started behind an egress proxy
of its own (egress_proxy.py) that checks every connection the page makes.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from .. import egress, files
from ..base import TaskFailure
from ..common import INVALID_CONFIG, TaskMeta
from ..egress_proxy import EgressProxy
from .devtools import Chrome, ScriptError, chromium_path
from .request import NAVIGATION_ERROR, NOT_FOUND, UNAVAILABLE, BrowserRequest, extracted

# An element's text as a reader sees it (no script or style text), or one of its attributes.
_TEXT_JS = ("(el, attr) => { if (attr) return el.getAttribute(attr); const c = el.cloneNode(true);"
            " c.querySelectorAll('script,style,noscript,template').forEach(n => n.remove());"
            " return c.textContent.replace(/\\s+/g, ' ').trim(); }")


def _js(value: Any) -> str:
    return json.dumps(value)


class ChromiumBrowser:
    """Headless Chromium; every connection it makes goes through an egress proxy of its own."""

    def __init__(self, configured: str | None, policy: egress.EgressPolicy, root: Path) -> None:
        binary = chromium_path(configured)
        if binary is None:
            raise TaskFailure(UNAVAILABLE, "the 'chromium' browser provider needs Chromium "
                                           "(/usr/bin/chromium or LOOPLINE_CHROMIUM)")
        self.binary = binary
        self.policy = policy
        self.root = root

    def run(self, request: BrowserRequest, meta: TaskMeta) -> dict[str, Any]:
        egress.check_url(request.url, self.policy)  # a clear refusal before Chromium starts; the proxy checks again
        deadline = time.monotonic() + request.timeout
        with EgressProxy(request.timeout, self.policy) as proxy, \
                Chrome(self.binary, deadline, proxy.chromium_flags()) as chrome:
            try:
                return self._run(chrome, request, proxy)
            except ScriptError as exc:
                raise TaskFailure(INVALID_CONFIG, f"selector error: {exc}") from exc

    def _run(self, chrome: Chrome, request: BrowserRequest, proxy: EgressProxy) -> dict[str, Any]:
        chrome.open_page()
        chrome.call("Page.enable")
        chrome.events.clear()
        navigation = chrome.call("Page.navigate", {"url": request.url})
        if navigation.get("errorText"):
            proxy.raise_if_refused()
            raise TaskFailure(NAVIGATION_ERROR, f"{request.url}: {navigation['errorText']}")
        chrome.wait_event({"Page.loadEventFired"})
        if request.wait_for:
            chrome.wait_until(f"!!document.querySelector({_js(request.wait_for)})",
                              f"no element matches {request.wait_for!r}", NOT_FOUND)
        status = chrome.evaluate("(performance.getEntriesByType('navigation')[0] || {}).responseStatus || null")
        page = {"url": chrome.evaluate("location.href"), "status": status, "title": chrome.evaluate("document.title")}
        if request.action == "navigate":
            return page
        if request.action == "extract":
            values = chrome.evaluate(f"Array.from(document.querySelectorAll({_js(request.selector)}))"
                                     f".map(el => ({_TEXT_JS})(el, {_js(request.attribute)}))")
            return {**page, **extracted(request, values or [])}
        if request.action == "screenshot":
            shot = chrome.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": request.full_page})
            data = base64.b64decode(shot["data"])
            assert request.screenshot is not None
            request.screenshot.parent.mkdir(parents=True, exist_ok=True)
            request.screenshot.write_bytes(data)
            return {**page, "path": files.relative(request.screenshot, self.root), "bytes": len(data)}
        chrome.events.clear()
        proxy.forget_refusals()  # the page's own refused sub-resources do not fail the task
        found = chrome.evaluate(f"(() => {{ const el = document.querySelector({_js(request.selector)});"
                                f" if (!el) return false; el.scrollIntoView(); el.focus();"
                                f" {'el.click();' if request.action == 'click' else ''} return true; }})()")
        if not found:
            raise TaskFailure(NOT_FOUND, f"no element matches {request.selector!r}")
        result: dict[str, Any] = {"selector": request.selector}
        if request.action == "type":
            chrome.call("Input.insertText", {"text": request.value or ""})
            result["value"] = chrome.evaluate(
                f"(() => {{ const el = document.querySelector({_js(request.selector)});"
                " el.dispatchEvent(new Event('change', {bubbles: true}));"
                " return 'value' in el ? el.value : el.textContent; })()")
        # A click may start a navigation: if one starts soon, wait for the new page to load.
        if chrome.wait_event({"Page.frameStartedLoading", "Page.frameRequestedNavigation"}, 0.3):
            chrome.wait_event({"Page.loadEventFired"})
            if str(chrome.evaluate("location.href")).startswith("chrome-error:"):
                proxy.raise_if_refused()
        return {"url": chrome.evaluate("location.href"), "title": chrome.evaluate("document.title"), **result}
