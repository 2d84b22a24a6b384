"""The ``browser`` task type: navigate, extract, screenshot, click and type on one page.

Providers: ``chromium`` (headless Chromium driven over the Chrome DevTools
Protocol on a pipe: no driver, no extra package; the binary is
``LOOPLINE_CHROMIUM`` or ``/usr/bin/chromium``) and ``http`` (the stand-in:
fetches the page with urllib and reads it with html.parser, so no script runs;
navigate and extract only). The default is ``chromium`` when its binary is
installed and ``http`` otherwise, in both environments.

Each task is a fresh browser session (a new profile directory): it opens
``config.url``, waits for ``config.wait_for`` (a selector) if given, then acts.

Both providers reach only what the egress policy allows (``egress.py``): the
``http`` stand-in through the shared HTTP client; Chromium through a proxy of its
own (``egress_proxy.py``) that checks every connection the browser makes.
"""

from __future__ import annotations

import base64
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Protocol

from . import common, egress, files, settings
from .base import TaskFailure
from .common import INVALID_CONFIG, TaskMeta
from .egress_proxy import EgressProxy
from .http_task import check_url, fetch

DEFAULT_TIMEOUT = 30.0
ACTIONS = ("navigate", "extract", "screenshot", "click", "type")
UNAVAILABLE = "BrowserUnavailable"
NOT_FOUND = "BrowserElementNotFound"
NAVIGATION_ERROR = "BrowserNavigationError"
BROWSER_ERROR = "BrowserError"
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--no-default-browser-check",
    "--disable-extensions", "--hide-scrollbars", "--mute-audio", "--window-size=1280,800",
)


@dataclass(frozen=True)
class BrowserRequest:
    action: str
    url: str
    selector: str | None = None
    value: str | None = None
    wait_for: str | None = None
    attribute: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    screenshot: Path | None = None  # absolute, inside the file root
    full_page: bool = False


class Browser(Protocol):
    def run(self, request: BrowserRequest, meta: TaskMeta) -> dict[str, Any]: ...


def chromium_path() -> str | None:
    configured = os.environ.get("LOOPLINE_CHROMIUM")
    for candidate in [configured] if configured else ["/usr/bin/chromium", "/usr/bin/chromium-browser"]:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


# ===================================================================== chromium

_TEXT_JS = ("(el, attr) => { if (attr) return el.getAttribute(attr); const c = el.cloneNode(true);"
            " c.querySelectorAll('script,style,noscript,template').forEach(n => n.remove());"
            " return c.textContent.replace(/\\s+/g, ' ').trim(); }")


_WIRE = ("import os, sys\n"
         "r, w = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))\n"
         "os.dup2(r, 3); os.dup2(w, 4)\n"
         "os.set_inheritable(3, True); os.set_inheritable(4, True)\n"
         "os.execv(sys.argv[3], sys.argv[3:])\n")


class _Chrome:
    """One headless Chromium process, spoken to over --remote-debugging-pipe (fd 3 in, fd 4 out)."""

    def __init__(self, binary: str, deadline: float, flags: tuple[str, ...] = ()):
        self.deadline = deadline
        self.profile = tempfile.mkdtemp(prefix="loopline-chromium-")
        to_chrome_r, self._out = os.pipe()
        self._in, from_chrome_w = os.pipe()
        argv = [binary, *CHROMIUM_FLAGS, *flags, "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                "about:blank"]
        try:
            # Chromium reads commands on fd 3 and answers on fd 4. A tiny exec wrapper puts the pipes
            # there (no preexec_fn, which is unsafe in a threaded process).
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WIRE, str(to_chrome_r), str(from_chrome_w), *argv],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(to_chrome_r, from_chrome_w), start_new_session=True,
            )
        except OSError as exc:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise TaskFailure(UNAVAILABLE, f"cannot start {binary}: {exc}") from exc
        finally:
            os.close(to_chrome_r)
            os.close(from_chrome_w)
        self._buffer = b""
        self._next = 0
        self.session: str | None = None
        self.events: list[str] = []

    def __enter__(self) -> "_Chrome":
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.process.poll() is None:
                self._send("Browser.close", {}, None)
                self.process.wait(timeout=5)
        except Exception:
            pass
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
        for fd in (self._in, self._out):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def _send(self, method: str, params: dict[str, Any], session: str | None) -> int:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._out, data):]
        except OSError as exc:
            raise TaskFailure(BROWSER_ERROR, f"chromium exited ({exc})") from exc
        return self._next

    def _receive(self, until: float, what: str) -> dict[str, Any] | None:
        """The next message, or None once ``until`` (monotonic) has passed; events are kept in ``events``."""
        while b"\0" not in self._buffer:
            left = min(until, self.deadline) - time.monotonic()
            if left <= 0:
                if time.monotonic() >= self.deadline:
                    raise TaskFailure("TaskTimeout", f"the browser did not finish {what} in time")
                return None
            ready, _, _ = select.select([self._in], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                raise TaskFailure(BROWSER_ERROR, f"chromium exited during {what}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message and "id" not in message:
            self.events.append(message["method"])
        return message

    def call(self, method: str, params: dict[str, Any] | None = None, page: bool = True) -> dict[str, Any]:
        ident = self._send(method, params or {}, self.session if page else None)
        while True:
            message = self._receive(self.deadline, method)
            if message is not None and message.get("id") == ident:
                if "error" in message:
                    raise TaskFailure(BROWSER_ERROR, f"{method}: {message['error'].get('message')}")
                return message.get("result", {})

    def wait_event(self, names: set[str], seconds: float | None = None) -> bool:
        """Whether one of the events ``names`` arrived (or had arrived) within ``seconds`` (None: the deadline)."""
        until = self.deadline if seconds is None else time.monotonic() + seconds
        while not names.intersection(self.events):
            if self._receive(until, "loading the page") is None:
                return False
        return True

    def open_page(self) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"}, page=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 page=False)["sessionId"]

    def evaluate(self, expression: str) -> Any:
        reply = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                               "awaitPromise": True})
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = (details.get("exception") or {}).get("description") or details.get("text", "")
            raise _ScriptError(text.splitlines()[0] if text else "script error")
        return reply.get("result", {}).get("value")

    def wait_until(self, expression: str, what: str, error_type: str) -> None:
        while True:
            if self.evaluate(expression):
                return
            if time.monotonic() > self.deadline - 0.05:
                raise TaskFailure(error_type, what)
            time.sleep(0.05)


class _ScriptError(Exception):
    pass


def _js(value: Any) -> str:
    return json.dumps(value)


class ChromiumBrowser:
    def __init__(self) -> None:
        binary = chromium_path()
        if binary is None:
            raise TaskFailure(UNAVAILABLE, "the 'chromium' browser provider needs Chromium "
                                           "(/usr/bin/chromium or LOOPLINE_CHROMIUM)")
        self.binary = binary

    def run(self, request: BrowserRequest, meta: TaskMeta) -> dict[str, Any]:
        egress.check_url(request.url)  # a clear refusal before Chromium starts; the proxy checks again
        deadline = time.monotonic() + request.timeout
        with EgressProxy(request.timeout) as proxy, _Chrome(self.binary, deadline, proxy.chromium_flags()) as chrome:
            try:
                return self._run(chrome, request, proxy)
            except _ScriptError as exc:
                raise TaskFailure(INVALID_CONFIG, f"selector error: {exc}") from exc

    def _run(self, chrome: _Chrome, request: BrowserRequest, proxy: EgressProxy) -> dict[str, Any]:
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
            return {**page, **_extracted(request, values or [])}
        if request.action == "screenshot":
            shot = chrome.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": request.full_page})
            data = base64.b64decode(shot["data"])
            assert request.screenshot is not None
            request.screenshot.parent.mkdir(parents=True, exist_ok=True)
            request.screenshot.write_bytes(data)
            return {**page, "path": files.relative(request.screenshot), "bytes": len(data)}
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


def _extracted(request: BrowserRequest, values: list[Any]) -> dict[str, Any]:
    return {"selector": request.selector, "count": len(values), "text": values[0] if values else None,
            "texts": values}


# ========================================================================= http

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track",
         "wbr"}
_HIDDEN = {"script", "style", "noscript", "template"}


class _Element:
    __slots__ = ("tag", "attrs", "children", "parent")

    def __init__(self, tag: str, attrs: dict[str, str], parent: "_Element | None"):
        self.tag = tag
        self.attrs = attrs
        self.children: list[_Element | str] = []
        self.parent = parent

    def iter(self):
        for child in self.children:
            if isinstance(child, _Element):
                yield child
                yield from child.iter()

    def text(self) -> str:
        parts: list[str] = []

        def walk(node: _Element) -> None:
            for child in node.children:
                if isinstance(child, str):
                    parts.append(child)
                elif child.tag not in _HIDDEN:
                    walk(child)

        walk(self)
        return " ".join("".join(parts).split())


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Element("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        element = _Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        if tag not in _VOID:
            self.current = element

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(_Element(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag):
        node: _Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse_html(html: str) -> _Element:
    tree = _Tree()
    tree.feed(html)
    tree.close()
    return tree.root


_COMPOUND = re.compile(r"^(?P<tag>[A-Za-z][A-Za-z0-9-]*|\*)?(?P<rest>(?:[.#][A-Za-z_-][\w-]*)*)$")


def _compound(text: str) -> tuple[str | None, str | None, set[str]]:
    match = _COMPOUND.match(text)
    if not match or not text:
        raise TaskFailure(INVALID_CONFIG, f"selector part {text!r} is not supported by the http browser stand-in "
                                          "(tag, .class, #id, their combinations, descendants and commas are)")
    tag = match["tag"] if match["tag"] not in (None, "*") else None
    ident, classes = None, set()
    for kind, name in re.findall(r"([.#])([\w-]+)", match["rest"]):
        if kind == "#":
            ident = name
        else:
            classes.add(name)
    return (tag.lower() if tag else None), ident, classes


def _matches(element: _Element, part: tuple[str | None, str | None, set[str]]) -> bool:
    tag, ident, classes = part
    if tag and element.tag != tag:
        return False
    if ident is not None and element.attrs.get("id") != ident:
        return False
    return not classes or classes <= set(element.attrs.get("class", "").split())


def select_all(root: _Element, selector: str) -> list[_Element]:
    """The elements matching ``selector`` (tag, .class, #id, compounds, descendant combinator, commas)."""
    groups = []
    for group in selector.split(","):
        parts = [_compound(p) for p in group.split()]
        if not parts:
            raise TaskFailure(INVALID_CONFIG, f"selector {selector!r} has an empty part")
        groups.append(parts)
    found = []
    for element in root.iter():
        for parts in groups:
            if not _matches(element, parts[-1]):
                continue
            node, wanted = element.parent, len(parts) - 2
            while node is not None and wanted >= 0:
                if _matches(node, parts[wanted]):
                    wanted -= 1
                node = node.parent
            if wanted < 0:
                found.append(element)
                break
    return found


class HttpBrowser:
    """The stand-in: the page as served (no script runs); screenshots, clicks and typing are unavailable."""

    def run(self, request: BrowserRequest, meta: TaskMeta) -> dict[str, Any]:
        if request.action not in ("navigate", "extract"):
            raise TaskFailure(UNAVAILABLE, f"the '{request.action}' action needs a real browser; the http stand-in "
                                           "does navigate and extract (install Chromium, or set "
                                           "LOOPLINE_PROVIDERS=browser=chromium)")
        response = fetch("GET", request.url, headers={"Accept": "text/html,*/*;q=0.8"}, timeout=request.timeout,
                         connection_error=NAVIGATION_ERROR)
        root = parse_html(response.text())
        titles = select_all(root, "title")
        page = {"url": response.url, "status": response.status, "title": titles[0].text() if titles else ""}
        if request.wait_for and not select_all(root, request.wait_for):
            raise TaskFailure(NOT_FOUND, f"no element matches {request.wait_for!r}")
        if request.action == "navigate":
            return page
        elements = select_all(root, request.selector or "")
        values = [el.attrs.get(request.attribute) if request.attribute else el.text() for el in elements]
        return {**page, **_extracted(request, values)}


def _default_browser() -> str:
    return "chromium" if chromium_path() else "http"


settings.register("browser", "chromium", ChromiumBrowser)
settings.register("browser", "http", HttpBrowser)
settings.set_default("browser", "aws", _default_browser)
settings.set_default("browser", "local", _default_browser)


def run_browser(config: dict[str, Any], meta: TaskMeta) -> dict[str, Any]:
    action = (common.text(config, "action") or "navigate").lower()
    if action not in ACTIONS:
        raise TaskFailure(INVALID_CONFIG, f"'config.action' must be one of {', '.join(ACTIONS)}, not {action!r}")
    url = check_url(common.text(config, "url", required=True) or "")
    selector = common.text(config, "selector", required=action in ("extract", "click", "type"))
    shot = None
    if action == "screenshot":
        shot = files.resolve(common.text(config, "path") or f"screenshots/{meta.run_id}-{meta.task_id}.png")
    request = BrowserRequest(
        action=action, url=url, selector=selector, value=common.text(config, "value"),
        wait_for=common.text(config, "wait_for"), attribute=common.text(config, "attribute"),
        timeout=common.timeout(config, meta, DEFAULT_TIMEOUT), screenshot=shot,
        full_page=common.flag(config, "full_page", False),
    )
    browser: Browser = settings.create("browser")
    return browser.run(request, meta)
