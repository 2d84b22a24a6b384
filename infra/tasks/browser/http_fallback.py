"""The ``http`` browser provider: fetches the page with the shared HTTP client and reads it with html.parser.

The stand-in where Chromium is not installed: no script runs, so it does navigate
and extract only, with the selector subset of selectors.py.
"""

from __future__ import annotations

from typing import Any

from ..base import TaskFailure
from ..common import TaskMeta
from ..egress import EgressPolicy
from ..http_task import fetch
from .html import parse_html
from .request import NAVIGATION_ERROR, NOT_FOUND, UNAVAILABLE, BrowserRequest, extracted
from .selectors import select_all


class HttpBrowser:
    """The stand-in: the page as served (no script runs); screenshots, clicks and typing are unavailable."""

    def __init__(self, policy: EgressPolicy):
        self.policy = policy

    def run(self, request: BrowserRequest, meta: TaskMeta) -> dict[str, Any]:
        if request.action not in ("navigate", "extract"):
            raise TaskFailure(UNAVAILABLE, f"the '{request.action}' action needs a real browser; the http stand-in "
                                           "does navigate and extract (install Chromium, or set "
                                           "LOOPLINE_PROVIDERS=browser=chromium)")
        response = fetch("GET", request.url, policy=self.policy, headers={"Accept": "text/html,*/*;q=0.8"},
                         timeout=request.timeout, connection_error=NAVIGATION_ERROR)
        root = parse_html(response.text())
        titles = select_all(root, "title")
        page = {"url": response.url, "status": response.status, "title": titles[0].text() if titles else ""}
        if request.wait_for and not select_all(root, request.wait_for):
            raise TaskFailure(NOT_FOUND, f"no element matches {request.wait_for!r}")
        if request.action == "navigate":
            return page
        elements = select_all(root, request.selector or "")
        values = [el.attrs.get(request.attribute) if request.attribute else el.text() for el in elements]
        return {**page, **extracted(request, values)}
